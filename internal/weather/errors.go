package weather

import (
	"errors"
	"net/http"
	"time"

	"github.com/weatherfunc/handler/internal/problem"
)

// Error kinds. Every error from Current wraps exactly one of them (test with
// errors.Is) inside an *Error that carries the safe, client-facing reply.
var (
	// ErrNotFound: the weather provider knows no such location.
	ErrNotFound = errors.New("location not found")
	// ErrBadLocation: the query is invalid, or the provider refused the
	// location (its HTTP 400).
	ErrBadLocation = errors.New("location refused by the weather provider")
	// ErrKeyNotReady: the API key has not been resolved yet (or is unusable).
	ErrKeyNotReady = errors.New("weather API key not available")
	// ErrCredentialsRejected: the provider answered 401 to our key.
	ErrCredentialsRejected = errors.New("weather provider rejected our credentials")
	// ErrRateLimited: the provider answered 429, or we are still inside its
	// Retry-After, or our own rate limiter has no budget left.
	ErrRateLimited = errors.New("weather provider rate limit reached")
	// ErrUpstream: the provider failed (5xx, unexpected status, unusable body, network).
	ErrUpstream = errors.New("weather provider failed")
	// ErrUpstreamTimeout: the provider did not answer in time.
	ErrUpstreamTimeout = errors.New("weather provider timed out")
	// ErrCanceled: the caller went away before the answer was ready.
	ErrCanceled = errors.New("request canceled")
)

// Error is a failure of Current with two audiences: Error() is for logs and
// code (it never contains the key or the upstream URL), Problem() is the reply
// for clients.
type Error struct {
	kind       error
	cause      error  // redacted; may be nil
	status     int    // our HTTP status
	slug       string // problem type slug
	title      string // problem title
	detail     string // safe for any client; may be empty
	params     []problem.InvalidParam
	retryAfter time.Duration // > 0: send Retry-After
}

// Error implements error.
func (e *Error) Error() string {
	if e.cause == nil {
		return "weather: " + e.kind.Error()
	}
	return "weather: " + e.kind.Error() + ": " + e.cause.Error()
}

// Unwrap exposes the kind (and the redacted cause) to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// Status is the HTTP status we answer with.
func (e *Error) Status() int { return e.status }

// RetryAfter is how long a client should wait before retrying (0: no advice).
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// Problem is the problem+json body for clients.
func (e *Error) Problem() problem.Details {
	return problem.Details{Type: e.slug, Title: e.title, Status: e.status, Detail: e.detail, InvalidParams: e.params}
}

func notFoundError() *Error {
	return &Error{kind: ErrNotFound, status: http.StatusNotFound, slug: "location-not-found",
		title: "Location not found", detail: "the weather provider knows no such location"}
}

// invalidParamsError is our own 400 for input that failed ParseQuery.
func invalidParamsError(params []problem.InvalidParam) *Error {
	return &Error{kind: ErrBadLocation, status: http.StatusBadRequest, slug: "invalid-params",
		title: "Invalid request parameters", params: params}
}

func badLocationError(params []problem.InvalidParam) *Error {
	return &Error{kind: ErrBadLocation, status: http.StatusBadRequest, slug: "invalid-params",
		title: "Invalid request parameters", detail: "the weather provider could not use this location", params: params}
}

func keyNotReadyError(cause error, retry time.Duration) *Error {
	return &Error{kind: ErrKeyNotReady, cause: cause, status: http.StatusServiceUnavailable, slug: "weather-unavailable",
		title: "Weather temporarily unavailable", detail: "the weather service is starting; retry shortly", retryAfter: retry}
}

func credentialsError() *Error {
	// No detail on purpose: the client cannot act on it and operators see the log line.
	return &Error{kind: ErrCredentialsRejected, status: http.StatusBadGateway, slug: "upstream-credentials",
		title: "weather provider rejected our credentials"}
}

func rateLimitedError(retry time.Duration) *Error {
	return &Error{kind: ErrRateLimited, status: http.StatusServiceUnavailable, slug: "upstream-rate-limited",
		title: "Weather provider rate limit reached", detail: "too many weather requests; retry later", retryAfter: retry}
}

func upstreamError(cause error) *Error {
	return &Error{kind: ErrUpstream, cause: cause, status: http.StatusBadGateway, slug: "upstream-failed",
		title: "Weather provider failed", detail: "the weather provider did not give a usable answer"}
}

func timeoutError(cause error) *Error {
	return &Error{kind: ErrUpstreamTimeout, cause: cause, status: http.StatusGatewayTimeout, slug: "upstream-timeout",
		title: "Weather provider timed out", detail: "the weather provider did not answer in time"}
}

func canceledError(cause error) *Error {
	return &Error{kind: ErrCanceled, cause: cause, status: http.StatusServiceUnavailable, slug: "request-canceled",
		title: "Request canceled"}
}

// staleAllowed reports whether a stale observation may stand in for err:
// only for failures of the provider or of our access to it, never for an
// answer about the location itself (404, 400) or a canceled request.
func staleAllowed(err *Error) bool {
	switch err.kind {
	case ErrKeyNotReady, ErrCredentialsRejected, ErrRateLimited, ErrUpstream, ErrUpstreamTimeout:
		return true
	}
	return false
}
