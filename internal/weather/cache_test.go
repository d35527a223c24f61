package weather

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/owm"
	"github.com/weatherfunc/handler/internal/devstack/tlsca"
	"github.com/weatherfunc/handler/internal/secrets"
)

// TestSingleflight: 100 concurrent misses for one key (spelled five ways,
// GET and HEAD mixed) make exactly one upstream call, counted by the
// stand-in itself; every caller gets the same reply.
func TestSingleflight(t *testing.T) {
	const n = 100
	key := testKey(t)
	stand := owm.New(owm.Options{APIKey: key})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // hold the first call until every request waits on it
		stand.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := newTestService(t, srv.URL, key, newClock(), Options{})

	var wg sync.WaitGroup
	recs := make([]*httptest.ResponseRecorder, n)
	cities := []string{"London", "london", "LONDON", "%20London", "London&units=metric"}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method := http.MethodGet
			if i%10 == 9 {
				method = http.MethodHead // joins the same flight
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(method, Path+"?city="+cities[i%len(cities)], nil))
			recs[i] = rec
		}()
	}
	waitWaiters(t, s, Query{City: "London", Units: Metric, Lang: "en"}.cacheKey(), n)
	close(release)
	wg.Wait()

	if got := stand.CallsFor("London"); got != 1 {
		t.Errorf("stand-in saw %d calls for London, want 1", got)
	}
	if got := stand.Calls(); got != 1 {
		t.Errorf("stand-in saw %d calls in all, want 1", got)
	}
	if got := s.UpstreamCalls(); got != 1 {
		t.Errorf("UpstreamCalls() = %d, want 1", got)
	}
	for i, rec := range recs {
		wantBody := recs[0].Body.String()
		if i%10 == 9 {
			wantBody = "" // HEAD
		}
		if rec.Code != 200 || rec.Body.String() != wantBody || rec.Header().Get("ETag") != recs[0].Header().Get("ETag") {
			t.Errorf("request %d: status %d, ETag %q, body %s", i, rec.Code, rec.Header().Get("ETag"), rec.Body)
		}
	}
	// Afterwards it is a plain hit.
	if rec := do(s, "city=London"); rec.Header().Get("Cache-Status") != "weatherhttp; hit; ttl=600" {
		t.Errorf("after the flight: Cache-Status %q", rec.Header().Get("Cache-Status"))
	}
}

// TestCacheTTL: hits until the TTL passes (injected clock), with Cache-Status
// and Age, then a new upstream call.
func TestCacheTTL(t *testing.T) {
	key := testKey(t)
	stand, base := standIn(t, key)
	clk := newClock()
	s := newTestService(t, base, key, clk, Options{CacheTTL: time.Minute})

	steps := []struct {
		advance     time.Duration
		query       string
		cacheStatus string
		age         string
		calls       int
	}{
		{0, "city=London", "weatherhttp; fwd=miss", "", 1},
		{0, "city=london", "weatherhttp; hit; ttl=60", "0", 1},
		{1500 * time.Millisecond, "city=LONDON", "weatherhttp; hit; ttl=58", "1", 1},
		{57 * time.Second, "city=London", "weatherhttp; hit; ttl=1", "58", 1},
		{1500 * time.Millisecond, "city=London", "weatherhttp; fwd=miss", "", 2},
		{time.Second, "city=London", "weatherhttp; hit; ttl=59", "1", 2},
		{0, "city=London&units=imperial", "weatherhttp; fwd=miss", "", 3},
		{0, "city=London&lang=ru", "weatherhttp; fwd=miss", "", 4},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		rec := do(s, st.query)
		if rec.Code != 200 {
			t.Fatalf("step %d: status %d", i, rec.Code)
		}
		if got := rec.Header().Get("Cache-Status"); got != st.cacheStatus {
			t.Errorf("step %d: Cache-Status = %q, want %q", i, got, st.cacheStatus)
		}
		if got := rec.Header().Get("Age"); got != st.age {
			t.Errorf("step %d: Age = %q, want %q", i, got, st.age)
		}
		if got := stand.Calls(); got != st.calls {
			t.Errorf("step %d: upstream calls = %d, want %d", i, got, st.calls)
		}
	}
}

