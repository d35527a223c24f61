package logctx

import (
	"context"
	"log/slog"
)

type key struct{}

// With returns a copy of ctx that carries l.
func With(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, key{}, l)
}

// From returns the logger carried by ctx, or fallback when there is none.
// A nil fallback yields a logger that discards everything.
func From(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(key{}).(*slog.Logger); ok && l != nil {
		return l
	}
	if fallback != nil {
		return fallback
	}
	return slog.New(slog.DiscardHandler)
}
