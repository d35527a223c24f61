package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The examples of the W3C Trace Context recommendation.
const (
	specTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	specTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	specTracestate  = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, tp, ts string
		ok           bool
		wantState    string
		wantFlags    byte
	}{
		{"spec example", specTraceparent, specTracestate, true, specTracestate, 1},
		{"not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "", true, "", 0},
		{"surrounding space", " " + specTraceparent + " ", "", true, "", 1},
		{"later version with more fields", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds", "", true, "", 1},
		{"later version, exact length", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", true, "", 1},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", false, "", 0},
		{"version 00 with trailing data", specTraceparent + "-x", "", false, "", 0},
		{"later version, trailing data without dash", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", "", false, "", 0},
		{"uppercase hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "", false, "", 0},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "", false, "", 0},
		{"zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "", false, "", 0},
		{"short", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", "", false, "", 0},
		{"wrong separators", "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", "", false, "", 0},
		{"non-hex flags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", "", false, "", 0},
		{"empty", "", "", false, "", 0},
		{"control character in tracestate dropped", specTraceparent, "a=b\x00c", true, "", 1},
		{"tracestate member without value dropped", specTraceparent, "congo=,rojo=1", true, "", 1},
		{"oversized tracestate dropped", specTraceparent, "a=" + strings.Repeat("x", 600), true, "", 1},
		{"empty members tolerated", specTraceparent, "congo=1,,rojo=2", true, "congo=1,,rojo=2", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, ok := Parse(tt.tp, tt.ts)
			if ok != tt.ok {
				t.Fatalf("Parse ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				if sc != (SpanContext{}) {
					t.Errorf("rejected value left %+v", sc)
				}
				return
			}
			if sc.TraceIDString() != specTraceID || sc.State != tt.wantState || sc.Flags != tt.wantFlags {
				t.Errorf("got trace %s state %q flags %x", sc.TraceIDString(), sc.State, sc.Flags)
			}
		})
	}
}

func TestFormatRoundTrip(t *testing.T) {
	sc, ok := Parse(specTraceparent, "")
	if !ok || sc.Traceparent() != specTraceparent {
		t.Fatalf("round trip = %q, %v", sc.Traceparent(), ok)
	}
	n := New()
	back, ok := Parse(n.Traceparent(), "")
	if !ok || back != n || n.Flags != 1 {
		t.Errorf("New() %+v does not round-trip: %+v %v", n, back, ok)
	}
	c := n.Child()
	if c.TraceID != n.TraceID || c.SpanID == n.SpanID || c.Flags != n.Flags {
		t.Errorf("Child() = %+v of %+v", c, n)
	}
}

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		ok     bool
		state  string
	}{
		{"one traceparent, two tracestate lines", http.Header{"Traceparent": {specTraceparent}, "Tracestate": {"congo=1", "rojo=2"}}, true, "congo=1,rojo=2"},
		{"two traceparent lines are ambiguous", http.Header{"Traceparent": {specTraceparent, specTraceparent}}, false, ""},
		{"none", http.Header{}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header = tt.header
			sc, ok := FromRequest(r)
			if ok != tt.ok || sc.State != tt.state {
				t.Errorf("FromRequest = %+v, %v", sc, ok)
			}
		})
	}
}

// TestTransport sends three requests through the transport to a loopback
// server: each carries the trace ID, a new parent span ID and the state; a
// request without a trace in its context is passed unchanged.
func TestTransport(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
	}))
	defer srv.Close()
	client := &http.Client{Transport: &Transport{Base: srv.Client().Transport}}

	sc, _ := Parse(specTraceparent, specTracestate)
	ctx := WithSpan(context.Background(), sc)
	for range 3 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		req.Header.Set(HeaderTraceparent, "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01") // replaced
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if req.Header.Get(HeaderTraceparent) != "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01" {
			t.Error("the caller's request was modified")
		}
	}
	plain, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	res, err := client.Do(plain)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	mu.Lock()
	defer mu.Unlock()
	spans := map[string]bool{}
	for i, h := range seen[:3] {
		got, ok := Parse(h.Get(HeaderTraceparent), h.Get(HeaderTracestate))
		if !ok || got.TraceID != sc.TraceID || got.Flags != sc.Flags || got.State != specTracestate {
			t.Errorf("request %d: traceparent %q tracestate %q", i, h.Get(HeaderTraceparent), h.Get(HeaderTracestate))
		}
		if got.SpanID == sc.SpanID {
			t.Errorf("request %d reuses the incoming span ID", i)
		}
		spans[got.Traceparent()] = true
	}
	if len(spans) != 3 {
		t.Errorf("span IDs not unique per request: %v", spans)
	}
	if h := seen[3]; h.Get(HeaderTraceparent) != "" || h.Get(HeaderTracestate) != "" {
		t.Errorf("request without a trace got %v", h)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(specTraceparent, specTracestate)
	f.Add("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-x", "")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "a=\x00")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", strings.Repeat("k=v,", 40))
	f.Fuzz(func(t *testing.T, tp, ts string) {
		sc, ok := Parse(tp, ts)
		if !ok {
			return
		}
		if !sc.IsValid() {
			t.Fatalf("accepted invalid IDs: %+v", sc)
		}
		// What we send onward is a valid version-00 header that parses back
		// to the same context, and a tracestate without control characters.
		back, ok := Parse(sc.Traceparent(), sc.State)
		if !ok || back != sc {
			t.Fatalf("%q → %+v does not round-trip (%+v, %v)", tp, sc, back, ok)
		}
		if strings.ContainsFunc(sc.State, func(r rune) bool { return r < 0x20 || r > 0x7e }) || len(sc.State) > maxTracestate {
			t.Fatalf("tracestate %q passed on", sc.State)
		}
	})
}

func TestWrapClient(t *testing.T) {
	base := &http.Transport{}
	c := WrapClient(&http.Client{Transport: base})
	tr, ok := c.Transport.(*Transport)
	if !ok || tr.Base != base {
		t.Errorf("Transport = %#v", c.Transport)
	}
}
