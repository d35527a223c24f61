// Package host is the offline stack's stand-in for the Azure Functions host:
// it launches the real handler binary as Core Tools would (the host's
// environment variables, a free port, readiness polling of GET /), restarts
// it on a non-zero exit (three failures within 30 minutes end it), relays its
// stdout and stderr with the host's log levels, forwards /api/<Fn> to it (or
// sends the JSON invocation when forwarding is off), fires timer functions on
// their NCRONTAB schedules with the real payload shape, and judges every
// reply by the host's rules (2xx, application/json, {Outputs, Logs,
// ReturnValue}; Logs of a failed invocation dropped).
//
// It is test and demo machinery: it never runs in Azure, keeps the timer
// schedule status in memory (no blob lease), knows no keys (every HTTP
// function is treated as anonymous) and fires only timer triggers. The
// handler side of the protocol is internal/funcs.
package host
