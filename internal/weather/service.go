package weather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/netcheck"
	"github.com/weatherfunc/handler/internal/secrets"
)

// Defaults of Options.
const (
	DefaultBaseURL         = "https://api.openweathermap.org"
	DefaultCacheTTL        = 10 * time.Minute
	DefaultCacheSize       = 1000
	DefaultMaxStale        = time.Hour
	DefaultNotFoundTTL     = time.Minute
	DefaultRatePerMinute   = 60 // OpenWeatherMap's free plan
	DefaultUpstreamTimeout = 10 * time.Second
	// MinCacheTTL and MaxCacheTTL bound Options.CacheTTL (DESIGN §3 WEATHER_CACHE_TTL).
	MinCacheTTL = time.Second
	MaxCacheTTL = 24 * time.Hour
)

// keyRetryAfter is the Retry-After we advise while the API key is not available.
const keyRetryAfter = 5 * time.Second

// CredentialsRecheckInterval is the least time between two calls of
// Options.OnCredentialsRejected.
const CredentialsRecheckInterval = time.Minute

// Options configures a Service. The zero value of every field but APIKey is
// useful.
type Options struct {
	// BaseURL is OpenWeatherMap's base URL (a path prefix is kept). Default
	// DefaultBaseURL. It must be https; http is allowed only for loopback
	// hosts (the offline stand-in), otherwise New fails.
	BaseURL string
	// APIKey holds the OpenWeatherMap key; required. While it is not ready,
	// requests get 503 with Retry-After and no upstream call is made.
	APIKey *secrets.Cell
	// HTTPClient makes every upstream call (one client, reused). Nil means a
	// client with a 10 s timeout. New uses a shallow copy that does not
	// follow redirects (a redirect could carry the key elsewhere).
	HTTPClient *http.Client
	// CacheTTL is how long an observation is served fresh. Default
	// DefaultCacheTTL; New fails outside [MinCacheTTL, MaxCacheTTL].
	CacheTTL time.Duration
	// CacheSize bounds the number of cached locations (LRU eviction).
	// Default DefaultCacheSize; negative is an error.
	CacheSize int
	// MaxStale is how long past its TTL an observation may still be served,
	// marked stale, when the upstream fails. Default DefaultMaxStale;
	// negative disables stale answers.
	MaxStale time.Duration
	// NotFoundTTL is how long "no such location" is remembered (never longer
	// than CacheTTL). Default DefaultNotFoundTTL; negative disables it.
	NotFoundTTL time.Duration
	// RatePerMinute caps upstream calls per minute (a token bucket whose
	// burst is a tenth of it, at least 1). Default DefaultRatePerMinute;
	// negative is an error. Requests beyond it get 503 with Retry-After
	// (or a stale observation) at once rather than waiting.
	RatePerMinute int
	// UpstreamTimeout bounds each upstream call, whatever HTTPClient's own
	// timeout. Default and maximum DefaultUpstreamTimeout (DESIGN §9).
	UpstreamTimeout time.Duration
	// OnCredentialsRejected, when set, is called when the provider answers
	// 401 to our key, so that the owner can read the key again (it may have
	// been rotated in Key Vault) and Set the new value on APIKey. It is
	// called at most once per CredentialsRecheckInterval, on the goroutine
	// of the upstream call: it must return quickly (start the re-read
	// elsewhere).
	OnCredentialsRejected func()
	// Logger receives operational lines (never the key). Nil discards.
	// A logger in the request context (logctx) takes precedence.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Service answers weather queries through a cache in front of OpenWeatherMap.
// It is safe for concurrent use.
type Service struct {
	endpoint        *url.URL
	apiKey          *secrets.Cell
	client          *http.Client
	ttl             time.Duration
	maxStale        time.Duration
	notFoundTTL     time.Duration
	upstreamTimeout time.Duration
	log             *slog.Logger
	now             func() time.Time
	cache           *lru
	limiter         *rate.Limiter

	mu      sync.Mutex         // guards flights and each flight's waiters
	flights map[string]*flight // by cache key: the call in progress that new misses join

	pauseMu sync.Mutex
	paused  time.Time // no upstream call before this (after an upstream 429)

	onRejected   func()
	rejectMu     sync.Mutex
	lastRejected time.Time // when onRejected was last called

	upstreamCalls atomic.Int64
}

// New validates opts and returns a Service.
func New(opts Options) (*Service, error) {
	var errs []error
	if opts.APIKey == nil {
		errs = append(errs, errors.New("weather: APIKey is required"))
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	endpoint, err := weatherEndpoint(base)
	if err != nil {
		errs = append(errs, err)
	}
	ttl := opts.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if ttl < MinCacheTTL || ttl > MaxCacheTTL {
		errs = append(errs, fmt.Errorf("weather: CacheTTL %v outside [%v, %v]", ttl, MinCacheTTL, MaxCacheTTL))
	}
	size := opts.CacheSize
	switch {
	case size == 0:
		size = DefaultCacheSize
	case size < 0:
		errs = append(errs, fmt.Errorf("weather: CacheSize %d is negative", size))
	}
	maxStale := opts.MaxStale
	switch {
	case maxStale == 0:
		maxStale = DefaultMaxStale
	case maxStale < 0:
		maxStale = 0
	}
	notFoundTTL := opts.NotFoundTTL
	switch {
	case notFoundTTL == 0:
		notFoundTTL = DefaultNotFoundTTL
	case notFoundTTL < 0:
		notFoundTTL = 0
	}
	notFoundTTL = min(notFoundTTL, ttl)
	rpm := opts.RatePerMinute
	switch {
	case rpm == 0:
		rpm = DefaultRatePerMinute
	case rpm < 0:
		errs = append(errs, fmt.Errorf("weather: RatePerMinute %d is negative", rpm))
	}
	timeout := opts.UpstreamTimeout
	switch {
	case timeout == 0:
		timeout = DefaultUpstreamTimeout
	case timeout < 0 || timeout > DefaultUpstreamTimeout:
		errs = append(errs, fmt.Errorf("weather: UpstreamTimeout %v outside (0, %v]", timeout, DefaultUpstreamTimeout))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	client := &http.Client{Timeout: DefaultUpstreamTimeout}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		client = &c
	}
	// NOTE: stricter than net/http's default: never follow a redirect. The
	// request URL carries the key, and OpenWeatherMap does not redirect.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Service{
		endpoint:        endpoint,
		apiKey:          opts.APIKey,
		client:          client,
		ttl:             ttl,
		maxStale:        maxStale,
		notFoundTTL:     notFoundTTL,
		upstreamTimeout: timeout,
		log:             log,
		now:             now,
		cache:           newLRU(size),
		limiter:         rate.NewLimiter(rate.Limit(float64(rpm)/60), max(1, rpm/10)),
		flights:         make(map[string]*flight),
		onRejected:      opts.OnCredentialsRejected,
	}, nil
}

// weatherEndpoint validates the base URL and returns the current-weather endpoint.
func weatherEndpoint(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, errors.New("weather: BaseURL is not a URL")
	}
	switch {
	case !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return nil, errors.New("weather: BaseURL must be an absolute URL")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, errors.New("weather: BaseURL must not carry user info, a query or a fragment")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, errors.New("weather: BaseURL must be https (http only for loopback hosts)")
	default:
		return nil, fmt.Errorf("weather: BaseURL scheme %q is not https", u.Scheme)
	}
	return u.JoinPath(weatherPath), nil
}