// TestCacheLRU: the cache holds at most CacheSize locations and evicts the
// least recently used.
func TestCacheLRU(t *testing.T) {
	key := testKey(t)
	stand, base := standIn(t, key)
	s := newTestService(t, base, key, newClock(), Options{CacheSize: 2})
	for _, c := range []string{"London", "Moscow", "London", "Zocca", "London", "Moscow"} {
		if rec := do(s, "city="+c); rec.Code != 200 {
			t.Fatalf("%s: %d", c, rec.Code)
		}
	}
	// London stayed (used before Zocca came); Moscow was evicted by Zocca and fetched again.
	if got, want := [3]int{stand.CallsFor("London"), stand.CallsFor("Moscow"), stand.CallsFor("Zocca")}, [3]int{1, 2, 1}; got != want {
		t.Errorf("calls London/Moscow/Zocca = %v, want %v", got, want)
	}
	if n := s.cache.len(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
	for i := range 100 {
		s.cache.put(&entry{key: fmt.Sprint(i), staleUntil: time.Now().Add(time.Hour)})
	}
	if n := s.cache.len(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
}

// TestStaleOnUpstreamFailure: an expired observation stands in for a failed
// upstream call within MaxStale, marked stale; beyond it the failure shows.
func TestStaleOnUpstreamFailure(t *testing.T) {
	up := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
	clk := newClock()
	s := newTestService(t, up.srv.URL, testKey(t), clk, Options{CacheTTL: time.Minute, MaxStale: 10 * time.Minute})
	fresh := do(s, "city=London")
	up.set(reply{status: 500})

	clk.Advance(90 * time.Second)
	rec := do(s, "city=London")
	if rec.Code != 200 || rec.Body.String() != fresh.Body.String() {
		t.Fatalf("stale: status %d body %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Cache-Status"); got != "weatherhttp; hit; ttl=-30; detail=stale" {
		t.Errorf("Cache-Status = %q", got)
	}
	if got := rec.Header().Get("Age"); got != "90" {
		t.Errorf("Age = %q", got)
	}

	// A 404 is an answer about the location, not a failure: no stale cover.
	up.set(reply{status: 404, body: readOWM(t, "404_city_not_found.body.json")})
	clk.Advance(time.Second)
	if rec := do(s, "city=London"); rec.Code != 404 {
		t.Errorf("after upstream 404: status %d, want 404", rec.Code)
	}

	up2 := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
	s2 := newTestService(t, up2.srv.URL, testKey(t), clk, Options{CacheTTL: time.Minute, MaxStale: 10 * time.Minute})
	do(s2, "city=London")
	up2.set(reply{status: 503})
	clk.Advance(11*time.Minute + time.Second)
	if rec := do(s2, "city=London"); rec.Code != 502 {
		t.Errorf("beyond MaxStale: status %d, want 502", rec.Code)
	}

	// MaxStale < 0 disables stale answers.
	up3 := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
	s3 := newTestService(t, up3.srv.URL, testKey(t), clk, Options{CacheTTL: time.Minute, MaxStale: -1})
	do(s3, "city=London")
	up3.set(reply{status: 500})
	clk.Advance(61 * time.Second)
	if rec := do(s3, "city=London"); rec.Code != 502 {
		t.Errorf("stale disabled: status %d, want 502", rec.Code)
	}
}

// TestNotFoundCache: an unknown location is remembered for NotFoundTTL.
func TestNotFoundCache(t *testing.T) {
	key := testKey(t)
	stand, base := standIn(t, key)
	clk := newClock()
	s := newTestService(t, base, key, clk, Options{})
	for i, st := range []struct {
		advance     time.Duration
		cacheStatus string
		calls       int
	}{
		{0, "weatherhttp; fwd=miss", 1},
		{30 * time.Second, "weatherhttp; hit; ttl=30", 1},
		{30 * time.Second, "weatherhttp; fwd=miss", 2},
	} {
		clk.Advance(st.advance)
		rec := do(s, "city=Atlantis")
		if rec.Code != 404 {
			t.Errorf("step %d: status %d, want 404", i, rec.Code)
		}
		if p := decodeProblem(t, rec); p.Type != "https://weatherfunc.dev/problems/location-not-found" {
			t.Errorf("step %d: type %q", i, p.Type)
		}
		if got := rec.Header().Get("Cache-Status"); got != st.cacheStatus {
			t.Errorf("step %d: Cache-Status = %q, want %q", i, got, st.cacheStatus)
		}
		if got := stand.CallsFor("Atlantis"); got != st.calls {
			t.Errorf("step %d: calls = %d, want %d", i, got, st.calls)
		}
	}
}

// TestPauseAfter429: after an upstream 429, no upstream call is made before
// its Retry-After has passed (for any location); a cached observation is
// served stale meanwhile.
func TestPauseAfter429(t *testing.T) {
	body := readOWM(t, "weather_weather_name.body.json")
	up := newScripted(t, reply{status: 200, body: body})
	clk := newClock()
	s := newTestService(t, up.srv.URL, testKey(t), clk, Options{CacheTTL: time.Minute})
	do(s, "city=London")
	clk.Advance(2 * time.Minute)
	up.set(reply{status: 429, body: readOWM(t, "429_account_blocked.RECONSTRUCTED.body.json"), header: http.Header{"Retry-After": {"30"}}})
	if rec := do(s, "city=Paris"); rec.Code != 503 || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("429: status %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	calls := up.calls.Load()
	up.set(reply{status: 200, body: body})

	clk.Advance(10 * time.Second)
	rec := do(s, "city=Berlin")
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "20" {
		t.Errorf("during pause: status %d, Retry-After %q, want 503 and 20", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := do(s, "city=London"); rec.Code != 200 || rec.Header().Get("Cache-Status") != "weatherhttp; hit; ttl=-70; detail=stale" {
		t.Errorf("during pause, cached city: status %d, Cache-Status %q", rec.Code, rec.Header().Get("Cache-Status"))
	}
	if got := up.calls.Load(); got != calls {
		t.Errorf("upstream called during the pause (%d calls, want %d)", got, calls)
	}
	clk.Advance(20 * time.Second)
	if rec := do(s, "city=Berlin"); rec.Code != 200 {
		t.Errorf("after the pause: status %d", rec.Code)
	}
	if got := up.calls.Load(); got != calls+1 {
		t.Errorf("after the pause: %d calls, want %d", got, calls+1)
	}
}

// TestRateLimiter: beyond RatePerMinute, misses get 503 without an upstream call.
func TestRateLimiter(t *testing.T) {
	up := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
	clk := newClock()
	s := newTestService(t, up.srv.URL, testKey(t), clk, Options{RatePerMinute: 1})
	if rec := do(s, "city=London"); rec.Code != 200 {
		t.Fatalf("first: %d", rec.Code)
	}
	rec := do(s, "city=Paris")
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "60" {
		t.Errorf("over the limit: status %d, Retry-After %q, want 503 and 60", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := do(s, "city=London"); rec.Code != 200 {
		t.Errorf("cached city over the limit: %d", rec.Code)
	}
	if got := up.calls.Load(); got != 1 {
		t.Errorf("upstream calls = %d, want 1", got)
	}
	clk.Advance(time.Minute)
	if rec := do(s, "city=Paris"); rec.Code != 200 {
		t.Errorf("a minute later: %d", rec.Code)
	}
}

// TestC13_KeyNotReady (the weather side of C13, slow Key Vault at start):
// while the key is not resolved, 503 with Retry-After and
// no upstream call; once it is set, requests go through.
func TestC13_KeyNotReady(t *testing.T) {
	key := testKey(t)
	stand, base := standIn(t, key)
	cell := secrets.NewCell()
	s := newTestService(t, base, "", newClock(), Options{APIKey: cell})
	cell.Fail(errors.New("vault unreachable"))
	rec := do(s, "city=London")
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("not ready: status %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if p := decodeProblem(t, rec); p.Type != "https://weatherfunc.dev/problems/weather-unavailable" {
		t.Errorf("type %q", p.Type)
	}
	if stand.Calls() != 0 {
		t.Errorf("upstream called without a key")
	}
	cell.Set(secrets.New(key))
	if rec := do(s, "city=London"); rec.Code != 200 {
		t.Errorf("after Set: %d", rec.Code)
	}
}

// TestC18_UnresolvedKeyVaultReferenceNeverSentUpstream: a WEATHER_API_KEY
// that still holds the literal Key Vault reference is never sent as a key.
func TestC18_UnresolvedKeyVaultReferenceNeverSentUpstream(t *testing.T) {
	for _, ref := range []string{
		"@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/owm-key/)",
		"@microsoft.keyvault(VaultName=myvault;SecretName=owm-key)",
		" @Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/owm-key)",
	} {
		up := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
		var logs syncBuffer
		s := newTestService(t, up.srv.URL, ref, newClock(), Options{Logger: debugLogger(&logs)})
		rec := do(s, "city=London")
		if rec.Code != 503 {
			t.Errorf("%q: status %d, want 503", ref, rec.Code)
		}
		if up.calls.Load() != 0 {
			t.Errorf("%q: sent upstream", ref)
		}
		if !strings.Contains(logs.String(), "unresolved Key Vault reference") || !strings.Contains(logs.String(), "WEATHER_API_KEY") {
			t.Errorf("%q: log does not say why: %s", ref, logs.String())
		}
	}
}

func TestMethods(t *testing.T) {
	key := testKey(t)
	_, base := standIn(t, key)
	s := newTestService(t, base, key, newClock(), Options{})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(m, Path+"?city=London", nil))
		if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d, Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
		decodeProblem(t, rec)
	}
	get := do(s, "city=London")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodHead, Path+"?city=London", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != fmt.Sprint(get.Body.Len()) {
		t.Errorf("HEAD: status %d, body %d bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
	if rec.Header().Get("Content-Type") != ContentType {
		t.Errorf("HEAD Content-Type %q", rec.Header().Get("Content-Type"))
	}
}

// TestHTTPSThroughLocalCA runs the real path over TLS: Handler → Service →
// the stand-in behind the local CA, trusted through ca.Client().
func TestHTTPSThroughLocalCA(t *testing.T) {
	ca, err := tlsca.New()
	if err != nil {
		t.Fatal(err)
	}
	key := testKey(t)
	stand := owm.New(owm.Options{APIKey: key})
	srv, base, err := ca.Listen("", stand.Handler())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s := newTestService(t, base, key, newClock(), Options{HTTPClient: ca.Client()})
	api := httptest.NewServer(s.Handler())
	defer api.Close()
	resp, err := http.Get(api.URL + Path + "?city=New%20York,NY,US&units=imperial")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType {
		t.Errorf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if stand.CallsFor("new york,ny,us") != 1 {
		t.Errorf("stand-in calls for New York = %d", stand.CallsFor("New York,NY,US"))
	}
	// Without the CA the same service refuses the stand-in's certificate.
	s2 := newTestService(t, base, key, newClock(), Options{})
	if _, _, err := s2.Current(context.Background(), Query{City: "London"}); !errors.Is(err, ErrUpstream) {
		t.Errorf("untrusted certificate: %v, want ErrUpstream", err)
	}
}

func TestNewOptions(t *testing.T) {
	key := secrets.Ready(secrets.New("k"))
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"defaults", Options{APIKey: key}, ""},
		{"loopback http", Options{APIKey: key, BaseURL: "http://127.0.0.1:8080"}, ""},
		{"localhost http with prefix", Options{APIKey: key, BaseURL: "http://localhost:1/owm/"}, ""},
		{"ipv6 loopback http", Options{APIKey: key, BaseURL: "http://[::1]:1"}, ""},
		{"no key", Options{}, "APIKey is required"},
		{"remote http", Options{APIKey: key, BaseURL: "http://api.openweathermap.org"}, "must be https"},
		{"ftp", Options{APIKey: key, BaseURL: "ftp://127.0.0.1"}, "not https"},
		{"relative", Options{APIKey: key, BaseURL: "/data"}, "absolute"},
		{"query", Options{APIKey: key, BaseURL: "https://api.openweathermap.org/?appid=x"}, "query"},
		{"user info", Options{APIKey: key, BaseURL: "https://u:p@api.openweathermap.org"}, "user info"},
		{"ttl too short", Options{APIKey: key, CacheTTL: 500 * time.Millisecond}, "CacheTTL"},
		{"ttl too long", Options{APIKey: key, CacheTTL: 25 * time.Hour}, "CacheTTL"},
		{"ttl 1s", Options{APIKey: key, CacheTTL: time.Second}, ""},
		{"ttl 24h", Options{APIKey: key, CacheTTL: 24 * time.Hour}, ""},
		{"negative size", Options{APIKey: key, CacheSize: -1}, "CacheSize"},
		{"negative rate", Options{APIKey: key, RatePerMinute: -1}, "RatePerMinute"},
		{"timeout too long", Options{APIKey: key, UpstreamTimeout: 11 * time.Second}, "UpstreamTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	s, err := New(Options{APIKey: key, BaseURL: "http://localhost:1/owm/"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.endpoint.String(); got != "http://localhost:1/owm/data/2.5/weather" {
		t.Errorf("endpoint = %q", got)
	}
}

// len reports the number of entries held.
func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
