package host

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
)

// timerPayload decodes what the fake handler received for the timer binding.
func timerPayload(t *testing.T, tr TimerResult) funcs.TimerInfo {
	t.Helper()
	var rv timerReply
	if err := json.Unmarshal(tr.ReturnValue, &rv); err != nil {
		t.Fatalf("ReturnValue: %v (%+v)", err, tr)
	}
	inv, err := funcs.DecodeInvocation(bytes.NewReader(rv.Payload))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(inv.Metadata["sys"], &raw)
	if string(raw["MethodName"]) != `"\"CallerTimer\""` {
		t.Errorf("C15: MethodName on the wire = %s", raw["MethodName"])
	}
	info, err := inv.Timer("myTimer")
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// results collects OnTimer results.
type results struct {
	mu   sync.Mutex
	list []TimerResult
	c    chan TimerResult
}

func newResults() *results { return &results{c: make(chan TimerResult, 16)} }

func (r *results) on(tr TimerResult) {
	r.mu.Lock()
	r.list = append(r.list, tr)
	r.mu.Unlock()
	r.c <- tr
}

func (r *results) next(t *testing.T, what string) TimerResult {
	t.Helper()
	select {
	case tr := <-r.c:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatalf("no timer invocation: %s", what)
	}
	return TimerResult{}
}

// A tick missed while no host ran is made up at start-up with IsPastDue,
// from the schedule status the previous host kept in StateDir.
func TestPastDueRunAtStartup(t *testing.T) {
	stateDir := t.TempDir()
	first := start(t, appSpec{}, "serve", func(o *Options) { o.StateDir = stateDir })
	if tr, err := first.h.FireTimer(context.Background(), "CallerTimer", false); err != nil || tr.Failed {
		t.Fatalf("FireTimer = %+v, %v", tr, err)
	}
	if err := first.h.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(stateDir, "timerstatus", "CallerTimer", "status.json"))
	if err != nil || !strings.Contains(string(b), `"Next":"2024-05-14T15:15:00.0000000+00:00"`) {
		t.Fatalf("state file = %s, %v", b, err)
	}

	t.Run("not yet due: no run at start", func(t *testing.T) {
		got := newResults()
		s := start(t, appSpec{}, "serve", func(o *Options) { o.StateDir = stateDir; o.OnTimer = got.on })
		s.clock.Advance(30 * time.Second) // 15:14:45, before Next
		tr, err := s.h.FireTimer(context.Background(), "CallerTimer", false)
		if err != nil || tr.Failed {
			t.Fatalf("FireTimer = %+v, %v", tr, err)
		}
		if r := got.next(t, "the manual run"); r.InvocationID != tr.InvocationID {
			t.Errorf("an unexpected run at start: %+v", r)
		}
		_ = s.h.Close()
	})

	// The manual run above moved Next to 15:15:00 again; start the host
	// ten minutes later.
	got := newResults()
	s := start(t, appSpec{}, "serve", func(o *Options) {
		o.StateDir = stateDir
		o.OnTimer = got.on
		o.Now = func() time.Time { return time.Date(2024, 5, 14, 15, 25, 0, 0, time.UTC) }
	})
	tr := got.next(t, "the past-due run")
	if tr.Failed {
		t.Fatalf("past-due run failed: %+v", tr)
	}
	info := timerPayload(t, tr)
	if !info.IsPastDue || info.Status == nil || !info.Status.Next.Equal(time.Date(2024, 5, 14, 15, 15, 0, 0, time.UTC)) {
		t.Errorf("C14: past-due payload = %+v (status %+v)", info, info.Status)
	}
	if !strings.Contains(s.stdout.String(), "Reason='IsPastDue'") || !strings.Contains(s.stdout.String(), "was missed") {
		t.Errorf("stdout:\n%s", s.stdout)
	}
}

// runOnStartup: one run at start, before any schedule fires, as a first
// run (ScheduleStatus null). useMonitor false keeps no state.
func TestRunOnStartup(t *testing.T) {
	got := newResults()
	s := start(t, appSpec{}, "serve", func(o *Options) {
		o.OnTimer = got.on
		fj := `{"bindings":[{"name":"myTimer","type":"timerTrigger","direction":"in","schedule":"%CALLER_SCHEDULE%","runOnStartup":true,"useMonitor":false}]}`
		if err := os.WriteFile(filepath.Join(o.AppRoot, "CallerTimer", "function.json"), []byte(fj), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	tr := got.next(t, "the start-up run")
	info := timerPayload(t, tr)
	if tr.Failed || info.IsPastDue || info.Status != nil {
		t.Errorf("start-up run = %+v, payload %+v", tr, info)
	}
	if _, err := os.Stat(filepath.Join(s.root, DefaultStateDir)); !os.IsNotExist(err) {
		t.Errorf("useMonitor false, but a state directory exists: %v", err)
	}
}

// POST /admin/functions/CallerTimer answers 202 and runs the timer with the
// real payload.
func TestAdminFiresTimer(t *testing.T) {
	got := newResults()
	s := start(t, appSpec{}, "serve", func(o *Options) { o.OnTimer = got.on })
	req := newReq(t, "POST", s.h.URL()+"/admin/functions/CallerTimer", strings.NewReader(`{"input":""}`))
	req.Header.Set("Content-Type", "application/json")
	res, _ := do(t, req)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("admin status = %d", res.StatusCode)
	}
	tr := got.next(t, "the admin run")
	info := timerPayload(t, tr)
	if tr.Failed || info.IsPastDue || !info.AdjustForDST || info.Status != nil {
		t.Errorf("admin run = %+v, payload %+v", tr, info)
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/admin/functions/CallerTimer", http.StatusMethodNotAllowed},
		{"POST", "/admin/functions/WeatherHttp", http.StatusNotFound},
		{"POST", "/admin/functions/Nope", http.StatusNotFound},
	} {
		if res, _ := do(t, newReq(t, tc.method, s.h.URL()+tc.path, nil)); res.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, res.StatusCode, tc.want)
		}
	}
}

// Failures further apart than 30 minutes never add up to three: the host
// keeps restarting the handler.
func TestRestartPolicyWindow(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2024, 5, 14, 15, 0, 0, 0, time.UTC)
	s := start(t, appSpec{}, "crash", func(o *Options) {
		o.Now = func() time.Time { // every reading is 11 minutes after the last
			mu.Lock()
			defer mu.Unlock()
			now = now.Add(11 * time.Minute)
			return now
		}
	})
	eventually(t, "a fifth start", func() bool { return strings.Count(s.stdout.String(), "Starting handler") >= 5 })
	select {
	case <-s.h.done:
		t.Errorf("the host gave up: %v", s.h.Wait())
	default:
	}
}

// handlerReady reports whether the current handler process runs (after a
// restart, h.proc is replaced only once the new one answered GET /).
func (h *Host) handlerReady() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.proc.exited:
		return false
	default:
		return true
	}
}
