package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
)

// DefaultStateDir is where, under AppRoot, the host keeps the timers'
// schedule status when Options.StateDir is empty. LoadApp skips folders
// starting with a dot, so it is never mistaken for a function.
const DefaultStateDir = ".devstack-host"

// statusWire is a timer's schedule status as the real host stores it (the
// blob timerstatus/<host>/<Function>/status): .NET round-trip dates.
type statusWire struct {
	Last        string `json:"Last"`
	Next        string `json:"Next"`
	LastUpdated string `json:"LastUpdated"`
}

// monitored reports whether the timer keeps a schedule status (useMonitor,
// on unless function.json says false).
func (fn *function) monitored() bool {
	return fn.trigger.UseMonitor == nil || *fn.trigger.UseMonitor
}

func (h *Host) statusPath(fn *function) string {
	return filepath.Join(h.stateDir, "timerstatus", fn.Name, "status.json")
}

// loadStatus reads fn's schedule status from the state directory: nil when
// there is none (a first run).
func (h *Host) loadStatus(fn *function) (*timerStatus, error) {
	b, err := os.ReadFile(h.statusPath(fn))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("host: timer status of %s: %w", fn.Name, err)
	}
	var w statusWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("host: timer status of %s: %w", fn.Name, err)
	}
	var st timerStatus
	for _, f := range []struct {
		dst *time.Time
		v   string
	}{{&st.last, w.Last}, {&st.next, w.Next}, {&st.updated, w.LastUpdated}} {
		t, err := funcs.ParseTime(f.v)
		if err != nil {
			return nil, fmt.Errorf("host: timer status of %s: %w", fn.Name, err)
		}
		*f.dst = t
	}
	return &st, nil
}

// saveStatus writes fn's schedule status (write to a temporary file, then
// rename: a crash never leaves half a file).
func (h *Host) saveStatus(fn *function, st timerStatus) error {
	p := h.statusPath(fn)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("host: timer status of %s: %w", fn.Name, err)
	}
	b, err := json.Marshal(statusWire{Last: formatDotnet(st.last), Next: formatDotnet(st.next), LastUpdated: formatDotnet(st.updated)})
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("host: timer status of %s: %w", fn.Name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("host: timer status of %s: %w", fn.Name, err)
	}
	return nil
}
