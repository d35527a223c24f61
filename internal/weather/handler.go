package weather

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/problem"
)

// Path is where the caller mounts Handler (the WeatherHttp function's route).
const Path = "/api/WeatherHttp"

// ContentType is the media type of a successful reply.
const ContentType = "application/json; charset=utf-8"

// Handler serves GET and HEAD requests for the current weather
// (Path?city=…|lat=…&lon=…[&units=…][&lang=…]) with our JSON or a
// problem+json error. It does not look at the path; mount it at Path behind
// the token gate. Other methods get 405 with Allow.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		problem.Write(w, problem.Details{Type: "method-not-allowed", Status: http.StatusMethodNotAllowed,
			Title: "Method not allowed", Detail: "use GET or HEAD"})
		return
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		// NOTE: stricter than r.URL.Query(), which silently drops what it cannot parse.
		problem.Write(w, problem.Details{Type: "invalid-params", Status: http.StatusBadRequest,
			Title: "Invalid request parameters", Detail: "the query string is malformed"})
		return
	}
	q, bad := ParseQuery(v)
	if len(bad) > 0 {
		problem.Write(w, invalidParamsError(bad).Problem())
		return
	}

	e, state, werr := s.get(r.Context(), q)
	h.Set("Cache-Status", state.CacheStatus())
	if state.Hit {
		h.Set("Age", state.AgeSeconds())
	}
	if werr != nil {
		if errors.Is(werr, ErrCanceled) {
			logctx.From(r.Context(), s.log).Debug("weather: request canceled", "query", q.String())
		}
		if werr.retryAfter > 0 {
			h.Set("Retry-After", retryAfterSeconds(werr.retryAfter))
		}
		problem.Write(w, werr.Problem())
		return
	}
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.body)
	}
}

// retryAfterSeconds renders d as Retry-After delay-seconds, rounded up.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}
