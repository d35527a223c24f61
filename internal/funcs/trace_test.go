package funcs

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/tracing"
)

// WithInvocation reads the host's traceparent into the context and the
// invocation logger; an invalid one is ignored.
func TestWithInvocationTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name      string
		header    http.Header
		wantTrace string
	}{
		{"valid traceparent and tracestate", http.Header{"Traceparent": {tp}, "Tracestate": {"congo=t61rcWkgMzE"}}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"invalid traceparent ignored", http.Header{"Traceparent": {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}}, ""},
		{"no traceparent", http.Header{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged lockedBuffer
			var sc tracing.SpanContext
			var had bool
			h := WithInvocation(slog.New(slog.NewJSONHandler(&logged, nil)), "CallerTimer", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sc, had = tracing.FromContext(r.Context())
				logctx.From(r.Context(), nil).Info("tick")
			}))
			req := httptest.NewRequest(http.MethodPost, "/CallerTimer", strings.NewReader(`{}`))
			for k, v := range tt.header {
				req.Header[k] = v
			}
			req.Header.Set(HeaderInvocationID, "inv-1")
			h.ServeHTTP(httptest.NewRecorder(), req)
			var line map[string]any
			if err := json.Unmarshal([]byte(logged.String()), &line); err != nil {
				t.Fatalf("log line: %v: %s", err, logged.String())
			}
			if tt.wantTrace == "" {
				if had || line["trace_id"] != nil {
					t.Errorf("trace taken from an absent or invalid header: %+v, %v", sc, line["trace_id"])
				}
				return
			}
			if !had || sc.TraceIDString() != tt.wantTrace || sc.State != "congo=t61rcWkgMzE" || line["trace_id"] != tt.wantTrace || line["invocation_id"] != "inv-1" {
				t.Errorf("span %+v (had %v), log line %v", sc, had, line)
			}
		})
	}
}
