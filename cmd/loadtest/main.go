// Command loadtest measures the handler as it runs: it starts the offline
// stack (internal/devstack: the handler under the stand-in Functions host,
// with the Entra ID, managed identity, Key Vault and OpenWeatherMap
// stand-ins), drives GET /api/WeatherHttp over loopback with valid tokens
// at a chosen concurrency for a bounded time, and prints requests per
// second, latency percentiles, errors, the handler's peak RSS and the
// upstream calls each stand-in received. With -coldstart N it instead
// launches the built handler N times with the stack's settings and reports
// the time to the first answer on GET / and to the first authenticated 200.
//
//	go run ./cmd/loadtest                    # 64 clients for 10 s
//	go run ./cmd/loadtest -c 16 -d 30s       # 16 clients for 30 s
//	go run ./cmd/loadtest -coldstart 20      # cold start, 20 launches
//
// It only ever talks to loopback addresses and stops by itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weatherfunc/handler/internal/devstack"
	"github.com/weatherfunc/handler/internal/devstack/entra"
	"github.com/weatherfunc/handler/internal/loadtest"
	"github.com/weatherfunc/handler/internal/netcheck"
	"github.com/weatherfunc/handler/internal/secrets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	concurrency int
	duration    time.Duration
	maxRequests int
	tokens      int
	city        string
	addr        string
	repo        string
	handler     string
	timerEvery  time.Duration
	direct      bool
	coldStart   int
}

// never is the timer period that keeps CallerTimer from firing during a run.
const never = 10000 * time.Hour

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.concurrency, "c", 64, "concurrent clients (closed loop, one keep-alive connection each)")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "how long to drive load (at most "+loadtest.MaxDuration.String()+")")
	fs.IntVar(&c.maxRequests, "n", 0, "stop after this many requests (0 = "+strconv.Itoa(loadtest.DefaultMaxRequests)+")")
	fs.IntVar(&c.tokens, "tokens", 4, "distinct valid tokens, spread over the clients (like that many daemons)")
	fs.StringVar(&c.city, "city", "London", "the city asked for (one of the stand-in's recordings)")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:0", "where the stand-in Functions host listens (loopback only)")
	fs.StringVar(&c.repo, "repo", ".", "the project folder (host.json, function folders, local.settings.json, cmd/handler)")
	fs.StringVar(&c.handler, "handler", "", "a prebuilt handler binary (default: build ./cmd/handler)")
	fs.DurationVar(&c.timerEvery, "timer", 0, "fire CallerTimer this often during the run (0 = never)")
	fs.BoolVar(&c.direct, "direct", false, "send requests to the handler's own port instead of through the stand-in host")
	fs.IntVar(&c.coldStart, "coldstart", 0, "instead of load: launch the handler this many times and measure cold start")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("loadtest: unexpected arguments %q", fs.Args()))
	}
	if c.concurrency < 1 || c.concurrency > loadtest.MaxConcurrency {
		errs = append(errs, fmt.Errorf("loadtest: -c must be 1 to %d", loadtest.MaxConcurrency))
	}
	if c.duration <= 0 || c.duration > loadtest.MaxDuration {
		errs = append(errs, fmt.Errorf("loadtest: -d must be positive and at most %v", loadtest.MaxDuration))
	}
	if c.maxRequests < 0 {
		errs = append(errs, errors.New("loadtest: -n must not be negative"))
	}
	if c.tokens < 1 || c.tokens > 1000 {
		errs = append(errs, errors.New("loadtest: -tokens must be 1 to 1000"))
	}
	if c.timerEvery < 0 {
		errs = append(errs, errors.New("loadtest: -timer must not be negative"))
	}
	if c.coldStart < 0 || c.coldStart > loadtest.MaxLaunches {
		errs = append(errs, fmt.Errorf("loadtest: -coldstart must be 0 to %d", loadtest.MaxLaunches))
	}
	if h, _, err := net.SplitHostPort(c.addr); err != nil || !netcheck.IsLoopback(h) {
		errs = append(errs, fmt.Errorf("loadtest: -addr %q is not a loopback address", c.addr))
	}
	return c, errors.Join(errs...)
}

