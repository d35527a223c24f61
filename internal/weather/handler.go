package weather

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
//
// A 200 carries a strong ETag of its body and Cache-Control: private with a
// max-age that ends the client's freshness when our cache entry's ends; a
// request whose If-None-Match names the current ETag (or is "*") gets 304
// with the same headers and no body. HEAD gets GET's status and headers,
// errors included, and never a body.
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
	if r.Method == http.MethodHead {
		// net/http drops a HEAD body itself, but the JSON-invocation path
		// (forwarding off) would copy it into Outputs.res.body.
		w = headWriter{w}
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
	h.Set("ETag", e.etag)
	h.Set("Cache-Control", cacheControl(state, s.ttl))
	if etagMatches(r.Header.Values("If-None-Match"), e.etag) {
		// RFC 9110 §15.4.5: the headers a 200 would carry that describe the
		// cache (ETag, Cache-Control, plus our Cache-Status and Age), no
		// Content-Type, no Content-Length, no body.
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
}

// headWriter discards the body of a reply to HEAD, keeping its headers
// (Content-Length included: it is the length GET would send).
type headWriter struct{ http.ResponseWriter }

func (headWriter) Write(p []byte) (int, error) { return len(p), nil }

// retryAfterSeconds renders d as Retry-After delay-seconds, rounded up.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

// entityTag is the strong ETag of an encoded observation: the first 144 bits
// of its SHA-256, unpadded base64url, quoted. Equal bytes give equal tags, so
// a refetch that brings the same observation keeps the client's copy valid.
func entityTag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

// etagMatches reports whether an If-None-Match field (all its lines) names
// etag, by the weak comparison RFC 9110 §13.1.2 prescribes for it (W/ is
// ignored), or is "*". A malformed list matches nothing from the first bad
// element on, so the client gets a full 200.
func etagMatches(lines []string, etag string) bool {
	for _, s := range lines {
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			if s[0] == '*' {
				return true
			}
			s = strings.TrimPrefix(s, "W/")
			if s == "" || s[0] != '"' {
				break
			}
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				break
			}
			if s[:end+2] == etag {
				return true
			}
			s = s[end+2:]
		}
	}
	return false
}

// cacheControl is the Cache-Control of a 200. It is private because the
// reply went to one authorized caller (a shared cache must not hand it to
// callers without a token).
//
// NOTE: RFC 9111 §4.2.3 counts max-age from the moment the response was
// generated, which a client learns from Age. So on a hit max-age is Age plus
// the seconds of freshness left (the entry's whole TTL, floored), and the
// client's copy stops being fresh when ours does; max-age set to the seconds
// left alone would make a client that honours Age see every hit as stale. A
// miss has no Age, so there max-age is simply the TTL. A stale answer gets
// max-age=0.
func cacheControl(state CacheState, ttl time.Duration) string {
	switch {
	case !state.Hit:
		return "private, max-age=" + strconv.FormatInt(int64(ttl/time.Second), 10)
	case state.Stale:
		return "private, max-age=0"
	}
	age := int64(state.Age / time.Second)
	left := int64(math.Floor(state.TTL.Seconds()))
	return "private, max-age=" + strconv.FormatInt(age+left, 10)
}
