// Package logctx carries a request- or invocation-scoped *slog.Logger in a
// context.Context, so that every line about an invocation carries its
// invocation_id and function without each package knowing the host protocol.
package logctx
