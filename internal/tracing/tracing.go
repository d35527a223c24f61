package tracing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
)

// Header names of W3C Trace Context.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// maxTracestate is the longest tracestate passed on (the specification asks
// vendors to propagate at least 512 characters and lets them drop longer).
const maxTracestate = 512

// SpanContext is the part of a trace that crosses process boundaries: the
// trace ID, the ID of the span that is the parent of the next hop, the trace
// flags and the vendors' tracestate.
type SpanContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
	// State is the tracestate header value, passed on as received ("" when
	// none or when it was not a valid list).
	State string
}

// IsValid reports whether both IDs are set (all-zero IDs are invalid).
func (sc SpanContext) IsValid() bool {
	return sc.TraceID != [16]byte{} && sc.SpanID != [8]byte{}
}

// TraceIDString is the trace ID as 32 lowercase hex digits (Application
// Insights' operation_Id).
func (sc SpanContext) TraceIDString() string { return hex.EncodeToString(sc.TraceID[:]) }

// Traceparent formats the traceparent header value (version 00).
func (sc SpanContext) Traceparent() string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], sc.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], sc.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{sc.Flags})
	return string(b[:])
}

// Child returns the span context for an outgoing call: the same trace ID,
// flags and state, and a new random span ID.
func (sc SpanContext) Child() SpanContext {
	sc.SpanID = newSpanID()
	return sc
}

// New starts a new trace: random trace and span IDs, the sampled flag set,
// no state.
func New() SpanContext {
	var sc SpanContext
	for sc.TraceID == [16]byte{} {
		_, _ = rand.Read(sc.TraceID[:]) // crypto/rand.Read never fails on supported platforms
	}
	sc.SpanID = newSpanID()
	sc.Flags = 0x01
	return sc
}

func newSpanID() [8]byte {
	var id [8]byte
	for id == [8]byte{} {
		_, _ = rand.Read(id[:])
	}
	return id
}

// Parse reads a traceparent value and its tracestate. It reports false for
// anything the specification says to ignore: a wrong length or layout,
// uppercase or non-hex digits, version ff, all-zero IDs, or a version-00
// value with trailing data. A value of a later version is read by its first
// four fields, as the specification asks. An invalid tracestate is dropped
// (State ""), the traceparent is still used.
func Parse(traceparent, tracestate string) (SpanContext, bool) {
	var sc SpanContext
	tp := strings.TrimSpace(traceparent)
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return sc, false
	}
	var ver [1]byte
	if !lowerHex(tp[0:2]) || !decode(ver[:], tp[0:2]) || ver[0] == 0xff {
		return sc, false
	}
	if ver[0] == 0 && len(tp) != 55 {
		return sc, false
	}
	if len(tp) > 55 && tp[55] != '-' {
		return sc, false
	}
	var flags [1]byte
	if !decode(sc.TraceID[:], tp[3:35]) || !decode(sc.SpanID[:], tp[36:52]) || !decode(flags[:], tp[53:55]) {
		return SpanContext{}, false
	}
	if !sc.IsValid() {
		return SpanContext{}, false
	}
	sc.Flags = flags[0]
	if ver[0] > 0 {
		// NOTE: for a later version only the sampled bit keeps its meaning.
		sc.Flags &= 0x01
	}
	sc.State = cleanTracestate(tracestate)
	return sc, true
}

// decode reads exactly len(dst)*2 lowercase hex digits.
func decode(dst []byte, s string) bool {
	if len(s) != 2*len(dst) || !lowerHex(s) {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// cleanTracestate keeps a tracestate that is a plausible list-member list:
// at most 512 characters, at most 32 members, each key=value of printable
// ASCII. Anything else is dropped whole (the specification allows that),
// so that a header cannot smuggle control characters onward.
func cleanTracestate(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxTracestate {
		return ""
	}
	members := 0
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		members++
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" || v == "" || members > 32 {
			return ""
		}
		for i := 0; i < len(m); i++ {
			if m[i] < 0x20 || m[i] > 0x7e {
				return ""
			}
		}
	}
	if members == 0 {
		return ""
	}
	return s
}

// FromRequest reads the trace context of an incoming request. Several
// tracestate header lines are joined with commas, as the specification says.
func FromRequest(r *http.Request) (SpanContext, bool) {
	tps := r.Header.Values(HeaderTraceparent)
	if len(tps) != 1 { // none, or ambiguous: ignore
		return SpanContext{}, false
	}
	return Parse(tps[0], strings.Join(r.Header.Values(HeaderTracestate), ","))
}

type ctxKey struct{}

// WithSpan returns ctx carrying sc (as the parent of outgoing calls).
func WithSpan(ctx context.Context, sc SpanContext) context.Context {
	return context.WithValue(ctx, ctxKey{}, sc)
}

// FromContext returns the span context carried by ctx, if any.
func FromContext(ctx context.Context) (SpanContext, bool) {
	sc, ok := ctx.Value(ctxKey{}).(SpanContext)
	return sc, ok && sc.IsValid()
}

// Transport stamps every request whose context carries a SpanContext with
// traceparent (the trace ID and a new span ID per request, so each attempt of
// a retried call is its own span) and tracestate, replacing any the request
// had. Requests without one pass unchanged. It never modifies the caller's
// request (it clones it, as a RoundTripper must).
type Transport struct {
	// Base carries the requests; http.DefaultTransport when nil.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	sc, ok := FromContext(r.Context())
	if !ok {
		return base.RoundTrip(r)
	}
	out := r.Clone(r.Context())
	child := sc.Child()
	out.Header.Set(HeaderTraceparent, child.Traceparent())
	if sc.State != "" {
		out.Header.Set(HeaderTracestate, sc.State)
	} else {
		out.Header.Del(HeaderTracestate)
	}
	return base.RoundTrip(out)
}

// CloseIdleConnections closes the base transport's idle connections, so that
// http.Client.CloseIdleConnections keeps working through the wrapper.
func (t *Transport) CloseIdleConnections() {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if c, ok := base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// WrapClient puts a Transport in front of c's transport and returns c, so
// that every request c sends carries the trace of its context.
func WrapClient(c *http.Client) *http.Client {
	c.Transport = &Transport{Base: c.Transport}
	return c
}