func isLoopback(host string) bool { return netcheck.IsLoopback(host) }

// UpstreamCalls reports how many HTTP requests this Service has sent upstream.
func (s *Service) UpstreamCalls() int64 { return s.upstreamCalls.Load() }

// Current returns the current weather for q, from the cache when fresh. q is
// validated again (a Query built by hand gets ErrBadLocation rather than
// reaching the provider). The Observation is the caller's own copy. Every
// error is an *Error (use errors.As) wrapping one of the Err* kinds.
func (s *Service) Current(ctx context.Context, q Query) (*Observation, CacheState, error) {
	q, bad := ParseQuery(q.values())
	if len(bad) > 0 {
		return nil, CacheState{}, invalidParamsError(bad)
	}
	e, state, werr := s.get(ctx, q)
	if werr != nil {
		return nil, state, werr
	}
	var o Observation
	if err := json.Unmarshal(e.body, &o); err != nil { // cannot happen: we encoded it
		return nil, state, upstreamError(err)
	}
	return &o, state, nil
}

// get answers a validated query: a fresh cache entry, else one shared
// upstream call, else (when that fails for a reason a stale answer can cover)
// the last good observation within MaxStale.
func (s *Service) get(ctx context.Context, q Query) (*entry, CacheState, *Error) {
	key := q.cacheKey()
	now := s.now()
	if e, ok := s.cache.get(key, now); ok && now.Before(e.expires) {
		state := hitState(e, now)
		if e.notFound {
			return nil, state, notFoundError()
		}
		return e, state, nil
	}
	e, werr := s.join(ctx, key, q)
	if werr == nil {
		return e, CacheState{}, nil
	}
	if staleAllowed(werr) {
		now = s.now()
		if old, ok := s.cache.get(key, now); ok && !old.notFound {
			state := hitState(old, now)
			logctx.From(ctx, s.log).Warn("weather: serving stale observation", "query", q.String(), "error", werr.Error(), "age_s", int64(state.Age/time.Second))
			return old, state, nil
		}
	}
	return nil, CacheState{}, werr
}

