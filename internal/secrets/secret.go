package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// redacted is what every printed form of a Secret shows.
const redacted = "[REDACTED]"

// Secret is a secret value. Every way of printing it — fmt verbs, log/slog,
// encoding/json — shows "[REDACTED]"; only Reveal returns the value, so a
// secret cannot reach a log line or a response by accident.
type Secret struct{ v string }

// New wraps a secret value.
func New(v string) Secret { return Secret{v: v} }

// Reveal returns the secret value. Call it only where the value leaves the
// process for the party it is meant for (an upstream request, a library that
// needs it), never to print it.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer with a redacted form.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer with a redacted form (%#v).
func (Secret) GoString() string { return redacted }

// Format makes every fmt verb (%v %s %q %x %d …) print the redacted form.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer with a redacted form.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler with a redacted form.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler with a redacted form.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// ErrNotReady is returned by Cell.Get while the secret has not been resolved yet.
var ErrNotReady = errors.New("secret not resolved yet")

// Cell holds a secret that may arrive after start-up (it is resolved from Key
// Vault in the background so that the handler can answer the host's readiness
// probe at once). It is safe for concurrent use. The zero value is not usable;
// use NewCell or Ready.
type Cell struct {
	mu      sync.RWMutex
	v       Secret
	set     bool
	lastErr error
	ready   chan struct{}
}

// NewCell returns an empty cell; Get reports ErrNotReady until Set is called.
func NewCell() *Cell { return &Cell{ready: make(chan struct{})} }

// Ready returns a cell that already holds s.
func Ready(s Secret) *Cell {
	c := NewCell()
	c.Set(s)
	return c
}

// Set stores s (a first value or a rotated one) and wakes waiters.
func (c *Cell) Set(s Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.v, c.lastErr = s, nil
	if !c.set {
		c.set = true
		close(c.ready)
	}
}

// Fail records why the latest resolution attempt failed. A cell that already
// holds a value keeps serving it; an empty cell reports err from Get, wrapped
// together with ErrNotReady. err must not contain the secret (it cannot: the
// cell has none yet, or has one the error did not come from).
func (c *Cell) Fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
}

// Get returns the current value, or an error wrapping ErrNotReady (and the last
// resolution failure, if any) while there is none.
func (c *Cell) Get() (Secret, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.set {
		return c.v, nil
	}
	if c.lastErr != nil {
		return Secret{}, fmt.Errorf("%w: %w", ErrNotReady, c.lastErr)
	}
	return Secret{}, ErrNotReady
}

// Wait blocks until the cell holds a value or ctx is done.
func (c *Cell) Wait(ctx context.Context) (Secret, error) {
	select {
	case <-c.ready:
		return c.Get()
	case <-ctx.Done():
		_, err := c.Get()
		return Secret{}, errors.Join(ctx.Err(), err)
	}
}
