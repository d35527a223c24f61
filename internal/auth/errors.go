package auth

import (
	"errors"
	"fmt"
)

// Sentinel errors. Code branches on them with errors.Is; clients see only the
// short reason carried next to them (see [Reason]).
var (
	// ErrNoToken means the request carried no bearer token in its
	// Authorization header (RFC 6750 §3.1: no error code in the challenge).
	ErrNoToken = errors.New("no bearer token")
	// ErrInvalidRequest means the Authorization header was malformed:
	// "Bearer" without a token, more than one token, or more than one header.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidToken means the token failed a check: it does not
	// authenticate anyone (401).
	ErrInvalidToken = errors.New("invalid token")
	// ErrInsufficientScope means the token is valid but lacks the app role or
	// delegated scope the API requires (403).
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrKeysUnavailable means the verifier could not decide because the
	// metadata or signing keys are not loaded yet (503, never an accept).
	ErrKeysUnavailable = errors.New("signing keys unavailable")
)

// failure is an error that wraps one of the sentinels and carries a short,
// fixed reason naming the failed check. Reasons never contain token content,
// so they are safe in a WWW-Authenticate error_description, a problem detail
// and a log line.
type failure struct {
	err    error // fmt.Errorf("%w: %s", sentinel, reason)
	reason string
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func fail(sentinel error, reason string) error {
	return &failure{err: fmt.Errorf("%w: %s", sentinel, reason), reason: reason}
}

func invalid(reason string) error     { return fail(ErrInvalidToken, reason) }
func unavailable(reason string) error { return fail(ErrKeysUnavailable, reason) }

// Reason returns the short, client-safe reason carried by an error from this
// package ("token expired", "audience mismatch" …), or "" when err carries
// none.
func Reason(err error) string {
	var f *failure
	if errors.As(err, &f) {
		return f.reason
	}
	return ""
}
