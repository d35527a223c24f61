package logctx

import (
	"context"
	"io"
	"log/slog"
)

// NewHostHandler returns a JSON slog handler shaped for the Azure Functions
// host, which logs a custom handler's stdout lines at Information and its
// stderr lines at Error (Warning when the line contains "warn"): records below
// Warn go to stdout, Warn and above to stderr. Every record is one line.
func NewHostHandler(stdout, stderr io.Writer, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	return &splitHandler{
		low:  slog.NewJSONHandler(stdout, opts),
		high: slog.NewJSONHandler(stderr, opts),
	}
}

type splitHandler struct{ low, high slog.Handler }

func (h *splitHandler) pick(l slog.Level) slog.Handler {
	if l >= slog.LevelWarn {
		return h.high
	}
	return h.low
}

func (h *splitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.pick(l).Enabled(ctx, l)
}

func (h *splitHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.pick(r.Level).Handle(ctx, r)
}

func (h *splitHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &splitHandler{low: h.low.WithAttrs(as), high: h.high.WithAttrs(as)}
}

func (h *splitHandler) WithGroup(name string) slog.Handler {
	return &splitHandler{low: h.low.WithGroup(name), high: h.high.WithGroup(name)}
}
