// Package host is the offline stack's stand-in for the Azure Functions host:
// it launches the real handler binary as Core Tools would (the host's
// environment variables, a free port, readiness polling of GET /), restarts
// it on a non-zero exit (three failures within 30 minutes end it; exit 0 is
// not restarted), enforces functionTimeout by killing and restarting it,
// relays its stdout and stderr with the host's log levels (Information;
// Error, or Warning for a line mentioning "warn"), forwards /api/<Fn> to it
// (or sends the JSON invocation when forwarding is off), fires timer
// functions on their NCRONTAB schedules with the real payload shape (and at
// start for runOnStartup, or with IsPastDue when an occurrence was missed
// while no host ran), runs a timer on POST /admin/functions/<Fn>, and judges
// every reply by the host's rules (2xx, application/json, {Outputs, Logs,
// ReturnValue}; Logs of a failed invocation dropped).
//
// It is test and demo machinery: it never runs in Azure, keeps the timer
// schedule status in files under Options.StateDir (no blob, no lease: one
// host at a time), knows no keys (every HTTP function is treated as
// anonymous) and fires only timer triggers. The handler side of the
// protocol is internal/funcs.
package host
