package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PortSetting is the setting through which the Functions host tells the
// handler where to listen.
const PortSetting = "FUNCTIONS_CUSTOMHANDLER_PORT"

// MaxLaunches bounds ColdStart's launches.
const MaxLaunches = 200

// ColdOptions configure ColdStart.
type ColdOptions struct {
	// Launch is the process to start (from ReadLaunch of a running
	// handler); its PortSetting is replaced by a free loopback port.
	Launch Launch
	// Launches is how many times to start it, one after the other (1 to
	// MaxLaunches).
	Launches int
	// Path and Token make the authenticated request: GET Path with
	// "Authorization: Bearer <Token>", repeated until it answers 200.
	Path  string
	Token string
	// Timeout bounds each launch, from start to the authenticated 200.
	// Default 30 s.
	Timeout time.Duration
	// Output receives the processes' stdout and stderr. Nil discards.
	Output io.Writer
}

// ColdSample is one launch.
type ColdSample struct {
	FirstAnswer   time.Duration // launch → first reply to GET / (any status)
	Authenticated time.Duration // launch → first 200 to the authenticated request
}

// ColdResult is every launch and their summaries.
type ColdResult struct {
	Samples       []ColdSample
	FirstAnswer   Spread
	Authenticated Spread
}

// Spread summarises repeated measurements.
type Spread struct {
	Min, Median, P90, Max time.Duration
}

func spreadOf(d []time.Duration) Spread {
	if len(d) == 0 {
		return Spread{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	p := Summarize(s)
	return Spread{Min: s[0], Median: med, P90: p.P90, Max: s[len(s)-1]}
}

// pollEvery is the pause between two readiness probes: small against the
// milliseconds measured, large enough not to starve the process measured.
const pollEvery = 100 * time.Microsecond

// ColdStart launches opts.Launch opts.Launches times and measures, from just
// before the process is started, the first answer on GET / and the first 200
// of the authenticated request. Each process is stopped with SIGTERM (killed
// after 5 s) before the next starts.
func ColdStart(ctx context.Context, opts ColdOptions) (ColdResult, error) {
	if opts.Launches < 1 || opts.Launches > MaxLaunches {
		return ColdResult{}, fmt.Errorf("loadtest: launches must be 1 to %d", MaxLaunches)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	var res ColdResult
	for range opts.Launches {
		s, err := coldOnce(ctx, opts)
		if err != nil {
			return res, err
		}
		res.Samples = append(res.Samples, s)
	}
	var a, b []time.Duration
	for _, s := range res.Samples {
		a, b = append(a, s.FirstAnswer), append(b, s.Authenticated)
	}
	res.FirstAnswer, res.Authenticated = spreadOf(a), spreadOf(b)
	return res, nil
}

func coldOnce(ctx context.Context, opts ColdOptions) (ColdSample, error) {
	port, err := freePort()
	if err != nil {
		return ColdSample{}, err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	env := make([]string, 0, len(opts.Launch.Env)+1)
	for _, kv := range opts.Launch.Env {
		if !strings.HasPrefix(kv, PortSetting+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, PortSetting+"="+strconv.Itoa(port))

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	// A fresh connection per probe, as the host's readiness probe makes.
	client := LoopbackClient(1, time.Second)
	client.Transport.(*http.Transport).DisableKeepAlives = true

	cmd := exec.Command(opts.Launch.Exe)
	cmd.Dir, cmd.Env = opts.Launch.Dir, env
	cmd.Stdout, cmd.Stderr = opts.Output, opts.Output
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return ColdSample{}, err
	}
	exited := make(chan struct{}) // closed once the process has exited
	go func() { _ = cmd.Wait(); close(exited) }()
	defer stop(cmd, exited)

	var s ColdSample
	if s.FirstAnswer, err = poll(ctx, client, base+"/", "", exited, t0, false); err != nil {
		return s, fmt.Errorf("loadtest: GET /: %w", err)
	}
	if s.Authenticated, err = poll(ctx, client, base+opts.Path, opts.Token, exited, t0, true); err != nil {
		return s, fmt.Errorf("loadtest: authenticated request: %w", err)
	}
	return s, nil
}

// poll repeats GET u until it gets a reply (want200: a 200) and returns the
// time since t0.
func poll(ctx context.Context, c *http.Client, u, token string, exited <-chan struct{}, t0 time.Time, want200 bool) (time.Duration, error) {
	last := 0
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if !want200 || resp.StatusCode == http.StatusOK {
				return time.Since(t0), nil
			}
			last = resp.StatusCode
		}
		select {
		case <-exited:
			return 0, errors.New("process exited")
		case <-ctx.Done():
			if last != 0 {
				return 0, fmt.Errorf("still %d: %w", last, ctx.Err())
			}
			return 0, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

func stop(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("loadtest: no TCP port")
	}
	return addr.Port, nil
}