// flight is one upstream call in progress for a cache key: concurrent misses
// for the key wait on done and share res. Its context is detached from any
// single caller and canceled when the last waiting caller leaves early (or
// when the call ends), so a canceled request cancels the upstream call
// unless someone else still waits for it.
type flight struct {
	ctx     context.Context
	cancel  context.CancelFunc
	waiters int           // guarded by Service.mu
	done    chan struct{} // closed once res is set
	res     flightResult
}

type flightResult struct {
	e   *entry
	err *Error
}

// join makes concurrent misses for one key share one upstream call. A flight
// stays in s.flights from its creation until its call has finished or its
// last waiter has left early, so a caller arriving after an abandoned flight
// (its context canceled) starts a new call instead of joining a doomed one.
func (s *Service) join(ctx context.Context, key string, q Query) (*entry, *Error) {
	s.mu.Lock()
	f := s.flights[key]
	if f == nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.upstreamTimeout)
		f = &flight{ctx: fctx, cancel: cancel, done: make(chan struct{})}
		s.flights[key] = f
		go func() {
			e, err := s.load(f.ctx, key, q)
			f.res = flightResult{e, err}
			// Retire the flight before waking its waiters: a request
			// arriving from now on must see the cache (or start a new
			// call), never join a call that has already answered.
			s.endFlight(key, f)
			close(f.done)
		}()
	}
	f.waiters++
	s.mu.Unlock()

	select {
	case <-f.done:
		s.leave(key, f, false)
		return f.res.e, f.res.err
	case <-ctx.Done():
		s.leave(key, f, true)
		return nil, canceledError(ctx.Err())
	}
}

// endFlight retires f once its call has finished.
func (s *Service) endFlight(key string, f *flight) {
	s.mu.Lock()
	if s.flights[key] == f {
		delete(s.flights, key)
	}
	s.mu.Unlock()
	f.cancel()
}

// leave drops one waiter; the last one to leave early cancels the call.
func (s *Service) leave(key string, f *flight, early bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.waiters--
	if early && f.waiters == 0 {
		if s.flights[key] == f {
			delete(s.flights, key)
		}
		f.cancel()
	}
}

