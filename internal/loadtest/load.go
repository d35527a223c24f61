package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/weatherfunc/handler/internal/netcheck"
)

// Limits on one load run.
const (
	// MaxDuration is the longest run Run accepts.
	MaxDuration = 5 * time.Minute
	// MaxConcurrency is the most clients Run accepts.
	MaxConcurrency = 4096
	// DefaultMaxRequests bounds the requests of one run when
	// Options.MaxRequests is zero.
	DefaultMaxRequests = 10_000_000
)

// Options configure a load run.
type Options struct {
	// URL is the target (GET). Its host must be a loopback address or
	// "localhost".
	URL string
	// Tokens are sent as "Authorization: Bearer <token>", client i using
	// Tokens[i%len(Tokens)] (several daemons). Empty sends none.
	Tokens []string
	// Concurrency is the number of clients, each with its own keep-alive
	// connection, each sending its next request when the previous reply
	// has been read (a closed loop). Default 64.
	Concurrency int
	// Duration bounds the run; at most MaxDuration. Default 10 s.
	Duration time.Duration
	// MaxRequests bounds the number of requests. Default DefaultMaxRequests.
	MaxRequests int
	// Timeout bounds each request. Default 10 s.
	Timeout time.Duration
}

// Result is what a load run measured.
type Result struct {
	Requests int           // replies received, errors included
	Errors   int           // replies other than 200, and transport failures
	Statuses map[int]int   // by HTTP status; 0 counts transport failures
	Elapsed  time.Duration // from the first request to the last reply
	Latency  Percentiles   // of every request, errors included
}

// RequestsPerSecond is Requests divided by Elapsed.
func (r Result) RequestsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentiles summarise latencies.
type Percentiles struct {
	P50, P90, P99, Max time.Duration
}

// Summarize returns the nearest-rank percentiles of d (sorted in place).
func Summarize(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.999999) - 1 // nearest rank: ceil(p·n)
		return d[min(max(i, 0), len(d)-1)]
	}
	return Percentiles{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: d[len(d)-1]}
}

// CheckLoopbackURL accepts an absolute http or https URL whose host is a
// loopback address or localhost.
func CheckLoopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("loadtest: %q is not an absolute http(s) URL", raw)
	}
	if !netcheck.IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("loadtest: refusing %s: not a loopback address", u.Host)
	}
	return u, nil
}

// errNotLoopback is returned by the dialer for any non-loopback address.
var errNotLoopback = errors.New("loadtest: refusing to connect to a non-loopback address")

// LoopbackClient returns an HTTP client whose connections can only go to
// loopback addresses (checked on the resolved address, at connect time),
// keeping up to conns idle connections, never following redirects.
func LoopbackClient(conns int, timeout time.Duration) *http.Client {
	d := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return errNotLoopback
			}
			return nil
		},
	}
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy: loopback only
		DialContext:         d.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Run drives GET opts.URL until opts.Duration has passed, opts.MaxRequests
// requests have been sent, or ctx is done, whichever comes first.
func Run(ctx context.Context, opts Options) (Result, error) {
	u, err := CheckLoopbackURL(opts.URL)
	if err != nil {
		return Result{}, err
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 64
	}
	if opts.Duration == 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.MaxRequests == 0 {
		opts.MaxRequests = DefaultMaxRequests
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	switch {
	case opts.Concurrency < 0 || opts.Concurrency > MaxConcurrency:
		return Result{}, fmt.Errorf("loadtest: concurrency must be 1 to %d", MaxConcurrency)
	case opts.Duration < 0 || opts.Duration > MaxDuration:
		return Result{}, fmt.Errorf("loadtest: duration must be at most %v", MaxDuration)
	case opts.MaxRequests < 0:
		return Result{}, errors.New("loadtest: max requests must not be negative")
	}
	client := LoopbackClient(opts.Concurrency, opts.Timeout)
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	var (
		mu   sync.Mutex
		sent int
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if sent >= opts.MaxRequests || ctx.Err() != nil {
			return false
		}
		sent++
		return true
	}

	type worker struct {
		lat      []time.Duration
		statuses map[int]int
	}
	workers := make([]worker, opts.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &workers[i]
		w.statuses = map[int]int{}
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return Result{}, err
		}
		if len(opts.Tokens) > 0 {
			req.Header.Set("Authorization", "Bearer "+opts.Tokens[i%len(opts.Tokens)])
		}
		wg.Go(func() {
			for take() {
				t0 := time.Now()
				status := 0
				// The request is not bound to ctx: a run ends between
				// requests, so the last replies are not cut off and
				// counted as errors.
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					status = resp.StatusCode
				}
				w.lat = append(w.lat, time.Since(t0))
				w.statuses[status]++
			}
		})
	}
	wg.Wait()
	res := Result{Elapsed: time.Since(start), Statuses: map[int]int{}}
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		for s, n := range w.statuses {
			res.Statuses[s] += n
			res.Requests += n
			if s != http.StatusOK {
				res.Errors += n
			}
		}
	}
	res.Latency = Summarize(all)
	return res, nil
}
