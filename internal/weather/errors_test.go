package weather

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestUpstreamErrorMapping maps each recorded OpenWeatherMap error (and the
// statuses it can send) to our reply.
func TestUpstreamErrorMapping(t *testing.T) {
	tests := []struct {
		name       string
		query      string
		rep        reply
		wantStatus int
		wantType   string
		wantRetry  string
		wantParams []string
	}{
		{"401 invalid key (recorded, http link)", "city=London",
			reply{status: 401, body: fileBody("errors_access_denied.body.json")}, 502, "upstream-credentials", "", nil},
		{"401 invalid key (https variant)", "city=London",
			reply{status: 401, body: fileBody("401_invalid_api_key_https_variant.body.json")}, 502, "upstream-credentials", "", nil},
		{"404 city not found", "city=Atlantis",
			reply{status: 404, body: fileBody("404_city_not_found.body.json")}, 404, "location-not-found", "", nil},
		{"legacy 2014 not found with HTTP 200", "city=Atlantis",
			reply{status: 200, body: fileBody("legacy-2014_not_found_http200.body.json")}, 404, "location-not-found", "", nil},
		{"400 nothing to geocode", "city=London",
			reply{status: 400, body: fileBody("400_nothing_to_geocode.body.json")}, 400, "invalid-params", "", []string{"city"}},
		{"400 wrong latitude", "lat=1&lon=2",
			reply{status: 400, body: fileBody("400_wrong_latitude.body.json")}, 400, "invalid-params", "", []string{"lat"}},
		{"400 wrong longitude", "lat=1&lon=2",
			reply{status: 400, body: fileBody("400_wrong_longitude.body.json")}, 400, "invalid-params", "", []string{"lon"}},
		{"400 other message", "lat=1&lon=2",
			reply{status: 400, body: fileBody("one_call_error_out_of_range.body.json")}, 400, "invalid-params", "", []string{"lat", "lon"}},
		{"429 reconstructed, no Retry-After", "city=London",
			reply{status: 429, body: fileBody("429_account_blocked.RECONSTRUCTED.body.json")}, 503, "upstream-rate-limited", "60", nil},
		{"429 with Retry-After seconds", "city=London",
			reply{status: 429, body: fileBody("429_account_blocked.RECONSTRUCTED.body.json"), header: http.Header{"Retry-After": {"120"}}}, 503, "upstream-rate-limited", "120", nil},
		{"429 with absurd Retry-After is capped", "city=London",
			reply{status: 429, header: http.Header{"Retry-After": {"99999999"}}}, 503, "upstream-rate-limited", "3600", nil},
		{"500", "city=London", reply{status: 500, body: []byte("oops")}, 502, "upstream-failed", "", nil},
		{"502", "city=London", reply{status: 502}, 502, "upstream-failed", "", nil},
		{"503", "city=London", reply{status: 503}, 502, "upstream-failed", "", nil},
		{"504", "city=London", reply{status: 504}, 504, "upstream-timeout", "", nil},
		{"403", "city=London", reply{status: 403, body: []byte(`{"cod":403}`)}, 502, "upstream-failed", "", nil},
		{"200 not JSON", "city=London", reply{status: 200, body: []byte("<html>")}, 502, "upstream-failed", "", nil},
		{"200 empty object", "city=London", reply{status: 200, body: []byte("{}")}, 502, "upstream-failed", "", nil},
		{"200 with cod 500", "city=London", reply{status: 200, body: []byte(`{"cod":500,"dt":1,"main":{}}`)}, 502, "upstream-failed", "", nil},
		{"200 dt out of range", "city=London", reply{status: 200, body: []byte(`{"dt":999999999999999,"main":{"temp":1}}`)}, 502, "upstream-failed", "", nil},
		{"302 is not followed", "city=London",
			reply{status: 302, header: http.Header{"Location": {"http://192.0.2.1/steal"}}}, 502, "upstream-failed", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := tc.rep
			if rep.body != nil && strings.HasPrefix(string(rep.body), "file:") {
				rep.body = readOWM(t, strings.TrimPrefix(string(rep.body), "file:"))
			}
			up := newScripted(t, rep)
			s := newTestService(t, up.srv.URL, testKey(t), newClock(), Options{})
			rec := do(s, tc.query)
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d (body %s)", rec.Code, tc.wantStatus, rec.Body)
			}
			p := decodeProblem(t, rec)
			if want := "https://weatherfunc.dev/problems/" + tc.wantType; p.Type != want {
				t.Errorf("type = %q, want %q", p.Type, want)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tc.wantRetry)
			}
			var names []string
			for _, ip := range p.InvalidParams {
				names = append(names, ip.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.wantParams, ",") {
				t.Errorf("invalid-params = %v, want %v", names, tc.wantParams)
			}
			if got := up.calls.Load(); got != 1 {
				t.Errorf("upstream calls = %d, want 1", got)
			}
			// The provider's own words never reach our client.
			for _, leak := range []string{"openweathermap.org", "Invalid API key", "geocode", "wrong l", "city not found", "blocked"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("reply quotes the provider (%q): %s", leak, rec.Body)
				}
			}
			if got := rec.Header().Get("Cache-Status"); got != "weatherhttp; fwd=miss" {
				t.Errorf("Cache-Status = %q", got)
			}
		})
	}
}

