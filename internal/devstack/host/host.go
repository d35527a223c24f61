package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
)

// HostVersion is what the stand-in reports in X-Azure-Functions-HostVersion
// and its User-Agent (Azure-Functions-Host/<HostVersion>): a 4.x host.
const HostVersion = "4.0.0-devstack"

// DefaultAddr is where the host listens when Options.Addr is empty, as Core
// Tools does.
const DefaultAddr = "127.0.0.1:7071"

// DefaultReadyTimeout is how long Start waits for the handler's GET / to answer.
const DefaultReadyTimeout = 30 * time.Second

// readyPollEvery is the host's readiness polling interval.
const readyPollEvery = 25 * time.Millisecond

// stopGrace is how long Close waits after SIGTERM before killing the handler.
const stopGrace = 5 * time.Second

// Restart policy: the host gives up after this many failures within the window.
const (
	maxFailures   = 3
	failureWindow = 30 * time.Minute
)

// Options configures Start. The zero value of each field is a useful default.
type Options struct {
	// AppRoot is the folder with host.json, the function folders and the
	// handler binary (host.json customHandler.description.defaultExecutablePath,
	// relative to AppRoot or its workingDirectory).
	AppRoot string
	// Env holds the app settings as KEY=VALUE, passed to the handler in
	// addition to the host's own variables (which win on a clash). It also
	// resolves %Setting% timer schedules. Nothing else of the parent's
	// environment reaches the handler except what ParentEnv returns.
	Env []string
	// ParentEnv, when set, is asked for PATH, HOME and TMPDIR, which are
	// passed on unless Env sets them. cmd/devstack passes os.Getenv; nil
	// passes none.
	ParentEnv func(key string) string
	// Addr is where the host listens: DefaultAddr when empty; "127.0.0.1:0"
	// picks a free port (see URL).
	Addr string
	// TimerEvery, when positive, fires each timer function every TimerEvery
	// instead of on its NCRONTAB schedule (a demo switch). Zero follows the
	// schedules, in UTC.
	TimerEvery time.Duration
	// ReadyTimeout bounds the wait for the handler to answer GET /:
	// DefaultReadyTimeout when zero.
	ReadyTimeout time.Duration
	// Stdout receives the host's own log lines and the handler's stdout
	// lines; Stderr the handler's stderr lines and the host's failures.
	// os.Stdout and os.Stderr when nil.
	Stdout, Stderr io.Writer
	// OnTimer, when set, is called after each timer invocation.
	OnTimer func(TimerResult)
	// Now is the clock for timer payloads, schedules and log stamps:
	// time.Now when nil.
	Now func() time.Time
	// StateDir keeps each timer's schedule status (Last, Next, LastUpdated)
	// between runs of the host, as the real host keeps it in a blob of host
	// storage: on start, a timer whose Next passed while no host ran fires
	// once with IsPastDue true. Default <AppRoot>/.devstack-host.
	StateDir string
}

// Host is a running stand-in for the Azure Functions host around one
// handler process.
type Host struct {
	opts     Options
	cfg      funcs.HostConfig
	fns      []*function // sorted by name
	timeout  time.Duration
	exe      string
	workDir  string
	appRoot  string
	stateDir string
	log      *sink

	ln        net.Listener
	srv       *http.Server
	url       string
	transport *http.Transport
	client    *http.Client
	proxy     *httputil.ReverseProxy

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	proc    *process
	closing bool

	done    chan struct{} // closed when the handler is gone for good
	waitErr error

	closeOnce sync.Once
	closeErr  error
}

// kind of function, by trigger.
type kind int

const (
	kindOther kind = iota
	kindHTTP
	kindTimer
)

type function struct {
	funcs.Function
	kind     kind
	trigger  funcs.Binding
	httpOut  string  // name of the http output binding
	route    []token // HTTP: route template under the prefix
	schedule Schedule

	sem chan struct{} // one invocation at a time (timers)

	statusMu sync.Mutex
	status   *timerStatus // nil until the first run
}

type timerStatus struct{ last, next, updated time.Time }

