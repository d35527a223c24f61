package caller

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/secrets"
)

// timerInvocation builds the host's timer invocation around the captured
// timer value, double-encoded as the host sends scalars (C15).
func timerInvocation(t *testing.T) []byte {
	t.Helper()
	value, err := os.ReadFile(filepath.Join("testdata", "05-timerinfo-value.log-capture.json"))
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := json.Marshal(string(bytes.TrimSpace(value)))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(`{"Data":{"timer":` + string(encoded) + `},"Metadata":{"sys":{"MethodName":"\"CallerTimer\"","UtcNow":"\"2022-10-11T08:53:00.0012345Z\"","RandGuid":"\"6b5c1e0e-2f9c-4c55-9a55-0c8a0f1d3c11\""}}}`)
}

func TestTimerHandler(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		cities     []string
		secret     string
		body       []byte
		wantStatus int
		wantLines  int
	}{
		{"all answered", []string{"London"}, daemonSecret, timerInvocation(t), http.StatusOK, 1},
		{"some failed", []string{"London", "Atlantis"}, daemonSecret, timerInvocation(t), http.StatusOK, 2},
		{"all failed", []string{"Atlantis", "Paris"}, daemonSecret, timerInvocation(t), http.StatusInternalServerError, 2},
		{"no token", []string{"London"}, "wrong", timerInvocation(t), http.StatusInternalServerError, 2},
		{"unreadable payload still ticks", []string{"London"}, daemonSecret, []byte(`{"Data":`), http.StatusOK, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := e.tokenSource(t, func(o *MSALOptions) { o.ClientSecret = secrets.Ready(secrets.New(tt.secret)) })
			d := e.daemon(t, ts, tt.cities...)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/CallerTimer", bytes.NewReader(tt.body))
			TimerHandler(d, "timer", time.Minute).ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("C11: Content-Type = %q", ct)
			}
			var resp struct {
				Outputs     map[string]any
				Logs        []string
				ReturnValue map[string]any
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("reply is not JSON: %v", err)
			}
			if len(resp.Logs) != tt.wantLines || resp.ReturnValue["cities"] != float64(len(tt.cities)) {
				t.Errorf("Logs %q, ReturnValue %v", resp.Logs, resp.ReturnValue)
			}
			if strings.Contains(rec.Body.String(), daemonSecret) || strings.Contains(rec.Body.String(), "eyJ") {
				t.Error("secret or token in the reply")
			}
		})
	}
}
