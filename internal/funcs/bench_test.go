package funcs

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkWriteResponse is the JSON reply to the host for one timer tick
// (Logs lines and a ReturnValue summary, as CallerTimer sends them).
func BenchmarkWriteResponse(b *testing.B) {
	resp := InvocationResponse{
		Logs: []string{
			"London, GB: 9.4 °C, light rain (HTTP 200, 12 ms, 1 attempt)",
			"Moscow, RU: -2.1 °C, overcast clouds (HTTP 200, 14 ms, 1 attempt)",
		},
		ReturnValue: map[string]any{
			"cities": 2, "succeeded": 2, "failed": 0, "retried": 0,
			"durations_ms": map[string]any{"tick": 31, "token": 3, "slowest": 14},
		},
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		WriteResponse(rec, 200, resp)
		if rec.Code != 200 || rec.Body.Len() == 0 {
			b.Fatal(rec.Code)
		}
	}
}
