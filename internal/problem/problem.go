package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the media type of a problem details body (RFC 9457 §3).
const ContentType = "application/problem+json"

// TypeBase prefixes every problem type URI this API defines. The URIs are
// identifiers, documented in the README; they need not resolve.
const TypeBase = "https://weatherfunc.dev/problems/"

// InvalidParam names one bad request parameter (RFC 9457 §3 example extension).
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Details is a problem details object. Type is a short slug ("invalid-token");
// Write turns it into a URI under TypeBase.
type Details struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail,omitempty"`
	InvalidParams []InvalidParam `json:"invalid-params,omitempty"`
}

// Write sends d with status d.Status (500 when unset). Headers already set on
// w (WWW-Authenticate, Retry-After, Allow …) are kept. Detail must be safe to
// show to any client.
func Write(w http.ResponseWriter, d Details) {
	if d.Status == 0 {
		d.Status = http.StatusInternalServerError
	}
	if d.Type == "" {
		d.Type = "about:blank"
	} else {
		d.Type = TypeBase + d.Type
	}
	if d.Title == "" {
		d.Title = http.StatusText(d.Status)
	}
	body, err := json.Marshal(d)
	if err != nil { // cannot happen: Details holds only strings and ints
		body = []byte(`{"type":"about:blank","status":500}`)
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status)
	_, _ = w.Write(body)
}
