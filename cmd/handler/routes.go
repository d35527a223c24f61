package main

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/weatherfunc/handler/internal/auth"
	"github.com/weatherfunc/handler/internal/caller"
	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/weather"
)

// Function names: each must match a function folder (a test checks it).
const (
	fnWeather = "WeatherHttp"
	fnTimer   = "CallerTimer"
)

// routes registers every path the Functions host calls:
//
//	GET  /                  readiness probe (any status counts; we answer 200 at once)
//	GET  /api/WeatherHttp   the forwarded HTTP request (enableForwardingHttpRequest: true)
//	POST /WeatherHttp       the JSON invocation, when forwarding is switched off
//	POST /CallerTimer       the timer invocation
func routes(logger *slog.Logger, verifier *auth.Verifier, svc *weather.Service, daemon *caller.Daemon, deadline time.Duration) http.Handler {
	api := verifier.Middleware(svc.Handler())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /api/"+fnWeather, funcs.WithInvocation(logger, fnWeather, api))
	mux.Handle("POST /"+fnWeather, funcs.WithInvocation(logger, fnWeather, funcs.HTTPInvocation("req", "res", api)))
	mux.Handle("POST /"+fnTimer, funcs.WithInvocation(logger, fnTimer, caller.TimerHandler(daemon, "timer", deadline)))
	return caseInsensitive(mux, "/api/"+fnWeather, "/"+fnWeather, "/"+fnTimer)
}

// caseInsensitive maps a path that differs from one of paths only in case to
// that path before routing. The Functions host matches function routes
// case-insensitively and forwards the path as the client sent it
// (/api/weatherhttp), while Go's mux patterns are case-sensitive.
func caseInsensitive(next http.Handler, paths ...string) http.Handler {
	canon := make(map[string]string, len(paths))
	for _, p := range paths {
		canon[strings.ToLower(p)] = p
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := canon[strings.ToLower(r.URL.Path)]; ok && c != r.URL.Path {
			u := *r.URL
			u.Path, u.RawPath = c, ""
			r2 := *r
			r2.URL = &u
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}