// Start loads the app at opts.AppRoot, starts listening, launches the
// handler as the host does (a free port in FUNCTIONS_CUSTOMHANDLER_PORT and
// FUNCTIONS_HTTPWORKER_PORT, FUNCTIONS_CUSTOMHANDLER_WORKER_ID,
// FUNCTIONS_APP_ROOT_PATH, plus opts.Env), polls GET / every 25 ms until any
// status answers (up to ReadyTimeout; a handler that exits first is an error
// carrying its last stderr lines), then serves and starts the timers.
//
// ctx bounds the start-up only; Close stops the host.
func Start(ctx context.Context, opts Options) (*Host, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	appRoot, err := filepath.Abs(opts.AppRoot)
	if err != nil {
		return nil, fmt.Errorf("host: app root: %w", err)
	}
	cfg, list, err := funcs.LoadApp(appRoot)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	timeout, err := cfg.Timeout()
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	h := &Host{
		opts:    opts,
		cfg:     cfg,
		timeout: timeout,
		appRoot: appRoot,
		log:     &sink{stdout: opts.Stdout, stderr: opts.Stderr, now: opts.Now},
		done:    make(chan struct{}),
	}
	if err := h.resolveExecutable(); err != nil {
		return nil, err
	}
	h.stateDir = opts.StateDir
	if h.stateDir == "" {
		h.stateDir = filepath.Join(appRoot, DefaultStateDir)
	}
	for _, f := range list {
		fn, err := h.newFunction(f)
		if err != nil {
			return nil, err
		}
		if fn.kind == kindTimer && fn.monitored() {
			if st, err := h.loadStatus(fn); err != nil {
				h.log.errorf("%v; starting without it", err)
			} else {
				fn.status = st
			}
		}
		h.fns = append(h.fns, fn)
	}
	h.transport = &http.Transport{
		Proxy:               nil, // the handler is on loopback; never via a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // relay bodies as the handler encoded them
	}
	h.client = &http.Client{
		Transport:     h.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	h.proxy = h.newProxy()

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("host: listen: %w", err)
	}
	h.ln = ln
	h.url = "http://" + ln.Addr().String()
	h.ctx, h.cancel = context.WithCancel(context.Background())

	h.log.hostf("Azure Functions host stand-in %s; app root %s", HostVersion, appRoot)
	p, err := h.launch(ctx)
	if err != nil {
		h.cancel()
		_ = ln.Close()
		return nil, err
	}
	h.proc = p

	h.srv = &http.Server{
		Handler:           http.HandlerFunc(h.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          h.log.errorLogger(),
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.errorf("host: serve: %v", err)
		}
	}()
	h.wg.Add(1)
	go h.supervise(p)

	for _, fn := range h.fns {
		switch fn.kind {
		case kindHTTP:
			prefix := ""
			if cfg.RoutePrefix != "" {
				prefix = "/" + cfg.RoutePrefix
			}
			h.log.hostf("%s: [%s] %s%s%s", fn.Name, methodList(fn.trigger.Methods), h.url, prefix, fn.path())
		case kindTimer:
			h.log.hostf("%s: timerTrigger (%s)", fn.Name, fn.schedule)
			h.wg.Add(1)
			go h.runTimer(fn)
		default:
			h.log.hostf("%s: %s (not fired by the stand-in)", fn.Name, fn.trigger.Type)
		}
	}
	h.log.hostf("Host started; listening on %s", h.url)
	return h, nil
}

// URL returns the host's base URL, e.g. "http://127.0.0.1:7071".
func (h *Host) URL() string { return h.url }

// Wait returns when the handler has exited for good: nil when it exited with
// code 0 or was stopped by Close, an error after it failed three times within
// 30 minutes (or could not be restarted).
func (h *Host) Wait() error {
	<-h.done
	return h.waitErr
}

// Close stops the timers, the listener and the handler (SIGTERM, then a kill
// after 5 s). It is safe to call more than once.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closing = true
		p := h.proc
		h.mu.Unlock()
		h.cancel()

		var errs []error
		sctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		if err := h.srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("host: shutdown: %w", err))
		}
		cancel()
		h.transport.CloseIdleConnections() // lets the handler's own shutdown finish at once
		if p != nil {
			if err := p.stop(stopGrace); err != nil {
				errs = append(errs, err)
			}
		}
		h.wg.Wait()
		h.transport.CloseIdleConnections()
		h.log.hostf("Host stopped")
		h.closeErr = errors.Join(errs...)
	})
	return h.closeErr
}

