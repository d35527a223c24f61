package caller

import (
	"context"
	"net/http"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/logctx"
)

// TimerHandler serves the CallerTimer invocation (POST /CallerTimer): it reads
// the host's timer payload from Data[binding] (leniently: a payload it cannot
// read is logged, and the tick runs anyway), runs one Tick bounded by
// deadline (none when deadline <= 0), and replies as the design's timer
// contract says:
//
//   - every city answered: 200, one Logs line per city, ReturnValue = Summary;
//   - some failed: still 200, each failure in Logs and logged at Warn;
//   - all failed, or no token: each line logged at Error first (the host
//     drops Logs of a failed invocation), then 500.
//
// Wrap it in funcs.WithInvocation so that log lines carry invocation_id.
func TimerHandler(d *Daemon, binding string, deadline time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		log := logctx.From(ctx, d.log)
		inv, err := funcs.DecodeInvocation(r.Body)
		if err != nil {
			log.Warn("caller: timer invocation not readable; ticking anyway", "error", err.Error())
		} else if info, err := inv.Timer(binding); err != nil {
			log.Warn("caller: timer payload not readable; ticking anyway", "binding", binding, "error", err.Error())
		} else if info.IsPastDue {
			log.Info("caller: timer is past due; this run makes up for a missed schedule")
		}

		if deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, deadline)
			defer cancel()
		}
		rep := d.Tick(ctx)
		lines := rep.Lines()
		resp := funcs.InvocationResponse{Logs: lines, ReturnValue: rep.Summary()}
		if rep.TokenErr != nil || rep.Succeeded() == 0 {
			for _, l := range lines {
				log.Error("caller: " + l)
			}
			funcs.WriteResponse(w, http.StatusInternalServerError, resp)
			return
		}
		funcs.WriteResponse(w, http.StatusOK, resp)
	})
}
