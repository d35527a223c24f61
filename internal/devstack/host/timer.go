package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/standin"
	"github.com/weatherfunc/handler/internal/funcs"
)

// TimerResult is the outcome of one timer invocation, judged by the host's
// reply rules.
type TimerResult struct {
	Function     string
	InvocationID string
	Status       int             // the handler's HTTP status; 0 when no reply came
	Logs         []string        // the reply's Logs; nil when the invocation failed (the host drops them)
	ReturnValue  json.RawMessage // the reply's ReturnValue; nil when failed
	Failed       bool
	Reason       string // why it failed
	Duration     time.Duration
}

// maxReplyBytes caps an invocation reply the host reads.
const maxReplyBytes = 16 << 20

// dotnetLayout is .NET's round-trip ("o") format for a UTC time, written with
// an explicit offset as DateTimeOffset does.
const dotnetLayout = "2006-01-02T15:04:05.0000000"

func formatDotnet(t time.Time) string { return t.UTC().Format(dotnetLayout) + "+00:00" }

// formatUtcNow writes sys.UtcNow as a UTC DateTime: "…Z".
func formatUtcNow(t time.Time) string { return t.UTC().Format(dotnetLayout) + "Z" }

// The timer invocation wire shape (compare testdata/05-timerinfo-value.log-capture.json).
type timerInvocation struct {
	Data     map[string]timerValue `json:"Data"`
	Metadata struct {
		Sys sysBlock `json:"sys"`
	} `json:"Metadata"`
}

type timerValue struct {
	Schedule struct {
		AdjustForDST bool `json:"AdjustForDST"`
	} `json:"Schedule"`
	ScheduleStatus *scheduleStatusWire `json:"ScheduleStatus"`
	IsPastDue      bool                `json:"IsPastDue"`
}

type scheduleStatusWire struct {
	Last        string `json:"Last"`
	Next        string `json:"Next"`
	LastUpdated string `json:"LastUpdated"`
}

// FireTimer runs the timer function now, once, with the payload the real
// host sends: Data.<binding> = {Schedule, ScheduleStatus (null before the
// first run), IsPastDue: pastDue}, Metadata.sys with MethodName
// double-encoded. It waits while another invocation of the same function
// runs (timers never overlap). An invocation that fails by the reply rules
// is a TimerResult with Failed set, not an error; errors are for an unknown
// function, a cancelled ctx or a closed host.
func (h *Host) FireTimer(ctx context.Context, function string, pastDue bool) (TimerResult, error) {
	fn := h.lookup(function)
	if fn == nil || fn.kind != kindTimer {
		return TimerResult{}, fmt.Errorf("host: no timer function %q", function)
	}
	return h.fireTimer(ctx, fn, pastDue, h.opts.Now())
}

var errClosed = errors.New("host: closed")

func (h *Host) fireTimer(ctx context.Context, fn *function, pastDue bool, fired time.Time) (TimerResult, error) {
	select {
	case fn.sem <- struct{}{}:
	case <-ctx.Done():
		return TimerResult{}, ctx.Err()
	case <-h.ctx.Done():
		return TimerResult{}, errClosed
	}
	released := false
	release := func() {
		if !released {
			released = true
			<-fn.sem
		}
	}
	defer release()
	if h.ctx.Err() != nil {
		return TimerResult{}, errClosed
	}
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.ctx, cancel)()

	fn.statusMu.Lock()
	st := fn.status
	fn.statusMu.Unlock()

	id := standin.GUID()
	start := h.opts.Now()
	var v timerValue
	v.Schedule.AdjustForDST = true
	v.IsPastDue = pastDue
	if st != nil {
		v.ScheduleStatus = &scheduleStatusWire{Last: formatDotnet(st.last), Next: formatDotnet(st.next), LastUpdated: formatDotnet(st.updated)}
	}
	inv := timerInvocation{Data: map[string]timerValue{fn.trigger.Name: v}}
	method, _ := json.Marshal(fn.Name) // the host encodes metadata scalars a second time (C15)
	inv.Metadata.Sys = sysBlock{MethodName: string(method), UtcNow: formatUtcNow(start), RandGuid: standin.GUID()}
	body, err := json.Marshal(inv)
	if err != nil {
		return TimerResult{}, fmt.Errorf("host: encode timer invocation: %w", err)
	}

	reason := "Timer fired at " + formatDotnet(fired)
	if pastDue {
		reason = "IsPastDue"
	}
	h.log.hostf("Executing 'Functions.%s' (Reason='%s', Id=%s)", fn.Name, reason, id)
	reply := h.invoke(ictx, fn, id, body)
	end := h.opts.Now()
	st = &timerStatus{last: fired, next: h.nextFire(fn, end), updated: end}
	fn.statusMu.Lock()
	fn.status = st
	fn.statusMu.Unlock()
	if fn.monitored() {
		if err := h.saveStatus(fn, *st); err != nil {
			h.log.errorf("%v", err)
		}
	}
	h.logOutcome(fn, id, reply, end.Sub(start))

	tr := TimerResult{
		Function:     fn.Name,
		InvocationID: id,
		Status:       reply.status,
		Failed:       reply.failed,
		Reason:       reply.reason,
		Duration:     end.Sub(start),
	}
	if !reply.failed {
		tr.Logs, tr.ReturnValue = reply.logs, reply.ret
	}
	release() // OnTimer may fire the function again
	if h.opts.OnTimer != nil {
		h.opts.OnTimer(tr)
	}
	return tr, nil
}

// nextFire is the occurrence after t: per the schedule, or t+TimerEvery.
// Zero when the schedule has none.
func (h *Host) nextFire(fn *function, t time.Time) time.Time {
	if h.opts.TimerEvery > 0 {
		return t.Add(h.opts.TimerEvery).UTC()
	}
	next, _ := fn.schedule.Next(t)
	return next
}

