package caller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/netcheck"
	"github.com/weatherfunc/handler/internal/secrets"
)

// Options configure a Daemon.
type Options struct {
	// TargetURL is the weather API endpoint (CALLER_TARGET_URL), an absolute
	// http(s) URL; the city goes into its "city" query parameter.
	TargetURL string
	// Cities are called on every tick, in this order in the Report
	// (CALLER_CITIES); at least one.
	Cities []string
	// Tokens yields the access token sent to the API; required.
	Tokens TokenSource
	// HTTPClient carries the API calls. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives one line per city and tick, unless the tick's context
	// carries a logger (logctx), which wins. Default: discard.
	Logger *slog.Logger
	// Now is the clock for latencies and durations. Default time.Now.
	Now func() time.Time
	// Concurrency is how many cities are called at once. Default 4.
	Concurrency int
	// Retry is the retry policy of the token request and of each city's
	// API call; see RetryPolicy for the defaults.
	Retry RetryPolicy
	// Sleep waits d, or until ctx is done (then it returns ctx.Err()), between
	// attempts. Default: a timer. Tests pass one that advances their clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the backoff's jitter. Default
	// math/rand/v2's Float64 (safe for concurrent use).
	Rand func() float64
}

// Daemon is the CallerTimer's logic. It is safe for concurrent use.
type Daemon struct {
	target *url.URL
	cities []string
	tokens TokenSource
	http   *http.Client
	log    *slog.Logger
	now    func() time.Time
	conc   int
	policy RetryPolicy
	sleep  func(context.Context, time.Duration) error
	rand   func() float64
}

