package weather

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/auth"
	"github.com/weatherfunc/handler/internal/devstack/entra"
	"github.com/weatherfunc/handler/internal/devstack/owm"
	"github.com/weatherfunc/handler/internal/devstack/tlsca"
	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/logctx"
)

// BenchmarkHandlerCacheHit measures a warm request: validation, the cache
// lookup and writing the pre-encoded reply.
func BenchmarkHandlerCacheHit(b *testing.B) {
	key := testKey(b)
	body := readOWM(b, "weather_weather_name.body.json")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	defer up.Close()
	s := newTestService(b, up.URL, key, newClock(), Options{})
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, Path+"?city=London&units=metric", nil)
	if rec := httptest.NewRecorder(); func() int { h.ServeHTTP(rec, req); return rec.Code }() != 200 {
		b.Fatal("warm-up failed")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
	b.StopTimer()
	if n := s.UpstreamCalls(); n != 1 {
		b.Errorf("upstream calls = %d, want 1", n)
	}
}

// BenchmarkHandlerCacheHitParallel is the same under concurrent load.
func BenchmarkHandlerCacheHitParallel(b *testing.B) {
	key := testKey(b)
	body := readOWM(b, "weather_weather_name.body.json")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	defer up.Close()
	s := newTestService(b, up.URL, key, newClock(), Options{})
	h := s.Handler()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, Path+"?city=London", nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, Path+"?city=London", nil)
		for pb.Next() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}

// The benchmarks below are the request half of docs/PERFORMANCE.md: the
// whole WeatherHttp route (funcs.WithInvocation → auth.Middleware →
// Service.Handler, as cmd/handler/routes.go wires it) with the real token
// verifier against the Entra stand-in and the real service against the
// OpenWeatherMap stand-in, both on loopback, next to a minimal net/http
// handler as the baseline, all in the same run.

// benchStack is the WeatherHttp route built from the real packages.
type benchStack struct {
	route    http.Handler // what routes.go mounts at GET /api/WeatherHttp
	token    string       // a valid app-only token for the API
	svc      *Service
	verifier *auth.Verifier
}

func newBenchStack(b *testing.B, authOpts func(*auth.Options)) *benchStack {
	b.Helper()
	ca, err := tlsca.New()
	if err != nil {
		b.Fatal(err)
	}
	const (
		tenant = "7f1c0d2e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
		api    = "3e2d1c0b-aaaa-4bbb-8ccc-123456789abc"
		daemon = "5a5a5a5a-1111-4222-8333-444455556666"
		role   = auth.DefaultRequiredRole
	)
	idp, err := entra.Start(ca, entra.Options{
		TenantID: tenant,
		Clients:  map[string]entra.Client{daemon: {Roles: []string{role}}},
		API:      entra.API{ClientID: api},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = idp.Close() })
	tok, err := idp.Mint(entra.MintOptions{ClientID: daemon, Roles: []string{role}})
	if err != nil {
		b.Fatal(err)
	}
	ao := auth.Options{TenantID: tenant, AuthorityHost: idp.URL(), ClientID: api, HTTPClient: ca.Client()}
	if authOpts != nil {
		authOpts(&ao)
	}
	v, err := auth.New(ao)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	v.Start(ctx)
	for deadline := time.Now().Add(20 * time.Second); !v.Ready(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("verifier never became ready")
		}
	}

	key := testKey(b)
	up := httptest.NewServer(owm.New(owm.Options{APIKey: key}).Handler())
	b.Cleanup(up.Close)
	// The production logger, writing nowhere: its formatting cost counts.
	logger := slog.New(logctx.NewHostHandler(io.Discard, io.Discard, slog.LevelInfo))
	svc := newTestService(b, up.URL, key, nil, Options{Logger: logger})
	route := funcs.WithInvocation(logger, "WeatherHttp", v.Middleware(svc.Handler()))
	return &benchStack{route: route, token: tok, svc: svc, verifier: v}
}

// request is GET /api/WeatherHttp?city=London with the token, as the host
// forwards it.
func (s *benchStack) request() *http.Request {
	r := httptest.NewRequest(http.MethodGet, Path+"?city=London", nil)
	r.Header.Set("Authorization", "Bearer "+s.token)
	r.Header.Set(funcs.HeaderInvocationID, "3f2b9c1e-0000-4000-8000-000000000001")
	return r
}

// BenchmarkWeatherHTTPInProcess is the whole route (token gate, cache hit,
// reply) through httptest.ResponseRecorder: no network.
func BenchmarkWeatherHTTPInProcess(b *testing.B) {
	s := newBenchStack(b, nil)
	r := s.request()
	if rec := httptest.NewRecorder(); func() int { s.route.ServeHTTP(rec, r); return rec.Code }() != 200 {
		b.Fatal("warm-up failed")
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.route.ServeHTTP(rec, r)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
	b.StopTimer()
	if n := s.svc.UpstreamCalls(); n != 1 {
		b.Errorf("upstream calls = %d, want 1", n)
	}
}

// serveParallel drives GET url over loopback HTTP/1.1 keep-alive
// connections from 8 goroutines per GOMAXPROCS and checks every reply is a
// 200 with a body.
func serveParallel(b *testing.B, h http.Handler, header http.Header) {
	b.Helper()
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	const par = 8
	tr := &http.Transport{MaxIdleConnsPerHost: par * runtime.GOMAXPROCS(0)}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := srv.URL + Path + "?city=London"
	b.ReportAllocs()
	b.SetParallelism(par)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for k, vs := range header {
			req.Header[k] = vs
		}
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n == 0 {
				b.Errorf("status %d, %d bytes", resp.StatusCode, n)
				return
			}
		}
	})
}

// BenchmarkServeMinimal is the baseline: a minimal net/http handler writing
// a reply of the same size and headers count, over the same loopback
// client.
func BenchmarkServeMinimal(b *testing.B) {
	body := make([]byte, len(readOWM(b, "weather_weather_name.body.json")))
	for i := range body {
		body[i] = 'x'
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_, _ = w.Write(body)
	})
	serveParallel(b, h, nil)
}

// BenchmarkServeWeatherHTTP is the whole route over the same loopback
// client with a valid token and a cache hit: the cached request whose
// throughput is compared with BenchmarkServeMinimal's.
func BenchmarkServeWeatherHTTP(b *testing.B) {
	s := newBenchStack(b, nil)
	serveParallel(b, s.route, s.request().Header)
	b.StopTimer()
	if n := s.svc.UpstreamCalls(); n != 1 {
		b.Errorf("upstream calls = %d, want 1", n)
	}
}

// BenchmarkServeWeatherHTTPNoTokenCache is the same with the verified-token
// cache off: an RSA verification per request.
func BenchmarkServeWeatherHTTPNoTokenCache(b *testing.B) {
	s := newBenchStack(b, func(o *auth.Options) { o.CacheSize = -1 })
	serveParallel(b, s.route, s.request().Header)
}

// BenchmarkJSONReply encodes our JSON reply from a recorded OpenWeatherMap
// body: what the service does once per location per TTL (the body is then
// served as stored).
func BenchmarkJSONReply(b *testing.B) {
	body := readOWM(b, "weather_weather_name.body.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		obs, err := parseObservation(body, Metric)
		if err != nil {
			b.Fatal(err)
		}
		out, err := json.Marshal(obs)
		if err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
}
