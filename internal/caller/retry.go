package caller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weatherfunc/handler/internal/secrets"
)

// RetryPolicy says how the daemon retries the token request and each API
// call after a transient failure: a network error (refused, reset, timeout,
// cut-off reply), HTTP 408, 429 or any 5xx. Nothing else is retried: not a
// configuration error the authority names (ErrConfig), not the API's 401 or
// 403, not a 4xx.
//
// The wait before retry n is drawn uniformly from [0, min(MaxDelay,
// BaseDelay·2^(n-1))) ("full jitter", so that daemons that failed together
// do not retry together), or is exactly the reply's Retry-After (seconds or
// an HTTP date) when it has one. No retry starts whose wait would end past
// the tick's deadline (the context's): the failure is reported instead.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts of one call, the first included.
	// Default 4; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the ceiling of the first backoff. Default 500 ms.
	BaseDelay time.Duration
	// MaxDelay caps every backoff ceiling (not a Retry-After). Default 8 s.
	MaxDelay time.Duration
}

// Default retry policy values.
const (
	DefaultMaxAttempts = 4
	DefaultBaseDelay   = 500 * time.Millisecond
	DefaultMaxDelay    = 8 * time.Second
)

// maxRetryAfter is the longest Retry-After honoured; a longer one (or one
// past the deadline) ends the retries.
const maxRetryAfter = 5 * time.Minute

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	return p
}

// backoff is the full-jitter wait before retry n (n ≥ 1), given a draw r in [0, 1).
func (p RetryPolicy) backoff(n int, r float64) time.Duration {
	ceiling := p.MaxDelay
	if n <= 30 {
		if c := p.BaseDelay << (n - 1); c > 0 && c < ceiling {
			ceiling = c
		}
	}
	if r < 0 || r >= 1 {
		r = 0
	}
	return time.Duration(r * float64(ceiling))
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcome is what one attempt tells the retry loop.
type outcome struct {
	err        error
	retryable  bool
	retryAfter string // the reply's Retry-After header, if any
}

// GiveUpError is a retryable failure that was not retried (again), and why.
type GiveUpError struct {
	// Err is the last attempt's failure.
	Err error
	// Reason says why retrying stopped: the attempts ran out, or the next
	// wait would pass the deadline.
	Reason string
}

func (e *GiveUpError) Error() string { return e.Err.Error() + " (" + e.Reason + ")" }

// Unwrap returns the last attempt's failure.
func (e *GiveUpError) Unwrap() error { return e.Err }

// retry runs attempt until it succeeds, fails for good, the attempts run
// out or the next wait would pass ctx's deadline. It returns the number of
// attempts made and the last error.
func (d *Daemon) retry(ctx context.Context, log *slog.Logger, what string, attempt func() outcome) (int, error) {
	for n := 1; ; n++ {
		o := attempt()
		if o.err == nil || !o.retryable {
			return n, o.err
		}
		if ctx.Err() != nil {
			return n, o.err
		}
		if n >= d.policy.MaxAttempts {
			return n, &GiveUpError{Err: o.err, Reason: fmt.Sprintf("gave up after %d attempts", n)}
		}
		wait := d.policy.backoff(n, d.rand())
		if ra, ok := parseRetryAfter(o.retryAfter, d.now()); ok {
			if ra > maxRetryAfter {
				return n, &GiveUpError{Err: o.err, Reason: "Retry-After " + ra.String() + " is too long; not retried"}
			}
			wait = ra
		}
		if dl, ok := ctx.Deadline(); ok && d.now().Add(wait).After(dl) {
			return n, &GiveUpError{Err: o.err, Reason: fmt.Sprintf("not retried: waiting %v would pass the tick's deadline", wait.Round(time.Millisecond))}
		}
		log.Info("caller: retrying after a transient failure", "call", what, "attempt", n+1,
			"wait_ms", wait.Milliseconds(), "error", o.err.Error())
		if err := d.sleep(ctx, wait); err != nil {
			return n, &GiveUpError{Err: o.err, Reason: "deadline reached while waiting to retry"}
		}
	}
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (a date in the past is no wait).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter + time.Second, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

// transient reports whether err is a network failure a retry may cure:
// refused or reset connections, timeouts, replies cut off. A TLS
// verification failure is not (a retry meets the same certificate).
func transient(err error) bool {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	switch {
	case err == nil:
		return false
	case errors.As(err, &cve), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci), errors.As(err, &rh):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var ne net.Error
	var ue *url.Error
	var oe *net.OpError
	return errors.As(err, &oe) || errors.As(err, &ne) || errors.As(err, &ue)
}

// retryableStatus is an HTTP status a retry may cure.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// tokenOutcome classifies a token source's error for the retry loop.
func tokenOutcome(err error) outcome {
	o := outcome{err: err}
	var te *TokenError
	var tr *transportError
	var ce *CredentialError
	switch {
	case err == nil:
	case errors.Is(err, ErrConfig):
		// Never retried: the setting is wrong.
	case errors.As(err, &ce):
		// The daemon's own credential (managed identity, certificate).
		o.retryable = ce.Retryable()
	case errors.As(err, &te):
		o.retryable, o.retryAfter = !te.Permanent(), te.retryAfter
	case errors.Is(err, secrets.ErrNotReady):
		// Key Vault has not delivered the secret yet; it may by the next attempt.
		o.retryable = true
	case errors.As(err, &tr):
		o.retryable = transient(tr.err)
	default:
		o.retryable = transient(err)
	}
	return o
}
