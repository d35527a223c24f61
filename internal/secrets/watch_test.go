package secrets

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAfter hands every wait the code under test starts to the test, which
// decides when it ends: the schedule runs without real waiting.
type fakeAfter struct{ waits chan fakeWait }

type fakeWait struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeAfter() *fakeAfter { return &fakeAfter{waits: make(chan fakeWait, 64)} }

func (f *fakeAfter) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.waits <- fakeWait{d: d, fire: ch}
	return ch
}

// next returns the wait Run starts next: proof that it finished what came
// before (a read, a Set).
func (f *fakeAfter) next(t *testing.T) fakeWait {
	t.Helper()
	select {
	case w := <-f.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("no wait started")
		return fakeWait{}
	}
}

// watchStack is newStack with a resolver on the fake clock.
func watchStack(t *testing.T, wrap func(*stack, http.Handler) http.Handler) (*stack, *fakeAfter) {
	t.Helper()
	st := newStack(t, wrap, nil)
	clock := newFakeAfter()
	r, err := NewResolver(ResolverOptions{
		Credential: st.cred, HTTPClient: st.hc,
		Logger:     slog.New(slog.NewJSONHandler(st.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: time.Second, MaxBackoff: 30 * time.Second, After: clock.After,
	})
	if err != nil {
		t.Fatal(err)
	}
	st.resolver = r
	return st, clock
}

func runWatcher(t *testing.T, w *Watcher) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	return done
}

func cellValue(t *testing.T, c *Cell) string {
	t.Helper()
	s, err := c.Get()
	if err != nil {
		t.Fatalf("cell: %v", err)
	}
	return s.Reveal()
}

// A secret rotated in Key Vault reaches the process on the refresh schedule,
// without a restart (issue 4, rotation).
func TestWatchHealsRotatedSecretOnSchedule(t *testing.T) {
	st, clock := watchStack(t, nil)
	ref := mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/weather-api-key/)")
	cell := NewCell()
	w := st.resolver.Watch("WEATHER_API_KEY", ref, cell, time.Hour)
	runWatcher(t, w)

	wait := clock.next(t) // the first read is done; the schedule starts
	if v := cellValue(t, cell); v != weatherKey {
		t.Fatalf("first read = %q", v)
	}
	if wait.d > time.Hour || wait.d < 54*time.Minute {
		t.Errorf("refresh wait = %v, want the interval minus at most 10 %%", wait.d)
	}
	const rotated = "owm-KEY-rotated-77aa-do-not-log"
	st.kv.SetSecret("weather-api-key", rotated)
	if v := cellValue(t, cell); v != weatherKey {
		t.Errorf("value changed before the schedule said so: %q", v)
	}
	wait.fire <- time.Now()
	wait = clock.next(t)
	if v := cellValue(t, cell); v != rotated {
		t.Errorf("after the scheduled re-read = %q, want the rotated value", v)
	}
	// Nothing new in the vault: the value stays, the schedule goes on.
	wait.fire <- time.Now()
	clock.next(t)
	if v := cellValue(t, cell); v != rotated {
		t.Errorf("after an unchanged re-read = %q", v)
	}
	if n := st.kv.Reads("weather-api-key"); n != 3 {
		t.Errorf("vault reads = %d, want 3 (start, two scheduled)", n)
	}
	logs := st.logs.String()
	if !strings.Contains(logs, "key vault secret rotated") || !strings.Contains(logs, st.kv.Version("weather-api-key")) {
		t.Errorf("no rotation line naming the new version:\n%s", logs)
	}
	st.assertNoSecrets(t, "logs", logs)
	if strings.Contains(logs, rotated) {
		t.Error("the rotated value is in the logs")
	}
}