// load makes the upstream call for a miss, within the key, the pause after a
// 429 and the rate limit, and stores what it learns.
func (s *Service) load(ctx context.Context, key string, q Query) (*entry, *Error) {
	log := logctx.From(ctx, s.log)
	secret, err := s.apiKey.Get()
	if err != nil {
		log.Warn("weather: API key not available yet", "error", err.Error())
		return nil, keyNotReadyError(err, keyRetryAfter)
	}
	apiKey := secret.Reveal()
	if reason := unusableKey(apiKey); reason != "" {
		// C18: an unresolved Key Vault reference must never travel upstream.
		log.Error("weather: API key (WEATHER_API_KEY) is not usable; not calling the weather provider", "reason", reason)
		return nil, keyNotReadyError(errors.New(reason), keyRetryAfter)
	}

	now := s.now()
	if wait := s.pausedFor(now); wait > 0 {
		return nil, rateLimitedError(wait)
	}
	res := s.limiter.ReserveN(now, 1)
	if d := res.DelayFrom(now); !res.OK() || d > 0 {
		res.CancelAt(now)
		log.Warn("weather: local upstream rate limit reached", "query", q.String())
		return nil, rateLimitedError(max(d, time.Second))
	}

	obs, werr := s.fetch(ctx, apiKey, q)
	if werr != nil {
		s.logFailure(log, q, werr)
		if werr.kind == ErrNotFound && s.notFoundTTL > 0 {
			now := s.now()
			exp := now.Add(s.notFoundTTL)
			s.cache.put(&entry{key: key, notFound: true, stored: now, expires: exp, staleUntil: exp})
		}
		return nil, werr
	}
	body, err := json.Marshal(obs)
	if err != nil { // cannot happen: parseObservation bounds every time and number
		return nil, upstreamError(err)
	}
	now = s.now()
	e := &entry{key: key, body: body, etag: entityTag(body), stored: now, expires: now.Add(s.ttl), staleUntil: now.Add(s.ttl + s.maxStale)}
	s.cache.put(e)
	log.Debug("weather: upstream observation stored", "query", q.String())
	return e, nil
}

func (s *Service) logFailure(log *slog.Logger, q Query, werr *Error) {
	switch werr.kind {
	case ErrNotFound, ErrBadLocation:
		log.Info("weather: location refused by the provider", "query", q.String(), "status", werr.status)
	case ErrCanceled:
		log.Debug("weather: upstream call canceled", "query", q.String())
	case ErrCredentialsRejected:
		log.Error("weather: provider rejected our API key (check WEATHER_API_KEY)")
	default:
		log.Warn("weather: upstream call failed", "query", q.String(), "error", werr.Error())
	}
}

// unusableKey says why a key must not be sent upstream, or "".
func unusableKey(k string) string {
	switch {
	case k == "":
		return "empty key"
	case strings.HasPrefix(strings.ToLower(strings.TrimSpace(k)), "@microsoft.keyvault("):
		return "unresolved Key Vault reference"
	case strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "key contains spaces or control characters"
	}
	return ""
}

// pausedFor reports how long upstream calls are still paused after a 429.
func (s *Service) pausedFor(now time.Time) time.Duration {
	s.pauseMu.Lock()
	defer s.pauseMu.Unlock()
	return s.paused.Sub(now)
}

// pauseUntil pauses upstream calls until t (never shortening a pause).
func (s *Service) pauseUntil(t time.Time) {
	s.pauseMu.Lock()
	defer s.pauseMu.Unlock()
	if t.After(s.paused) {
		s.paused = t
	}
}

// credentialsRejected tells the owner that the provider refused our key, at
// most once per CredentialsRecheckInterval.
func (s *Service) credentialsRejected() {
	if s.onRejected == nil {
		return
	}
	now := s.now()
	s.rejectMu.Lock()
	due := s.lastRejected.IsZero() || now.Sub(s.lastRejected) >= CredentialsRecheckInterval
	if due {
		s.lastRejected = now
	}
	s.rejectMu.Unlock()
	if due {
		s.onRejected()
	}
}