// New checks opts and returns a Daemon; it makes no network call.
func New(opts Options) (*Daemon, error) {
	var errs []error
	u, err := netcheck.CheckURL(opts.TargetURL, netcheck.Rules{})
	if err == nil && u.Fragment != "" {
		err = netcheck.ErrHasPath
	}
	if err != nil {
		// The token travels to this URL: https, or http only on loopback.
		errs = append(errs, fmt.Errorf("caller: CALLER_TARGET_URL %w", err))
	}
	var cities []string
	for _, c := range opts.Cities {
		if c = strings.TrimSpace(c); c != "" {
			cities = append(cities, c)
		}
	}
	if len(cities) == 0 {
		errs = append(errs, errors.New("caller: CALLER_CITIES names no city"))
	}
	if opts.Tokens == nil {
		errs = append(errs, errors.New("caller: a token source is required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	d := &Daemon{target: u, cities: cities, tokens: opts.Tokens, http: opts.HTTPClient,
		log: opts.Logger, now: opts.Now, conc: opts.Concurrency, policy: opts.Retry.withDefaults(),
		sleep: opts.Sleep, rand: opts.Rand}
	if d.http == nil {
		d.http = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.conc <= 0 {
		d.conc = 4
	}
	if d.sleep == nil {
		d.sleep = sleepCtx
	}
	if d.rand == nil {
		d.rand = rand.Float64
	}
	return d, nil
}

// ErrNoToken marks the cities of a tick that got no access token: they were
// not called.
var ErrNoToken = errors.New("not called: no access token")

// Tick gets a token and calls the API for every city, at most Concurrency at
// a time, retrying transient failures of each as Retry says, within ctx's
// deadline. It never fails as a whole: the Report says what happened. It
// logs one line per city (Info when answered, Warn when failed: on the
// handler's stderr) and, when no token could be had, one Error line naming
// the setting to fix when there is one.
func (d *Daemon) Tick(ctx context.Context) Report {
	log := logctx.From(ctx, d.log)
	start := d.now()
	var tok secrets.Secret
	attempts, err := d.retry(ctx, log, "token", func() outcome {
		var err error
		tok, err = d.tokens.Token(ctx)
		return tokenOutcome(err)
	})
	tokenDone := d.now()
	if err != nil {
		attrs := []any{"attempts", attempts, "error", err.Error()}
		var te *TokenError
		if errors.As(err, &te) && te.Setting != "" {
			attrs = append(attrs, "setting", te.Setting, "retried", false)
		}
		log.Error("caller: no access token, no city called", attrs...)
		results := make([]CityResult, len(d.cities))
		for i, c := range d.cities {
			results[i] = CityResult{City: c, Err: ErrNoToken}
		}
		return Report{Results: results, TokenErr: err, TokenAttempts: attempts,
			TokenDuration: tokenDone.Sub(start), Duration: d.now().Sub(start)}
	}

	results := make([]CityResult, len(d.cities))
	sem := make(chan struct{}, d.conc)
	var wg sync.WaitGroup
	// Cities start in configuration order (one at a time when Concurrency
	// is 1), and no goroutine waits for a slot.
	for i, city := range d.cities {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i] = CityResult{City: city, Err: fmt.Errorf("weather API: not called: %w", ctx.Err())}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = d.callWithRetry(ctx, log, city, tok)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.Err != nil {
			log.Warn("caller: city failed", "city", r.City, "status", r.Status, "attempts", r.Attempts,
				"latency_ms", r.Latency.Milliseconds(), "error", r.Err.Error())
			continue
		}
		attrs := []any{"city", r.City, "status", r.Status, "attempts", r.Attempts, "latency_ms", r.Latency.Milliseconds(),
			"units", r.Units, "conditions", r.Conditions}
		if r.Temperature != nil {
			attrs = append(attrs, "temperature", *r.Temperature)
		}
		log.Info("caller: city answered", attrs...)
	}
	return Report{Results: results, TokenAttempts: attempts, TokenDuration: tokenDone.Sub(start), Duration: d.now().Sub(start)}
}

// callWithRetry calls the API for one city, retrying transient failures.
func (d *Daemon) callWithRetry(ctx context.Context, log *slog.Logger, city string, tok secrets.Secret) CityResult {
	var res CityResult
	start := d.now()
	attempts, err := d.retry(ctx, log.With("city", city), "weather API", func() outcome {
		var retryAfter string
		res, retryAfter = d.call(ctx, city, tok)
		o := outcome{err: res.Err, retryAfter: retryAfter}
		switch {
		case res.Err == nil:
		case res.Status != 0:
			o.retryable = retryableStatus(res.Status)
		case errors.Is(res.Err, errMalformedReply):
		default:
			o.retryable = transient(res.Err)
		}
		return o
	})
	res.Err, res.Attempts = err, attempts
	if attempts > 1 {
		res.Elapsed = d.now().Sub(start)
	}
	return res
}

// call asks the API for one city's weather, once. It returns the reply's
// Retry-After with the result.
func (d *Daemon) call(ctx context.Context, city string, tok secrets.Secret) (CityResult, string) {
	res := CityResult{City: city}
	u := *d.target
	q := u.Query()
	q.Set("city", city)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		res.Err = fmt.Errorf("weather API: bad request: %w", err)
		return res, ""
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	req.Header.Set("Accept", "application/json")

	start := d.now()
	resp, err := d.http.Do(req)
	if err != nil {
		res.Latency = d.now().Sub(start)
		res.Err = unreachable(err)
		return res, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	res.Latency = d.now().Sub(start)
	if err != nil {
		res.Err = unreachable(err)
		return res, ""
	}
	res.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		res.Err = parseAPIError(resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		return res, resp.Header.Get("Retry-After")
	}
	o, err := parseObservation(body)
	if err != nil {
		res.Err = err
		return res, ""
	}
	res.Temperature, res.Units, res.Conditions = o.Temperature, o.Units, o.Conditions
	res.Country, res.ObservedAt = o.Country, o.ObservedAt
	if o.City != "" {
		res.City = o.City
	}
	return res, ""
}

// unreachable wraps a transport failure. *url.Error names the URL, which
// carries only the city; the token travels in a header and is never in it.
func unreachable(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("weather API unreachable: %w", ue.Err)
	}
	return fmt.Errorf("weather API unreachable: %w", err)
}