// Refresh (OpenWeatherMap answered 401) re-reads at once, through the same
// loop as the schedule.
func TestWatchRefreshReadsAtOnce(t *testing.T) {
	st, clock := watchStack(t, nil)
	ref := mustParse(t, "@Microsoft.KeyVault(VaultName=placeholder;SecretName=weather-api-key)")
	ref.VaultURL = st.vaultURL
	cell := NewCell()
	w := st.resolver.Watch("WEATHER_API_KEY", ref, cell, 0)
	if w.Interval() != DefaultRefreshInterval {
		t.Errorf("default interval = %v", w.Interval())
	}
	runWatcher(t, w)
	clock.next(t) // never fired
	st.kv.SetSecret("weather-api-key", "owm-KEY-rotated-2-do-not-log")
	w.Refresh()
	w.Refresh() // merged with the first
	clock.next(t)
	if v := cellValue(t, cell); v != "owm-KEY-rotated-2-do-not-log" {
		t.Errorf("after Refresh = %q", v)
	}
	if n := st.kv.Reads("weather-api-key"); n != 2 && n != 3 {
		t.Errorf("vault reads = %d, want 2 (or 3 if the second Refresh came after the read)", n)
	}
}

// A failed re-read keeps the current value in service, is retried with
// backoff (not after a whole interval), and heals.
func TestWatchFailedReReadKeepsValue(t *testing.T) {
	var deny atomic.Bool
	body := readTestdata(t, "403_ForbiddenByRbac_getSecret.body.json")
	st, clock := watchStack(t, func(st *stack, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if deny.Load() && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write(body)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	ref := mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/caller-client-secret)")
	cell := NewCell()
	runWatcher(t, st.resolver.Watch("CALLER_CLIENT_SECRET", ref, cell, 10*time.Minute))
	wait := clock.next(t)
	deny.Store(true)
	wait.fire <- time.Now()
	wait = clock.next(t)
	if wait.d > time.Second {
		t.Errorf("retry after a failed re-read in %v, want the backoff (at most 1 s)", wait.d)
	}
	if v := cellValue(t, cell); v != callerSecret {
		t.Errorf("value during the outage = %q, want the old one", v)
	}
	if !strings.Contains(st.logs.String(), "the current value stays in use") || !strings.Contains(st.logs.String(), "ForbiddenByRbac") {
		t.Errorf("no warning for the failed re-read:\n%s", st.logs.String())
	}
	deny.Store(false)
	st.kv.SetSecret("caller-client-secret", "caller-SECRET-rotated-do-not-log")
	wait.fire <- time.Now()
	wait = clock.next(t)
	if wait.d < 9*time.Minute {
		t.Errorf("after healing the next read is in %v, want the interval", wait.d)
	}
	if v := cellValue(t, cell); v != "caller-SECRET-rotated-do-not-log" {
		t.Errorf("after healing = %q", v)
	}
	st.assertNoSecrets(t, "logs", st.logs.String())
}

// A versioned reference is read once: Run returns, Refresh does nothing.
func TestWatchVersionedReadOnce(t *testing.T) {
	st, _ := watchStack(t, nil)
	v := st.kv.Version("weather-api-key")
	ref := mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/weather-api-key/"+v+")")
	cell := NewCell()
	w := st.resolver.Watch("WEATHER_API_KEY", ref, cell, time.Minute)
	if w.Versionless() {
		t.Fatal("a versioned reference reads as versionless")
	}
	done := runWatcher(t, w)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return for a versioned reference")
	}
	w.Refresh()
	if got := cellValue(t, cell); got != weatherKey {
		t.Errorf("value = %q", got)
	}
	if n := st.kv.Reads("weather-api-key"); n != 1 {
		t.Errorf("vault reads = %d, want 1", n)
	}
}

func TestWatchClampsInterval(t *testing.T) {
	r, _ := NewResolver(ResolverOptions{Credential: nil})
	if r != nil {
		t.Fatal("resolver without credential")
	}
	st := newStack(t, nil, nil)
	for _, tt := range []struct{ in, want time.Duration }{
		{0, DefaultRefreshInterval}, {time.Second, MinRefreshInterval}, {48 * time.Hour, MaxRefreshInterval}, {90 * time.Minute, 90 * time.Minute},
	} {
		if got := st.resolver.Watch("X", Reference{}, NewCell(), tt.in).Interval(); got != tt.want {
			t.Errorf("Watch(%v).Interval() = %v, want %v", tt.in, got, tt.want)
		}
	}
}
