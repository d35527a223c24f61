package weather

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/secrets"
)

// TestCredentialsRejectedTriggersKeyReread: an upstream 401 calls
// OnCredentialsRejected (at most once per CredentialsRecheckInterval), and a
// key Set from it is used by the next request: a rotated key heals without
// a restart.
func TestCredentialsRejectedTriggersKeyReread(t *testing.T) {
	oldKey, newKey := testKey(t), testKey(t)
	stand, base := standIn(t, newKey) // the provider already has the rotated key
	cell := secrets.Ready(secrets.New(oldKey))
	clk := newClock()
	var calls atomic.Int32
	var rotate atomic.Bool
	s := newTestService(t, base, "", clk, Options{APIKey: cell, OnCredentialsRejected: func() {
		calls.Add(1)
		if rotate.Load() {
			cell.Set(secrets.New(newKey)) // what the owner does after re-reading Key Vault
		}
	}})
	steps := []struct {
		name    string
		advance time.Duration
		rotate  bool
		status  int
		calls   int32
	}{
		{"first 401 signals", 0, false, http.StatusBadGateway, 1},
		{"second 401 within the interval does not", 10 * time.Second, false, http.StatusBadGateway, 1},
		{"after the interval it signals again, and the owner rotates", CredentialsRecheckInterval, true, http.StatusBadGateway, 2},
		{"the next request uses the new key", time.Second, false, http.StatusOK, 2},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		rotate.Store(st.rotate)
		rec := do(s, "city=London")
		if rec.Code != st.status {
			t.Errorf("%s: status %d, want %d", st.name, rec.Code, st.status)
		}
		if got := calls.Load(); got != st.calls {
			t.Errorf("%s: OnCredentialsRejected called %d times, want %d", st.name, got, st.calls)
		}
	}
	if got := stand.CallsFor("London"); got != 4 {
		t.Errorf("upstream calls = %d, want 4 (a 401 is not cached)", got)
	}
}

// TestRateLimiterServesStale: when our own limiter has no budget for a
// refresh, the expired observation is served stale at once, with no
// upstream call; a location never seen gets 503 with Retry-After.
func TestRateLimiterServesStale(t *testing.T) {
	up := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
	clk := newClock()
	s := newTestService(t, up.srv.URL, testKey(t), clk, Options{RatePerMinute: 1, CacheTTL: time.Second})
	if rec := do(s, "city=London"); rec.Code != 200 {
		t.Fatalf("first: %d", rec.Code)
	}
	clk.Advance(2 * time.Second)
	rec := do(s, "city=London")
	if rec.Code != 200 || rec.Header().Get("Cache-Status") != "weatherhttp; hit; ttl=-1; detail=stale" || rec.Header().Get("Age") != "2" {
		t.Errorf("over the limit, expired: status %d, Cache-Status %q, Age %q", rec.Code, rec.Header().Get("Cache-Status"), rec.Header().Get("Age"))
	}
	if rec := do(s, "city=Paris"); rec.Code != 503 || rec.Header().Get("Retry-After") != "58" {
		t.Errorf("over the limit, unknown: status %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1", n)
	}
}