func (h *Host) resolveExecutable() error {
	exe := h.cfg.CustomHandler.DefaultExecutablePath
	if exe == "" {
		return errors.New("host: host.json: customHandler.description.defaultExecutablePath is required")
	}
	h.workDir = h.appRoot
	if wd := h.cfg.CustomHandler.WorkingDirectory; wd != "" {
		if filepath.IsAbs(wd) {
			h.workDir = wd
		} else {
			h.workDir = filepath.Join(h.appRoot, wd)
		}
	}
	if !filepath.IsAbs(exe) {
		exe = filepath.Join(h.workDir, exe)
	}
	st, err := os.Stat(exe)
	if err != nil {
		return fmt.Errorf("host: handler executable: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("host: handler executable %s is not an executable file", exe)
	}
	h.exe = exe
	return nil
}

func (h *Host) newFunction(f funcs.Function) (*function, error) {
	fn := &function{Function: f, sem: make(chan struct{}, 1)}
	fn.trigger, _ = f.Trigger()
	switch strings.ToLower(fn.trigger.Type) {
	case "httptrigger":
		fn.kind = kindHTTP
		for _, b := range f.Bindings {
			if strings.EqualFold(b.Type, "http") && strings.EqualFold(b.Direction, "out") {
				fn.httpOut = b.Name
			}
		}
		tmpl := fn.trigger.Route
		if tmpl == "" {
			tmpl = f.Name
		}
		route, err := parseRoute(tmpl)
		if err != nil {
			return nil, fmt.Errorf("host: %s: %w", f.Name, err)
		}
		fn.route = route
	case "timertrigger":
		fn.kind = kindTimer
		expr := h.resolveSetting(fn.trigger.Schedule)
		if strings.HasPrefix(expr, "%") && strings.HasSuffix(expr, "%") {
			return nil, fmt.Errorf("host: %s: schedule %s names an app setting that Env does not set", f.Name, expr)
		}
		s, err := ParseSchedule(expr)
		if err != nil {
			return nil, fmt.Errorf("host: %s: %w", f.Name, err)
		}
		if _, ok := s.Next(h.opts.Now()); !ok && h.opts.TimerEvery <= 0 {
			return nil, fmt.Errorf("host: %s: schedule %q never fires", f.Name, expr)
		}
		fn.schedule = s
	}
	return fn, nil
}

// resolveSetting replaces a whole-value %Name% with the app setting Name, as
// the host does for binding expressions.
func (h *Host) resolveSetting(v string) string {
	if len(v) > 2 && strings.HasPrefix(v, "%") && strings.HasSuffix(v, "%") {
		name := v[1 : len(v)-1]
		for _, kv := range h.opts.Env {
			if k, val, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, name) {
				return val
			}
		}
	}
	return v
}

func (h *Host) lookup(name string) *function {
	for _, fn := range h.fns {
		if strings.EqualFold(fn.Name, name) {
			return fn
		}
	}
	return nil
}

// handlerAddr is the current handler's host:port ("" while none runs).
func (h *Host) handlerAddr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return ""
	}
	return h.proc.addr
}

func methodList(m []string) string {
	if len(m) == 0 {
		return "ALL"
	}
	up := make([]string, len(m))
	for i, s := range m {
		up[i] = strings.ToUpper(s)
	}
	sort.Strings(up)
	return strings.Join(up, ",")
}

// sink serializes the host's and the handler's lines onto Stdout/Stderr.
type sink struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
	now            func() time.Time
}

func (s *sink) write(w io.Writer, line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = fmt.Fprintf(w, "[%s] %s\n", s.now().UTC().Format("2006-01-02T15:04:05.000Z"), line)
}

func (s *sink) hostf(format string, args ...any) { s.write(s.stdout, fmt.Sprintf(format, args...)) }

func (s *sink) errorf(format string, args ...any) { s.write(s.stderr, fmt.Sprintf(format, args...)) }

// errorLogger adapts net/http's error logging to the sink.
func (s *sink) errorLogger() *log.Logger {
	return log.New(writerFunc(func(p []byte) (int, error) {
		s.errorf("%s", strings.TrimRight(string(p), "\n"))
		return len(p), nil
	}), "", 0)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// handlerStdout logs a handler stdout line at Information, as the host does.
func (s *sink) handlerStdout(line string) { s.write(s.stdout, "[Information] "+line) }

// handlerStderr logs a handler stderr line at Error, or Warning when it
// mentions "warn" (the host's own rule, case-insensitive).
func (s *sink) handlerStderr(line string) {
	level := "[Error] "
	if strings.Contains(strings.ToLower(line), "warn") {
		level = "[Warning] "
	}
	s.write(s.stderr, level+line)
}