func run(ctx context.Context, args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	timer := never
	if c.timerEvery > 0 {
		timer = c.timerEvery
	}
	logs := &tail{max: 40}
	fmt.Fprintln(stdout, "loadtest: starting the offline stack…")
	st, err := devstack.Start(ctx, devstack.Options{
		RepoRoot:   c.repo,
		Addr:       c.addr,
		TimerEvery: timer,
		Stdout:     logs,
		Stderr:     logs,
		Handler:    c.handler,
		BuildEnv:   environ,
		ParentEnv:  getenv,
	})
	if err != nil {
		return err
	}
	defer st.Close()

	pid, err := loadtest.FindChild(os.Getpid(), "handler")
	if err != nil {
		return err
	}
	tokens := make([]string, c.tokens)
	for i := range tokens {
		if tokens[i], err = st.Entra.Mint(entra.MintOptions{ClientID: st.CallerClientID, Roles: []string{"access_as_application"}}); err != nil {
			return err
		}
	}
	target := st.APIURL() + "?city=" + urlQueryEscape(c.city)
	if c.direct {
		l, err := loadtest.ReadLaunch(pid)
		if err != nil {
			return err
		}
		port := envValue(l.Env, loadtest.PortSetting)
		if port == "" {
			return errors.New("loadtest: the handler has no " + loadtest.PortSetting)
		}
		target = "http://127.0.0.1:" + port + "/api/WeatherHttp?city=" + urlQueryEscape(c.city)
	}
	if _, err := loadtest.CheckLoopbackURL(target); err != nil {
		return err
	}

	if c.coldStart > 0 {
		return coldStart(ctx, c, st, pid, tokens[0], stdout)
	}

	// The handler answers 503 until its secrets and keys are loaded.
	if err := waitOK(ctx, target, tokens[0]); err != nil {
		return fmt.Errorf("%w\nlast log lines:\n%s", err, logs)
	}
	fmt.Fprintf(stdout, "loadtest: %d clients, %d tokens, GET %s for %v (handler pid %d, %s)\n",
		c.concurrency, c.tokens, target, c.duration, pid, loadAverage())
	res, err := loadtest.Run(ctx, loadtest.Options{
		URL:         target,
		Tokens:      tokens,
		Concurrency: c.concurrency,
		Duration:    c.duration,
		MaxRequests: c.maxRequests,
	})
	if err != nil {
		return err
	}
	mem, memErr := loadtest.ReadMemory(pid)

	fmt.Fprintf(stdout, "requests      %d in %v: %.0f requests/s\n", res.Requests, res.Elapsed.Round(time.Millisecond), res.RequestsPerSecond())
	fmt.Fprintf(stdout, "latency       p50 %v  p90 %v  p99 %v  max %v\n",
		round(res.Latency.P50), round(res.Latency.P90), round(res.Latency.P99), round(res.Latency.Max))
	fmt.Fprintf(stdout, "errors        %d (non-200 or failed)%s\n", res.Errors, statuses(res.Statuses))
	if memErr != nil {
		fmt.Fprintf(stdout, "handler RSS   unavailable: %v\n", memErr)
	} else {
		fmt.Fprintf(stdout, "handler RSS   peak (VmHWM) %.1f MB, now (VmRSS) %.1f MB\n", mb(mem.PeakRSS), mb(mem.RSS))
	}
	printUpstream(stdout, c, st)
	fmt.Fprintf(stdout, "load after    %s\n", loadAverage())
	if res.Errors > 0 {
		return fmt.Errorf("loadtest: %d requests failed\nlast log lines:\n%s", res.Errors, logs)
	}
	return nil
}

// printUpstream prints what each stand-in received since the stack
// started: warm-up and start-up included.
func printUpstream(w io.Writer, c config, st *devstack.Stack) {
	callerSecret := "caller-client-secret"
	if v := settingValue(filepath.Join(c.repo, "local.settings.json"), "CALLER_CLIENT_SECRET"); v != "" {
		if ref, isRef, err := secrets.ParseReference(v); isRef && err == nil && ref.Name != "" {
			callerSecret = ref.Name
		}
	}
	fmt.Fprintf(w, "upstream      weather %d (%s: %d), token requests %d, keys documents %d, Key Vault reads %s %d / %s %d\n",
		st.Weather.Calls(), c.city, st.Weather.CallsFor(c.city), st.Entra.TokenRequests(), st.Entra.KeysRequests(),
		st.WeatherSecretName, st.Vault.Reads(st.WeatherSecretName), callerSecret, st.Vault.Reads(callerSecret))
}

func coldStart(ctx context.Context, c config, st *devstack.Stack, pid int, token string, stdout io.Writer) error {
	l, err := loadtest.ReadLaunch(pid)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "loadtest: cold start, %d launches of %s (%s)\n", c.coldStart, l.Exe, loadAverage())
	res, err := loadtest.ColdStart(ctx, loadtest.ColdOptions{
		Launch:   l,
		Launches: c.coldStart,
		Path:     "/api/WeatherHttp?city=" + urlQueryEscape(c.city),
		Token:    token,
	})
	if err != nil {
		return err
	}
	p := func(name string, s loadtest.Spread) {
		fmt.Fprintf(stdout, "%-26s median %v  min %v  p90 %v  max %v\n", name, round(s.Median), round(s.Min), round(s.P90), round(s.Max))
	}
	p("launch → GET / answered", res.FirstAnswer)
	p("launch → authenticated 200", res.Authenticated)
	printUpstream(stdout, c, st)
	fmt.Fprintf(stdout, "load after    %s\n", loadAverage())
	return nil
}

// waitOK polls target with token until it answers 200 (at most 30 s).
func waitOK(ctx context.Context, target, token string) error {
	client := loadtest.LoopbackClient(1, 5*time.Second)
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	last := "no reply"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadtest: the handler never answered 200 (last: %s)", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tail keeps the last max lines written to it: the stack's logs are not
// printed (one line per request would swamp the numbers) but are shown
// when something fails.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  string
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(p)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	t.lines = append(t.lines, parts[:len(parts)-1]...)
	if len(t.lines) > t.max {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

func statuses(m map[int]int) string {
	if len(m) <= 1 {
		return ""
	}
	var b strings.Builder
	b.WriteString(":")
	for s, n := range m {
		name := strconv.Itoa(s)
		if s == 0 {
			name = "transport error"
		}
		fmt.Fprintf(&b, " %s×%d", name, n)
	}
	return b.String()
}

// loadAverage is /proc/loadavg's first three fields: the machine is shared,
// so every number is printed next to it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load average unknown"
	}
	return "load average " + strings.Join(f[:3], " ")
}

func settingValue(path, name string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var f struct {
		Values map[string]string `json:"Values"`
	}
	if json.Unmarshal(b, &f) != nil {
		return ""
	}
	return f.Values[name]
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
