package secrets

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Bounds and default of the refresh interval of versionless references
// (KEYVAULT_REFRESH_INTERVAL).
const (
	DefaultRefreshInterval = time.Hour
	MinRefreshInterval     = time.Minute
	MaxRefreshInterval     = 24 * time.Hour
)

// Watcher keeps one setting's secret current in its Cell: it resolves the
// reference (as Keep does: retrying with backoff until it succeeds), then,
// for a versionless reference, reads it again every refresh interval and at
// once when Refresh is called, so a secret rotated in Key Vault reaches the
// process without a restart. A versioned reference names a value that never
// changes and is read once. Create one with Resolver.Watch; it is safe for
// concurrent use.
type Watcher struct {
	r       *Resolver
	setting string
	ref     Reference
	cell    *Cell
	every   time.Duration
	poke    chan struct{}
}

// Watch returns a Watcher for setting's reference ref, filling cell. every is
// the refresh interval of a versionless reference (0 means
// DefaultRefreshInterval; it is clamped to [MinRefreshInterval,
// MaxRefreshInterval]). Nothing happens until Run.
func (r *Resolver) Watch(setting string, ref Reference, cell *Cell, every time.Duration) *Watcher {
	if every == 0 {
		every = DefaultRefreshInterval
	}
	every = min(max(every, MinRefreshInterval), MaxRefreshInterval)
	return &Watcher{r: r, setting: setting, ref: ref, cell: cell, every: every, poke: make(chan struct{}, 1)}
}

// Versionless reports whether the reference names the latest version, which
// Run re-reads on its schedule.
func (w *Watcher) Versionless() bool { return w.ref.Version == "" }

// Interval is the refresh interval.
func (w *Watcher) Interval() time.Duration { return w.every }

// Refresh asks Run to read a versionless reference again now (for example
// when the upstream refused the key: it may have been rotated). It never
// blocks; requests made while a read is pending are merged into it. The
// caller rate-limits (weather calls it at most once a minute). For a
// versioned reference it does nothing: its value cannot change.
func (w *Watcher) Refresh() {
	if !w.Versionless() {
		return
	}
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// Run resolves the reference into the cell (see Keep), then re-reads a
// versionless one every interval (minus up to 10 % jitter, so that instances
// do not read together) and on Refresh, until ctx is done. A re-read that
// fails keeps the current value in service (Cell.Fail), logs a warning naming
// the setting and the reference, and is retried with Keep's backoff (at most
// the interval). A new value replaces the old one at once (Cell.Set) and is
// logged with the version read, never the value. It returns ctx's error once
// ctx is done, or at once the error of an unusable reference; for a versioned
// reference it returns nil after the first successful read.
func (w *Watcher) Run(ctx context.Context) error {
	if err := w.r.Keep(ctx, w.setting, w.ref, w.cell); err != nil {
		return err
	}
	if !w.Versionless() {
		return nil
	}
	log := w.r.log.With("setting", w.setting, "reference", w.ref.String())
	wait := w.nextRefresh()
	delay := w.r.minBackoff
	for {
		reason := "schedule"
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.r.after(wait):
		case <-w.poke:
			reason = "refresh requested"
		}
		s, version, err := w.r.fetch(ctx, w.ref)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.cell.Fail(fmt.Errorf("%s: %w", w.setting, err))
			wait = min(jitter(delay), w.every)
			delay = min(2*delay, w.r.maxBackoff)
			log.Warn("key vault reference not re-read; the current value stays in use",
				"reason", reason, "retry_in", wait.String(), "error", err.Error())
			var re *ResolveError
			if errors.As(err, &re) && re.invalid {
				return fmt.Errorf("%s: %w", w.setting, err)
			}
			continue
		}
		delay, wait = w.r.minBackoff, w.nextRefresh()
		old, _ := w.cell.Get()
		w.cell.Set(s) // also clears a recorded failure
		if subtle.ConstantTimeCompare([]byte(old.Reveal()), []byte(s.Reveal())) == 1 {
			level := slog.LevelDebug // the schedule: nothing to report
			if reason != "schedule" {
				// Someone asked (the upstream refused the value): say that
				// the vault still holds it, so the fix is at the upstream.
				level = slog.LevelInfo
			}
			log.Log(ctx, level, "key vault reference re-read; value unchanged", "reason", reason, "version", version)
			continue
		}
		log.Info("key vault secret rotated: the new value is in use", "reason", reason, "version", version)
	}
}

// nextRefresh is the interval minus up to 10 % jitter.
func (w *Watcher) nextRefresh() time.Duration {
	return w.every - rand.N(w.every/10+1)
}
