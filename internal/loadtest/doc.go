// Package loadtest measures the running handler from outside, over
// loopback: a bounded closed-loop load of GET requests with latency
// percentiles (Run), the process's memory from /proc (ReadMemory,
// FindChild), and cold start — the time from launching the binary to its
// first answer and to its first authenticated 200 (ColdStart).
//
// It owns only measurement. It does not start the stand-ins or the host
// (cmd/loadtest does that with internal/devstack), mint tokens, or judge the
// numbers against targets (docs/PERFORMANCE.md does). Every request goes to
// a loopback address: URLs naming any other host are refused, and the
// client's dialer refuses any non-loopback address it resolves to.
package loadtest
