package caller

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/tracing"
)

// TimerHandler serves the CallerTimer invocation (POST /CallerTimer): it reads
// the host's timer payload from Data[binding] (leniently: a payload it cannot
// read is logged, and the tick runs anyway), runs one Tick bounded by
// deadline (none when deadline <= 0), and replies as the design's timer
// contract says:
//
//   - every city answered: 200, one Logs line per city, ReturnValue = Summary;
//   - some failed: still 200, each failure in Logs and logged at Warn (on the
//     handler's stderr, which the host logs as a Warning);
//   - all failed, or no token: the failures logged (Warn per city, Error for
//     the token) and then one Error line with the counts, all before the reply
//     (the host drops Logs of a failed invocation), then 500 with the same
//     body.
//
// One tick is one trace: the host's traceparent when it sent one (funcs.WithInvocation
// puts it in the context), else a new trace started here, so that the token
// request and every API call carry the same trace ID (through a
// tracing.Transport in the HTTP clients). Wrap it in funcs.WithInvocation so
// that log lines carry invocation_id.
func TimerHandler(d *Daemon, binding string, deadline time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		log := logctx.From(ctx, d.log)
		if _, ok := tracing.FromContext(ctx); !ok {
			sc := tracing.New()
			ctx = tracing.WithSpan(ctx, sc)
			log = log.With(slog.String("trace_id", sc.TraceIDString()))
			ctx = logctx.With(ctx, log)
		}
		inv, err := funcs.DecodeInvocation(r.Body)
		if err != nil {
			log.Warn("caller: timer invocation not readable; ticking anyway", "error", err.Error())
		} else if info, err := inv.Timer(binding); err != nil {
			log.Warn("caller: timer payload not readable; ticking anyway", "binding", binding, "error", err.Error())
		} else if info.IsPastDue {
			log.Info("caller: timer is past due; this run makes up for a missed schedule")
		}

		if deadline > 0 {
			// NOTE: a started tick runs to its own deadline (shorter than
			// functionTimeout) even when the request's context ends early:
			// a server shutting down on SIGTERM cancels its requests'
			// contexts, and an in-flight tick must be let finish (DESIGN §4,
			// issue 6 item 5). Values (logger, trace) are kept.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), deadline)
			defer cancel()
		}
		rep := d.Tick(ctx)
		resp := funcs.InvocationResponse{Logs: rep.Lines(), ReturnValue: rep.Summary()}
		if rep.TokenErr != nil || rep.Succeeded() == 0 {
			reason := "no city answered"
			if rep.TokenErr != nil {
				reason = "no access token"
			}
			log.Error("caller: tick failed: "+reason+"; replying 500 so that the host records a failed execution",
				"cities", len(rep.Results), "succeeded", rep.Succeeded(), "failed", rep.Failed(),
				"duration_ms", rep.Duration.Milliseconds())
			funcs.WriteResponse(w, http.StatusInternalServerError, resp)
			return
		}
		funcs.WriteResponse(w, http.StatusOK, resp)
	})
}
