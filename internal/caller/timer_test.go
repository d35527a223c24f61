package caller

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/logctx"
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

// The outcome policy on the handler's own streams (logctx.NewHostHandler,
// as cmd/handler wires it): partial failure → each failed city on stderr;
// total failure → the failures and a final Error line on stderr before the
// 500; success → nothing on stderr.
func TestTimerOutcomeOnStderr(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		cities     []string
		secret     string
		wantStatus int
		wantStderr []string
	}{
		{"success", []string{"London"}, daemonSecret, http.StatusOK, nil},
		{"partial failure", []string{"London", "Atlantis", "Paris"}, daemonSecret, http.StatusOK,
			[]string{`"level":"WARN","msg":"caller: city failed"`, `"city":"Atlantis","status":404`, `"city":"Paris","status":503`}},
		{"total failure", []string{"Atlantis"}, daemonSecret, http.StatusInternalServerError,
			[]string{`"city":"Atlantis"`, `"level":"ERROR","msg":"caller: tick failed: no city answered`}},
		{"no token", []string{"London"}, "wrong", http.StatusInternalServerError,
			[]string{`"setting":"CALLER_CLIENT_SECRET"`, `"level":"ERROR","msg":"caller: tick failed: no access token`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			logger := slog.New(logctx.NewHostHandler(&stdout, &stderr, slog.LevelInfo))
			ts := e.tokenSource(t, func(o *MSALOptions) { o.ClientSecret = secrets.Ready(secrets.New(tt.secret)) })
			d, err := New(Options{TargetURL: e.apiURL, Cities: tt.cities, Tokens: ts, HTTPClient: e.ca.Client(), Logger: logger, Sleep: noSleep})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/CallerTimer", bytes.NewReader(timerInvocation(t)))
			funcs.WithInvocation(logger, "CallerTimer", TimerHandler(d, "timer", time.Minute)).ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			errLines := stderr.String()
			if tt.wantStderr == nil && errLines != "" {
				t.Errorf("stderr on success:\n%s", errLines)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(errLines, w) {
					t.Errorf("stderr lacks %s:\n%s", w, errLines)
				}
			}
			if strings.Contains(errLines+stdout.String(), daemonSecret) || strings.Contains(errLines+stdout.String(), "eyJ") {
				t.Error("a secret or token was logged")
			}
		})
	}
}
