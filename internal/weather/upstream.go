package weather

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/weatherfunc/handler/internal/problem"
)

// weatherPath is OpenWeatherMap's current-weather endpoint under BaseURL.
const weatherPath = "/data/2.5/weather"

// maxBody caps how much of an upstream body we read; real ones are < 1 KiB.
const maxBody = 1 << 20

// defaultRetryAfter is the pause after an upstream 429 that names none: the
// free plan's limit is per minute.
const defaultRetryAfter = time.Minute

// maxRetryAfter caps the pause after an upstream 429.
// NOTE: we honour the provider's Retry-After, but never beyond this bound, so
// a nonsensical value cannot take the API down for days.
const maxRetryAfter = time.Hour

// fetch makes one upstream call for q with key. It is the only place the key
// is put on the wire; every error it returns has been redacted.
func (s *Service) fetch(ctx context.Context, key string, q Query) (*Observation, *Error) {
	v := q.upstreamValues()
	v.Set("appid", key)
	u := *s.endpoint
	u.RawQuery = v.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil { // cannot happen: the URL was validated in New
		return nil, upstreamError(s.redact(err, key))
	}
	req.Header.Set("Accept", "application/json")
	s.upstreamCalls.Add(1)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.transportError(err, key)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, s.transportError(err, key)
	}
	if len(body) > maxBody {
		return nil, upstreamError(errors.New("upstream body too large"))
	}

	switch st := resp.StatusCode; {
	case st == http.StatusOK:
		obs, err := parseObservation(body, q.Units)
		switch {
		case errors.Is(err, errNotFoundBody):
			return nil, notFoundError()
		case err != nil:
			return nil, upstreamError(err)
		}
		return obs, nil
	case st == http.StatusNotFound:
		return nil, notFoundError()
	case st == http.StatusBadRequest:
		return nil, badLocationError(badLocationParams(q, parseError(body).Message))
	case st == http.StatusUnauthorized:
		s.credentialsRejected()
		return nil, credentialsError()
	case st == http.StatusTooManyRequests:
		retry := retryAfter(resp.Header.Get("Retry-After"), s.now())
		s.pauseUntil(s.now().Add(retry))
		return nil, rateLimitedError(retry)
	case st == http.StatusGatewayTimeout:
		return nil, timeoutError(fmt.Errorf("upstream status %d", st))
	default:
		return nil, upstreamError(fmt.Errorf("upstream status %d", st))
	}
}

// badLocationParams names the parameter an upstream 400 is about. Only the
// messages we know are interpreted; the provider's text never reaches a client.
func badLocationParams(q Query, msg string) []problem.InvalidParam {
	const reason = "not accepted by the weather provider"
	switch strings.ToLower(strings.TrimSpace(msg)) {
	case "wrong latitude":
		return []problem.InvalidParam{{Name: "lat", Reason: reason}}
	case "wrong longitude":
		return []problem.InvalidParam{{Name: "lon", Reason: reason}}
	}
	if q.Coordinates != nil {
		return []problem.InvalidParam{{Name: "lat", Reason: reason}, {Name: "lon", Reason: reason}}
	}
	return []problem.InvalidParam{{Name: "city", Reason: reason}}
}

// retryAfter reads a Retry-After value (delay-seconds or an HTTP date),
// falling back to defaultRetryAfter and capping at maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	d := defaultRetryAfter
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		d = time.Second
	}
	return min(d, maxRetryAfter)
}

// transportError classifies and redacts an error from the HTTP client.
func (s *Service) transportError(err error, key string) *Error {
	red := s.redact(err, key)
	switch {
	case errors.Is(red, context.DeadlineExceeded):
		return timeoutError(red)
	case errors.Is(red, context.Canceled):
		return canceledError(red)
	}
	return upstreamError(red)
}

// appidRE finds an appid parameter in any text that might quote a URL.
var appidRE = regexp.MustCompile(`(?i)appid=[^&\s"']*`)

// redact turns err into an error whose text holds neither the key nor the
// upstream query string. Nothing of err's chain survives except its text and
// whether it was a timeout or a cancellation.
//
// Go's *url.Error prints the whole request URL, appid included; we print the
// endpoint without its query instead.
func (s *Service) redact(err error, key string) error {
	r := &redactedError{
		canceled: errors.Is(err, context.Canceled),
		timeout:  errors.Is(err, context.DeadlineExceeded),
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.timeout = true
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Op + " " + s.endpoint.String() + ": " + ue.Err.Error()
	}
	msg = appidRE.ReplaceAllString(msg, "appid=[REDACTED]")
	if key != "" {
		for _, form := range []string{key, url.QueryEscape(key), url.PathEscape(key)} {
			msg = strings.ReplaceAll(msg, form, "[REDACTED]")
		}
	}
	r.msg = msg
	return r
}

// redactedError is a transport error with the key and URL removed.
type redactedError struct {
	msg               string
	timeout, canceled bool
}

func (e *redactedError) Error() string { return e.msg }

// Is lets errors.Is see context.DeadlineExceeded and context.Canceled through
// the redaction.
func (e *redactedError) Is(target error) bool {
	return (e.timeout && target == context.DeadlineExceeded) || (e.canceled && target == context.Canceled)
}
