package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const value = "s3cr3t-value-that-must-not-print"

// Every way a Secret can be printed shows the redacted form.
func TestSecretNeverPrints(t *testing.T) {
	s := New(value)
	type wrapper struct {
		Key Secret
		Ptr *Secret
	}
	w := wrapper{Key: s, Ptr: &s}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", s, "wrapped", w)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "secret", s)
	js, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := s.MarshalText()
	forms := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%q": fmt.Sprintf("%q", s),
		"%x": fmt.Sprintf("%x", s), "%#v": fmt.Sprintf("%#v", s), "%+v struct": fmt.Sprintf("%+v", w),
		"%#v struct": fmt.Sprintf("%#v", w), "String": s.String(), "error": fmt.Errorf("wrap: %v", s).Error(),
		"json": string(js), "text": string(text), "slog": logs.String(),
	}
	for name, got := range forms {
		if strings.Contains(got, value) {
			t.Errorf("%s shows the secret: %s", name, got)
		}
		if !strings.Contains(got, redacted) && name != "%+v struct" && name != "%#v struct" {
			t.Errorf("%s = %q, want the redacted form", name, got)
		}
	}
	if s.Reveal() != value || s.IsZero() || !New("").IsZero() {
		t.Error("Reveal/IsZero do not report the value")
	}
}

func TestCell(t *testing.T) {
	c := NewCell()
	if _, err := c.Get(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("empty cell Get err = %v, want ErrNotReady", err)
	}
	cause := errors.New("key vault down")
	c.Fail(cause)
	if _, err := c.Get(); !errors.Is(err, ErrNotReady) || !errors.Is(err, cause) {
		t.Errorf("failed cell Get err = %v, want ErrNotReady and the cause", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on an empty cell = %v, want the context's error", err)
	}

	done := make(chan Secret)
	go func() {
		s, err := c.Wait(context.Background())
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		done <- s
	}()
	c.Set(New(value))
	if s := <-done; s.Reveal() != value {
		t.Error("Wait did not return the value that was Set")
	}
	c.Fail(cause) // a later failure keeps the last good value
	if s, err := c.Get(); err != nil || s.Reveal() != value {
		t.Errorf("Get after a later failure = %v, %v; want the last good value", s, err)
	}
	c.Set(New("rotated"))
	if s, _ := Ready(New("x")).Get(); s.Reveal() != "x" {
		t.Error("Ready cell has no value")
	}
	if s, _ := c.Get(); s.Reveal() != "rotated" {
		t.Error("Set did not replace the value")
	}
}
