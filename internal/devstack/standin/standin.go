// Package standin holds what every offline stand-in writes the same way:
// random GUIDs in Azure's lower-case form, and JSON bodies encoded compactly
// like the recorded ones.
package standin

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
)

// GUID returns a random (version 4) GUID in its lower-case text form.
func GUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// CompactJSON encodes v as compact JSON without HTML escaping and without a
// trailing newline, as the recorded bodies are.
func CompactJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
