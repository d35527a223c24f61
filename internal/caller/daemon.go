package caller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/weatherfunc/handler/internal/logctx"
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
}

// New checks opts and returns a Daemon; it makes no network call.
func New(opts Options) (*Daemon, error) {
	var errs []error
	u, err := url.Parse(opts.TargetURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		errs = append(errs, errors.New("caller: CALLER_TARGET_URL must be an absolute http(s) URL"))
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
		log: opts.Logger, now: opts.Now, conc: opts.Concurrency}
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
	return d, nil
}

// ErrNoToken marks the cities of a tick that got no access token: they were
// not called.
var ErrNoToken = errors.New("not called: no access token")

// Tick gets a token and calls the API for every city, at most Concurrency at
// a time. It never fails as a whole: the Report says what happened.
func (d *Daemon) Tick(ctx context.Context) Report {
	log := logctx.From(ctx, d.log)
	start := d.now()
	tok, err := d.tokens.Token(ctx)
	if err != nil {
		log.Error("caller: no access token, no city called", "error", err.Error())
		results := make([]CityResult, len(d.cities))
		for i, c := range d.cities {
			results[i] = CityResult{City: c, Err: ErrNoToken}
		}
		return Report{Results: results, TokenErr: err, Duration: d.now().Sub(start)}
	}

	results := make([]CityResult, len(d.cities))
	sem := make(chan struct{}, d.conc)
	var wg sync.WaitGroup
	for i, city := range d.cities {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = CityResult{City: city, Err: fmt.Errorf("weather API: not called: %w", ctx.Err())}
				return
			}
			defer func() { <-sem }()
			results[i] = d.call(ctx, city, tok)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.Err != nil {
			log.Warn("caller: city failed", "city", r.City, "status", r.Status,
				"latency_ms", r.Latency.Milliseconds(), "error", r.Err.Error())
			continue
		}
		attrs := []any{"city", r.City, "status", r.Status, "latency_ms", r.Latency.Milliseconds(),
			"units", r.Units, "conditions", r.Conditions}
		if r.Temperature != nil {
			attrs = append(attrs, "temperature", *r.Temperature)
		}
		log.Info("caller: city answered", attrs...)
	}
	return Report{Results: results, Duration: d.now().Sub(start)}
}

// call asks the API for one city's weather.
func (d *Daemon) call(ctx context.Context, city string, tok secrets.Secret) CityResult {
	res := CityResult{City: city}
	u := *d.target
	q := u.Query()
	q.Set("city", city)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		res.Err = fmt.Errorf("weather API: bad request: %w", err)
		return res
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	req.Header.Set("Accept", "application/json")

	start := d.now()
	resp, err := d.http.Do(req)
	if err != nil {
		res.Latency = d.now().Sub(start)
		res.Err = unreachable(err)
		return res
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	res.Latency = d.now().Sub(start)
	res.Status = resp.StatusCode
	if err != nil {
		res.Err = unreachable(err)
		return res
	}
	if resp.StatusCode != http.StatusOK {
		res.Err = parseAPIError(resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		return res
	}
	o, err := parseObservation(body)
	if err != nil {
		res.Err = err
		return res
	}
	res.Temperature, res.Units, res.Conditions = o.Temperature, o.Units, o.Conditions
	res.Country, res.ObservedAt = o.Country, o.ObservedAt
	if o.City != "" {
		res.City = o.City
	}
	return res
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