// fileBody marks a reply body to be read from testdata/owm inside the subtest.
func fileBody(name string) []byte { return []byte("file:" + name) }

// TestUpstreamTimeout: a hung upstream gives 504 once UpstreamTimeout passes.
func TestUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newTestService(t, srv.URL, testKey(t), newClock(), Options{UpstreamTimeout: 50 * time.Millisecond})
	rec := do(s, "city=London")
	if rec.Code != http.StatusGatewayTimeout {
		t.Errorf("status = %d, want 504 (%s)", rec.Code, rec.Body)
	}
	_, _, err := s.Current(context.Background(), Query{City: "Paris"})
	if !errors.Is(err, ErrUpstreamTimeout) {
		t.Errorf("Current error = %v, want ErrUpstreamTimeout", err)
	}
}

// TestUpstreamUnreachable: a network error gives 502.
func TestUpstreamUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	s := newTestService(t, base, testKey(t), newClock(), Options{})
	rec := do(s, "city=London")
	if rec.Code != http.StatusBadGateway {
		t.Errorf("status = %d, want 502", rec.Code)
	}
	_, _, err = s.Current(context.Background(), Query{City: "London"})
	var werr *Error
	if !errors.As(err, &werr) || !errors.Is(err, ErrUpstream) || werr.Status() != 502 {
		t.Errorf("Current error = %v, want an *Error wrapping ErrUpstream", err)
	}
	if !strings.Contains(err.Error(), "/data/2.5/weather") || strings.Contains(err.Error(), "appid") {
		t.Errorf("error should name the endpoint without its query: %v", err)
	}
}

// TestCancellationCancelsUpstream: when the only caller goes away, the
// upstream request is canceled; when another caller still waits, it is not.
func TestCancellationCancelsUpstream(t *testing.T) {
	t.Run("sole caller", func(t *testing.T) {
		started, canceled := make(chan struct{}), make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			<-r.Context().Done()
			close(canceled)
		}))
		defer srv.Close()
		s := newTestService(t, srv.URL, testKey(t), newClock(), Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			_, _, err := s.Current(ctx, Query{City: "London"})
			done <- err
		}()
		<-started
		cancel()
		if err := <-done; !errors.Is(err, ErrCanceled) {
			t.Errorf("Current error = %v, want ErrCanceled", err)
		}
		select {
		case <-canceled:
		case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
			t.Error("upstream request was not canceled")
		}
	})
	t.Run("another caller still waits", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		body := readOWM(t, "weather_weather_name.body.json")
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-release:
			case <-r.Context().Done():
				t.Error("upstream canceled although a caller still waits")
				return
			}
			_, _ = w.Write(body)
		}))
		defer srv.Close()
		s := newTestService(t, srv.URL, testKey(t), newClock(), Options{})
		ctxA, cancelA := context.WithCancel(context.Background())
		errA, errB := make(chan error), make(chan error)
		go func() { _, _, err := s.Current(ctxA, Query{City: "London"}); errA <- err }()
		<-started
		go func() { _, _, err := s.Current(context.Background(), Query{City: "london"}); errB <- err }()
		waitWaiters(t, s, Query{City: "London", Units: Metric, Lang: "en"}.cacheKey(), 2)
		cancelA()
		if err := <-errA; !errors.Is(err, ErrCanceled) {
			t.Errorf("caller A: %v, want ErrCanceled", err)
		}
		close(release)
		if err := <-errB; err != nil {
			t.Errorf("caller B: %v", err)
		}
	})
}

// waitWaiters blocks until n callers wait on the flight for key.
func waitWaiters(t *testing.T, s *Service, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // hang guard only
	for time.Now().Before(deadline) {
		s.mu.Lock()
		f := s.flights[key]
		got := 0
		if f != nil {
			got = f.waiters
		}
		s.mu.Unlock()
		if got == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("never saw %d waiters on %q", n, key)
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Duration
	}{
		{"absent", "", time.Minute},
		{"seconds", "30", 30 * time.Second},
		{"zero", "0", time.Second},
		{"http date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"past date", now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		{"garbage", "soon", time.Minute},
		{"huge", "1000000000000", time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.in, now); got != tc.want {
				t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
