package host

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/standin"
)

// process is one run of the handler binary.
type process struct {
	cmd    *exec.Cmd
	addr   string // 127.0.0.1:<port>
	exited chan struct{}
	err    error // the exit status, valid once exited is closed
	tail   *tail
	// timedOut is set when the host killed the process for a function
	// timeout: it is restarted without counting as a failure.
	timedOut atomic.Bool
}

// launch starts the handler on a free port and waits until it answers GET /.
func (h *Host) launch(ctx context.Context) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &process{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		exited: make(chan struct{}),
		tail:   &tail{max: 10},
	}
	stdout := &lineWriter{emit: h.log.handlerStdout}
	stderr := &lineWriter{emit: func(line string) { p.tail.add(line); h.log.handlerStderr(line) }}
	cmd := exec.Command(h.exe, h.cfg.CustomHandler.Arguments...)
	cmd.Dir = h.workDir
	cmd.Env = h.handlerEnv(port)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second // a grandchild holding the pipes must not hang Wait
	p.cmd = cmd
	h.log.hostf("Starting handler %s on port %d", h.exe, port)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("host: start handler: %w", err)
	}
	go func() {
		p.err = cmd.Wait()
		stdout.flush()
		stderr.flush()
		close(p.exited)
	}()
	if err := h.waitReady(ctx, p); err != nil {
		_ = p.stop(stopGrace)
		return nil, err
	}
	h.log.hostf("Handler ready on port %d", port)
	return p, nil
}

// handlerEnv is the handler's whole environment: PATH, HOME and TMPDIR from
// ParentEnv, then the app settings, then the host's own variables.
func (h *Host) handlerEnv(port int) []string {
	var keys []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	if h.opts.ParentEnv != nil {
		for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
			if v := h.opts.ParentEnv(k); v != "" {
				set(k, v)
			}
		}
	}
	for _, kv := range h.opts.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			set(k, v)
		}
	}
	ps := strconv.Itoa(port)
	set("FUNCTIONS_CUSTOMHANDLER_PORT", ps)
	set("FUNCTIONS_HTTPWORKER_PORT", ps)
	set("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", standin.GUID())
	set("FUNCTIONS_APP_ROOT_PATH", h.appRoot)
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+vals[k])
	}
	return env
}

// waitReady polls GET http://<addr>/ every 25 ms; any HTTP status is ready.
func (h *Host) waitReady(ctx context.Context, p *process) error {
	deadline := time.NewTimer(h.opts.ReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPollEvery)
	defer tick.Stop()
	probe := &http.Client{Transport: h.transport, Timeout: time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/", nil)
		if err != nil {
			return fmt.Errorf("host: readiness probe: %w", err)
		}
		if res, err := probe.Do(req); err == nil {
			res.Body.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("host: handler exited before it was ready (%v)%s", p.err, p.tail.suffix())
		case <-ctx.Done():
			return fmt.Errorf("host: waiting for the handler: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("host: handler did not answer GET / within %v%s", h.opts.ReadyTimeout, p.tail.suffix())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, waits up to grace, then kills. It returns an error only
// when the kill was needed.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		_ = p.cmd.Process.Kill()
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("host: handler did not exit within %v of SIGTERM; killed", grace)
	}
}

// supervise restarts the handler when it exits non-zero, as the host does:
// after three failures within 30 minutes it gives up. Exit code 0 means "do
// not restart".
func (h *Host) supervise(p *process) {
	defer h.wg.Done()
	var failures []time.Time
	fail := func(now time.Time) bool {
		kept := failures[:0]
		for _, f := range failures {
			if now.Sub(f) < failureWindow {
				kept = append(kept, f)
			}
		}
		failures = append(kept, now)
		return len(failures) >= maxFailures
	}
	for {
		<-p.exited
		h.mu.Lock()
		closing := h.closing
		h.mu.Unlock()
		switch {
		case closing:
			h.finish(nil)
			return
		case p.err == nil:
			h.log.hostf("Handler exited with code 0; not restarting")
			h.finish(nil)
			return
		}
		if p.timedOut.Load() {
			h.log.hostf("Restarting the handler after a function timeout")
		} else {
			h.log.errorf("Handler exited (%v)%s", p.err, p.tail.suffix())
			if fail(h.opts.Now()) {
				h.finish(fmt.Errorf("host: handler failed %d times within %v; last: %v%s", maxFailures, failureWindow, p.err, p.tail.suffix()))
				return
			}
		}
		for {
			np, err := h.launch(h.ctx)
			if err == nil {
				if !h.setProc(np) {
					_ = np.stop(stopGrace)
					h.finish(nil)
					return
				}
				p = np
				break
			}
			if h.ctx.Err() != nil {
				h.finish(nil)
				return
			}
			h.log.errorf("Handler restart failed: %v", err)
			if fail(h.opts.Now()) {
				h.finish(fmt.Errorf("host: handler failed %d times within %v; last: %w", maxFailures, failureWindow, err))
				return
			}
		}
	}
}

// setProc installs a restarted process unless the host is closing.
func (h *Host) setProc(p *process) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.proc = p
	return true
}

func (h *Host) finish(err error) {
	if err != nil {
		h.log.errorf("%v", err)
	}
	h.waitErr = err
	close(h.done)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("host: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// maxLineBytes splits overlong handler lines rather than buffering them.
const maxLineBytes = 64 << 10

// lineWriter turns a byte stream into lines for emit.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(strings.TrimSuffix(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= maxLineBytes {
		w.emit(string(w.buf[:maxLineBytes]))
		w.buf = w.buf[maxLineBytes:]
	}
	w.buf = append([]byte(nil), w.buf...) // let the consumed prefix go
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

// tail keeps the last lines of the handler's stderr for error messages.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(line) > 500 {
		line = line[:500] + "…"
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// suffix renders the tail for an error message ("" when empty).
func (t *tail) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return ""
	}
	return "; stderr: " + strings.Join(t.lines, " | ")
}