// runTimer fires fn on its schedule until Close. Each run starts only after
// the previous one finished; occurrences missed meanwhile are skipped, as
// the host does. At start it first runs fn once when function.json sets
// runOnStartup, or when the schedule status kept from an earlier run says
// an occurrence was missed while no host ran (then with IsPastDue true; one
// run covers both, as in the host's TimerListener).
func (h *Host) runTimer(fn *function) {
	defer h.wg.Done()
	now := h.opts.Now()
	fn.statusMu.Lock()
	st := fn.status
	fn.statusMu.Unlock()
	pastDue := fn.monitored() && st != nil && !st.next.IsZero() && st.next.Before(now)
	if pastDue || fn.trigger.RunOnStartup {
		if pastDue {
			h.log.hostf("Functions.%s: the occurrence due at %s was missed; running it now (IsPastDue)", fn.Name, formatDotnet(st.next))
		}
		if _, err := h.fireTimer(h.ctx, fn, pastDue, now); err != nil {
			return // only when closing
		}
	}
	for {
		now := h.opts.Now()
		next := h.nextFire(fn, now)
		if next.IsZero() {
			h.log.errorf("Functions.%s: schedule %s has no next occurrence; timer stopped", fn.Name, fn.schedule)
			return
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-h.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if _, err := h.fireTimer(h.ctx, fn, false, next); err != nil {
			return // only when closing
		}
	}
}

// invocationReply is an invocation reply judged by the host's rules.
type invocationReply struct {
	status  int
	outputs map[string]json.RawMessage
	logs    []string
	ret     json.RawMessage
	failed  bool
	reason  string
}

// invoke POSTs an invocation to the handler and applies the reply rules:
// only a 2xx with a JSON Content-Type and a parseable {Outputs, Logs,
// ReturnValue} object succeeds; any other status fails (and its Logs are
// dropped), so does another content type. The whole exchange is bounded by
// host.json functionTimeout.
func (h *Host) invoke(ctx context.Context, fn *function, id string, body []byte) invocationReply {
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	addr := h.handlerAddr()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/"+fn.Name, bytes.NewReader(body))
	if err != nil {
		return invocationReply{failed: true, reason: err.Error()}
	}
	req.Header.Set(funcs.HeaderInvocationID, id)
	req.Header.Set(funcs.HeaderHostVersion, HostVersion)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+HostVersion)
	req.Header.Set("Content-Type", "application/json; charset=utf-8") // as in the host's trace
	res, err := h.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			h.recycle(fn)
			return invocationReply{failed: true, reason: h.timeoutReason(fn)}
		}
		return invocationReply{failed: true, reason: "no reply from the handler: " + err.Error()}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxReplyBytes+1))
	r := invocationReply{status: res.StatusCode}
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		h.recycle(fn)
		r.failed, r.reason = true, h.timeoutReason(fn)
		return r
	case err != nil:
		r.failed, r.reason = true, "reading the reply: "+err.Error()
		return r
	case len(b) > maxReplyBytes:
		r.failed, r.reason = true, "reply larger than 16 MiB"
		return r
	case res.StatusCode < 200 || res.StatusCode > 299:
		r.failed, r.reason = true, fmt.Sprintf("the handler replied %d %s; its Logs are dropped", res.StatusCode, http.StatusText(res.StatusCode))
		return r
	}
	if mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		r.failed, r.reason = true, fmt.Sprintf("the reply's Content-Type %q is not application/json", res.Header.Get("Content-Type"))
		return r
	}
	var wire struct {
		Outputs     map[string]json.RawMessage `json:"Outputs"`
		Logs        []string                   `json:"Logs"`
		ReturnValue json.RawMessage            `json:"ReturnValue"`
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		r.failed, r.reason = true, "the reply is not a JSON object"
		return r
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		r.failed, r.reason = true, "the reply is not {Outputs, Logs, ReturnValue}: "+err.Error()
		return r
	}
	r.outputs, r.logs = wire.Outputs, wire.Logs
	if t := bytes.TrimSpace(wire.ReturnValue); len(t) > 0 && string(t) != "null" {
		r.ret = wire.ReturnValue
	}
	return r
}

// recycle enforces functionTimeout as the host does: a function that
// outlives it takes the handler down ("A function timeout has occurred. Host
// is shutting down."), and the handler is started afresh. The kill does not
// count toward the three failures that stop the host.
func (h *Host) recycle(fn *function) {
	h.mu.Lock()
	p, closing := h.proc, h.closing
	h.mu.Unlock()
	if p == nil || closing {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	h.log.errorf("Functions.%s: %s", fn.Name, h.timeoutReason(fn))
	h.log.errorf("A function timeout has occurred. Host is shutting down.")
	p.timedOut.Store(true)
	_ = p.cmd.Process.Kill()
}

func (h *Host) timeoutReason(fn *function) string {
	ts := h.cfg.FunctionTimeout
	if ts == "" {
		ts = "00:05:00"
	}
	return fmt.Sprintf("Timeout value of %s was exceeded by function: Functions.%s", ts, fn.Name)
}

// logOutcome writes the invocation's Logs and the host's "Executed" line.
func (h *Host) logOutcome(fn *function, id string, r invocationReply, d time.Duration) {
	if r.failed {
		h.log.errorf("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", fn.Name, id, d.Milliseconds())
		h.log.errorf("Functions.%s: %s", fn.Name, r.reason)
		return
	}
	for _, line := range r.logs {
		h.log.hostf("%s", line)
	}
	h.log.hostf("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", fn.Name, id, d.Milliseconds())
}
