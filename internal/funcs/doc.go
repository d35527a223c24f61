// Package funcs speaks the Azure Functions custom-handler protocol, handler
// side: it decodes the invocation requests the host POSTs to /<FunctionName>
// (tolerating the host's double-encoded scalars and lenient .NET dates),
// writes the {Outputs, Logs, ReturnValue} replies with the Content-Type the
// host insists on, serves HTTP-trigger functions in the host's
// forwarding-off shape, attaches the invocation ID and function name to the
// request's logger, and reads host.json and the function.json folders.
//
// It does not serve routes, authenticate callers or know any function's
// business: cmd/handler wires the functions, internal/auth guards the API.
// The host side of the protocol (launching the handler, firing timers,
// forwarding requests) is internal/devstack/host, which reuses LoadApp.
package funcs
