package caller

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/tracing"
)

// One tick is one trace: the token requests (metadata and token, through
// MSAL) and every API call carry the host's trace ID, a new parent span ID
// each, and the host's tracestate; without a traceparent from the host the
// tick starts its own trace; an invalid one is ignored.
func TestTickIsOneTrace(t *testing.T) {
	const hostTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name      string
		header    http.Header
		wantTrace string // "" = a new trace
		wantState string
	}{
		{"host's traceparent", http.Header{"Traceparent": {hostTP}, "Tracestate": {"congo=t61rcWkgMzE"}}, "4bf92f3577b34da6a3ce929d0e0e4736", "congo=t61rcWkgMzE"},
		{"no traceparent: a new trace", http.Header{}, "", ""},
		{"invalid traceparent: a new trace", http.Header{"Traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			clock := newFakeClock()
			entraSeen := newFaultPlan(clock.Now, nil)
			apiSeen := newFaultPlan(clock.Now, nil)
			front := entraFront(t, e.ca, e.entra.URL(), entraSeen)
			ts := e.tokenSource(t, func(o *MSALOptions) { o.AuthorityHost = front; o.HTTPClient = tracedClient(e.ca) })
			d, err := New(Options{TargetURL: faultyAPI(t, e, apiSeen), Cities: []string{"London", "Oslo-unknown", "Atlantis"},
				Tokens: ts, HTTPClient: tracedClient(e.ca), Logger: e.logger, Sleep: noSleep})
			if err != nil {
				t.Fatal(err)
			}
			h := funcs.WithInvocation(e.logger, "CallerTimer", TimerHandler(d, "timer", time.Minute))
			req := httptest.NewRequest(http.MethodPost, "/CallerTimer", bytes.NewReader(timerInvocation(t)))
			for k, v := range tt.header {
				req.Header[k] = v
			}
			req.Header.Set(funcs.HeaderInvocationID, "inv-trace")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}

			outgoing := append(entraSeen.traceparents(), apiSeen.traceparents()...)
			if len(outgoing) != 2+3 { // metadata, token; three cities
				t.Fatalf("outgoing calls = %d (%q)", len(outgoing), outgoing)
			}
			trace := tt.wantTrace
			spans := map[string]bool{}
			for i, tp := range outgoing {
				sc, ok := tracing.Parse(tp, "")
				if !ok {
					t.Errorf("call %d: traceparent %q", i, tp)
					continue
				}
				if trace == "" {
					trace = sc.TraceIDString()
				}
				if sc.TraceIDString() != trace {
					t.Errorf("call %d: trace %s, want %s", i, sc.TraceIDString(), trace)
				}
				if tp == hostTP || spans[tp] {
					t.Errorf("call %d: span ID reused (%s)", i, tp)
				}
				spans[tp] = true
			}
			// Every log line of the invocation names the trace.
			for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) != nil || m["invocation_id"] != "inv-trace" {
					continue
				}
				if m["trace_id"] != trace {
					t.Errorf("log line without the trace: %s", line)
				}
			}
		})
	}
}

// tracestate is passed through to every outgoing call.
func TestTracestatePassedThrough(t *testing.T) {
	e := newEnv(t)
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("tracestate"))
		e.serveAPI(w, r)
	}))
	defer srv.Close()
	d, err := New(Options{TargetURL: srv.URL, Cities: []string{"London"}, Tokens: staticTokens("x"),
		HTTPClient: &http.Client{Transport: &tracing.Transport{}}, Concurrency: 1, Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/CallerTimer", strings.NewReader(`{}`))
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	funcs.WithInvocation(nil, "CallerTimer", TimerHandler(d, "timer", 0)).ServeHTTP(httptest.NewRecorder(), req)
	if len(got) != 1 || got[0] != "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" {
		t.Errorf("tracestate seen = %q", got)
	}
}
