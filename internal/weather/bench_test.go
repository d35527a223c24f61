package weather

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
