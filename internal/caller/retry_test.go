package caller

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/entra"
	"github.com/weatherfunc/handler/internal/devstack/tlsca"
	"github.com/weatherfunc/handler/internal/secrets"
	"github.com/weatherfunc/handler/internal/tracing"
)

// fakeClock is a clock that moves only when sleep is called; sleep records
// every wait. Together they are Options.Now and Options.Sleep.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock {
	// Real time, so that a context deadline means what it says; whole
	// seconds, so that HTTP dates (second resolution) compare exactly.
	return &fakeClock{t: time.Now().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.t = c.t.Add(d)
	return ctx.Err()
}

func (c *fakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// fault is what a faulty server does instead of answering normally.
type fault struct {
	status     int
	retryAfter string // a Retry-After value; "date+N" is the clock's now + N seconds as an HTTP date
	reset      bool   // reset the TCP connection after reading the request
}

// faultPlan hands out the planned faults per key, first come first served,
// and records the traceparent of every request.
type faultPlan struct {
	mu     sync.Mutex
	now    func() time.Time
	plan   map[string][]fault
	hits   map[string]int
	traces []string
}

func newFaultPlan(now func() time.Time, plan map[string][]fault) *faultPlan {
	return &faultPlan{now: now, plan: plan, hits: map[string]int{}}
}

// next records a request for key and returns its fault, if one is planned.
func (p *faultPlan) next(key string, r *http.Request) (fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hits[key]++
	p.traces = append(p.traces, r.Header.Get("traceparent"))
	if len(p.plan[key]) == 0 {
		return fault{}, false
	}
	f := p.plan[key][0]
	p.plan[key] = p.plan[key][1:]
	return f, true
}

func (p *faultPlan) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[key]
}

func (p *faultPlan) traceparents() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.traces...)
}

// serve acts out f; it reports false when the request should be answered normally.
func (p *faultPlan) serve(w http.ResponseWriter, key string, r *http.Request) bool {
	f, ok := p.next(key, r)
	if !ok {
		return false
	}
	if f.reset {
		resetConn(w)
		return true
	}
	if ra := f.retryAfter; ra != "" {
		if n, ok := strings.CutPrefix(ra, "date+"); ok {
			secs, _ := strconv.Atoi(n)
			ra = p.now().Add(time.Duration(secs) * time.Second).UTC().Format(http.TimeFormat)
		}
		w.Header().Set("Retry-After", ra)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, `{"error":"temporarily_unavailable","error_description":"injected by the test","error_codes":[]}`)
	return true
}

// resetConn hijacks the HTTP/1.1 connection and closes it with SO_LINGER 0:
// the client reads a TCP reset instead of a reply.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

// entraFront is a loopback HTTPS front for the Entra stand-in that injects
// the planned faults (keys "metadata" and "token") and relays everything
// else, with the stand-in's URL rewritten to the front's in bodies so that
// MSAL sends its token request through the front too. It speaks HTTP/1.1
// without keep-alive (a reset cannot be retried by net/http on its own).
func entraFront(t *testing.T, ca *tlsca.CA, upstream string, plan *faultPlan) string {
	t.Helper()
	up, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := "https://" + ln.Addr().String()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Header.Del("Accept-Encoding")
		},
		Transport: ca.Client().Transport,
		ModifyResponse: func(res *http.Response) error {
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				return err
			}
			b = []byte(strings.ReplaceAll(string(b), upstream, front))
			res.Body = io.NopCloser(strings.NewReader(string(b)))
			res.ContentLength = int64(len(b))
			res.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := "other"
			switch {
			case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
				key = "token"
			case strings.HasSuffix(r.URL.Path, "/openid-configuration"):
				key = "metadata"
			}
			if plan.serve(w, key, r) {
				return
			}
			proxy.ServeHTTP(w, r)
		}),
		TLSConfig:    ca.ServerConfig(),
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
		ErrorLog:     nil,
	}
	srv.SetKeepAlivesEnabled(false)
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return front
}

// faultyAPI is a loopback weather API (plain HTTP/1.1, no keep-alive) that
// acts out the plan per city, then answers as the env's API does.
func faultyAPI(t *testing.T, e *env, plan *faultPlan) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if plan.serve(w, r.URL.Query().Get("city"), r) {
			return
		}
		e.serveAPI(w, r)
	}))
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/api/WeatherHttp"
}

// tracedClient is the production shape: a tracing.Transport over a client
// that trusts the test CA.
func tracedClient(ca *tlsca.CA) *http.Client {
	return &http.Client{Transport: &tracing.Transport{Base: ca.Client().Transport}, Timeout: 10 * time.Second}
}

func half() float64 { return 0.5 }

// TestRetriesThroughFaults drives the real Entra stand-in (behind a faulty
// front) and a loopback API through 429s, 503s and connection resets, and
// checks the exact attempts and waits under an injected clock and sleep.
// With Rand fixed at 0.5 the full-jitter waits are half the ceilings
// 500 ms, 1 s, 2 s; a Retry-After replaces the backoff.
func TestRetriesThroughFaults(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	entraPlan := newFaultPlan(clock.Now, map[string][]fault{
		"token": {{status: 429, retryAfter: "2"}, {status: 503}, {reset: true}},
	})
	apiPlan := newFaultPlan(clock.Now, map[string][]fault{
		"London": {{status: 503, retryAfter: "1"}, {reset: true}, {status: 429, retryAfter: "date+3"}},
		"Paris":  {{status: 502}, {status: 500}, {status: 504}, {status: 503}, {status: 503}},
	})
	front := entraFront(t, e.ca, e.entra.URL(), entraPlan)
	ts := e.tokenSource(t, func(o *MSALOptions) { o.AuthorityHost = front; o.HTTPClient = tracedClient(e.ca) })
	d, err := New(Options{TargetURL: faultyAPI(t, e, apiPlan), Cities: []string{"London", "Paris", "Atlantis"}, Tokens: ts,
		HTTPClient: tracedClient(e.ca), Logger: e.logger, Now: clock.Now, Sleep: clock.Sleep, Rand: half, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := d.Tick(ctx)
	for _, l := range r.Lines() {
		t.Log(l)
	}
	if r.TokenErr != nil {
		t.Fatalf("token: %v", r.TokenErr)
	}

	const ms = time.Millisecond
	wantWaits := []time.Duration{
		2000 * ms, 500 * ms, 1000 * ms, // token: Retry-After 2, backoff 2, backoff 3
		1000 * ms, 500 * ms, 3000 * ms, // London: Retry-After 1, backoff 2, Retry-After as an HTTP date 3 s ahead
		250 * ms, 500 * ms, 1000 * ms, // Paris: backoff 1, 2, 3, then no attempts left
	}
	if got := clock.Waits(); fmt.Sprint(got) != fmt.Sprint(wantWaits) {
		t.Errorf("waits = %v\nwant    %v", got, wantWaits)
	}
	checks := []struct {
		name      string
		got, want int
	}{
		{"token attempts (Report)", r.TokenAttempts, 4},
		{"token requests at the front", entraPlan.count("token"), 4},
		{"token requests reaching the stand-in", e.entra.TokenRequests(), 1},
		{"metadata requests (MSAL caches them)", entraPlan.count("metadata"), 1},
		{"London attempts", r.Results[0].Attempts, 4},
		{"London requests", apiPlan.count("London"), 4},
		{"Paris attempts", r.Results[1].Attempts, 4},
		{"Paris requests", apiPlan.count("Paris"), 4},
		{"Atlantis attempts (404 is not retried)", r.Results[2].Attempts, 1},
		{"Atlantis requests", apiPlan.count("Atlantis"), 1},
		{"succeeded", r.Succeeded(), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if r.Results[0].Err != nil || r.Results[0].Elapsed != 4500*ms {
		t.Errorf("London = %+v, want answered after 4.5 s of waits", r.Results[0])
	}
	var gu *GiveUpError
	if !errors.As(r.Results[1].Err, &gu) || !strings.Contains(r.Lines()[1], "gave up after 4 attempts") || !strings.Contains(r.Lines()[1], "HTTP 503") {
		t.Errorf("Paris line = %q", r.Lines()[1])
	}
	if r.TokenDuration != 3500*ms {
		t.Errorf("token duration = %v, want the 3.5 s of waits", r.TokenDuration)
	}
	s := r.Summary()
	if s["token_attempts"] != 4 || s["retried"] != 2 || s["token_ms"] != int64(3500) || s["duration_ms"] != int64(3500+4500+1750) {
		t.Errorf("summary = %v", s)
	}
	if n := strings.Count(e.logs.String(), "caller: retrying after a transient failure"); n != 9 {
		t.Errorf("%d retry lines logged, want 9", n)
	}
	e.assertNoLeak(t, r)
}

// Configuration errors are never retried: one token request, no wait, one
// Error line naming the setting.
func TestConfigErrorNotRetried(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	ts := e.tokenSource(t, func(o *MSALOptions) { o.ClientSecret = secrets.Ready(secrets.New("wrong-secret-value")) })
	var logs syncBuffer
	d, err := New(Options{TargetURL: e.apiURL, Cities: []string{"London"}, Tokens: ts, HTTPClient: e.ca.Client(),
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	r := d.Tick(context.Background())
	if !errors.Is(r.TokenErr, ErrConfig) || r.TokenAttempts != 1 || e.entra.TokenRequests() != 1 || len(clock.Waits()) != 0 {
		t.Errorf("token err %v, attempts %d, requests %d, waits %v", r.TokenErr, r.TokenAttempts, e.entra.TokenRequests(), clock.Waits())
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"ERROR"`) || !strings.Contains(lines[0], `"setting":"CALLER_CLIENT_SECRET"`) ||
		strings.Contains(lines[0], "wrong-secret-value") {
		t.Errorf("log lines = %q", lines)
	}
}

// The API's 401 and 403 are not retried, and the line says which it was.
func TestAPIAuthErrorsNotRetried(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	forbidden, err := e.entra.Mint(entra.MintOptions{ClientID: daemonID}) // no role
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		wants []string
	}{
		{"401", "not-a-jwt", []string{"HTTP 401", "refused the token", "not retried", "CALLER_SCOPE"}},
		{"403", forbidden, []string{"HTTP 403", "lacks the API's app role", "not retried", "CALLER_CLIENT_ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.apiHits.Load()
			d, err := New(Options{TargetURL: e.apiURL, Cities: []string{"London"}, Tokens: staticTokens(tt.token),
				HTTPClient: e.ca.Client(), Now: clock.Now, Sleep: clock.Sleep})
			if err != nil {
				t.Fatal(err)
			}
			r := d.Tick(context.Background())
			if n := e.apiHits.Load() - before; n != 1 || r.Results[0].Attempts != 1 {
				t.Errorf("API called %d times, attempts %d; want 1", n, r.Results[0].Attempts)
			}
			for _, w := range tt.wants {
				if !strings.Contains(r.Lines()[0], w) {
					t.Errorf("line %q lacks %q", r.Lines()[0], w)
				}
			}
		})
	}
	if len(clock.Waits()) != 0 {
		t.Errorf("waited %v", clock.Waits())
	}
}

// A Retry-After that ends past the tick's deadline is not waited for.
func TestRetryAfterPastDeadline(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	plan := newFaultPlan(clock.Now, map[string][]fault{"London": {{status: 429, retryAfter: "120"}}})
	d, err := New(Options{TargetURL: faultyAPI(t, e, plan), Cities: []string{"London"}, Tokens: e.tokenSource(t, nil),
		HTTPClient: e.ca.Client(), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := d.Tick(ctx)
	if plan.count("London") != 1 || len(clock.Waits()) != 0 || !strings.Contains(r.Lines()[0], "would pass the tick's deadline") {
		t.Errorf("requests %d, waits %v, line %q", plan.count("London"), clock.Waits(), r.Lines()[0])
	}
}

// The secret still being resolved from Key Vault is transient: the token is
// retried and arrives once the secret does.
func TestSecretNotReadyIsRetried(t *testing.T) {
	e := newEnv(t)
	cell := secrets.NewCell()
	ts := e.tokenSource(t, func(o *MSALOptions) { o.ClientSecret = cell })
	var waits atomic.Int32
	d, err := New(Options{TargetURL: e.apiURL, Cities: []string{"London"}, Tokens: ts, HTTPClient: e.ca.Client(),
		Sleep: func(ctx context.Context, _ time.Duration) error {
			if waits.Add(1) == 2 {
				cell.Set(secrets.New(daemonSecret))
			}
			return ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	r := d.Tick(context.Background())
	if r.TokenErr != nil || r.TokenAttempts != 3 || r.Succeeded() != 1 {
		t.Errorf("token %v after %d attempts; lines %q", r.TokenErr, r.TokenAttempts, r.Lines())
	}
}

// Concurrent Token calls share one request to the authority.
func TestConcurrentTokenCallsShareOneRequest(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var inFlight sync.Once
	arrived := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up, _ := url.Parse(e.entra.URL())
	front := "https://" + ln.Addr().String()
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.Out.Header.Del("Accept-Encoding") },
		Transport: e.ca.Client().Transport,
		ModifyResponse: func(res *http.Response) error {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			b = []byte(strings.ReplaceAll(string(b), e.entra.URL(), front))
			res.Body, res.ContentLength = io.NopCloser(strings.NewReader(string(b))), int64(len(b))
			res.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			inFlight.Do(func() { close(arrived) })
			<-release
		}
		proxy.ServeHTTP(w, r)
	}), TLSConfig: e.ca.ServerConfig()}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()

	ts := e.tokenSource(t, func(o *MSALOptions) { o.AuthorityHost = front; o.HTTPClient = e.ca.Client() })
	const callers = 5
	errs := make(chan error, callers)
	go func() { _, err := ts.Token(context.Background()); errs <- err }()
	<-arrived // the first acquisition is at the authority, held there
	for range callers - 1 {
		go func() { _, err := ts.Token(context.Background()); errs <- err }()
	}
	// Let the other callers reach Token while the first request is held; a
	// caller arriving later is served from MSAL's cache, so the count below
	// cannot be wrong in the passing direction.
	time.Sleep(100 * time.Millisecond)
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("Token: %v", err)
		}
	}
	if n := e.entra.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d for %d concurrent callers, want 1", n, callers)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"seconds", "7", 7 * time.Second, true},
		{"zero", "0", 0, true},
		{"http date ahead", "Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second, true},
		{"http date past", "Sat, 01 Mar 2025 11:00:00 GMT", 0, true},
		{"huge seconds capped past the limit", "99999999999", maxRetryAfter + time.Second, true},
		{"negative", "-1", 0, false},
		{"garbage", "soon", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestBackoffFullJitter(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	tests := []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0, 0},
		{1, 0.999, 499500 * time.Microsecond},
		{2, 0.5, 500 * time.Millisecond},
		{5, 0.5, 4 * time.Second},
		{6, 0.5, 4 * time.Second}, // ceiling capped at MaxDelay 8 s
		{60, 0.5, 4 * time.Second},
		{1, 1.5, 0}, // a bad draw waits nothing rather than too long
	}
	for _, tt := range tests {
		if got := p.backoff(tt.n, tt.r); got != tt.want {
			t.Errorf("backoff(%d, %v) = %v, want %v", tt.n, tt.r, got, tt.want)
		}
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"reset", &url.Error{Op: "Get", URL: "u", Err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}}, true},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"cut-off reply", io.ErrUnexpectedEOF, true},
		{"certificate", &url.Error{Op: "Get", URL: "u", Err: &tls.CertificateVerificationError{Err: errors.New("x")}}, false},
		{"plain error", errors.New("issuer does not match"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := transient(tt.err); got != tt.want {
			t.Errorf("%s: transient = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "0", "-1", "Sat, 01 Mar 2025 12:00:30 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "99999999999999999999", " 3 "} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now)
		if d < 0 || (!ok && d != 0) {
			t.Errorf("parseRetryAfter(%q) = %v, %v", v, d, ok)
		}
	})
}

// A 200 from the authority whose JSON does not decode makes MSAL quote the
// whole reply — access token included — in its error text. None of that text
// may reach the report, the logs or the error.
func TestMalformedTokenResponseNeverQuoted(t *testing.T) {
	e := newEnv(t)
	const canary = "eyJhbGciOiJSUzI1NiJ9.CANARY-ACCESS-TOKEN-PAYLOAD.c2ln"
	up, err := url.Parse(e.entra.URL())
	if err != nil {
		t.Fatal(err)
	}
	var front string
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.Out.Header.Del("Accept-Encoding") },
		Transport: e.ca.Client().Transport,
		ModifyResponse: func(res *http.Response) error {
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				return err
			}
			b = []byte(strings.ReplaceAll(string(b), e.entra.URL(), front))
			res.Body = io.NopCloser(strings.NewReader(string(b)))
			res.ContentLength = int64(len(b))
			res.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	}
	srv, base, err := e.ca.Listen("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			// Cut off mid-reply: not valid JSON.
			_, _ = io.WriteString(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"`+canary+`"`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	front = base

	ts := e.tokenSource(t, func(o *MSALOptions) { o.AuthorityHost = front })
	d, err := New(Options{TargetURL: e.apiURL, Cities: []string{"London"}, Tokens: ts, HTTPClient: e.ca.Client(),
		Logger: e.logger, Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	r := d.Tick(context.Background())
	if r.TokenErr == nil {
		t.Fatal("a malformed token response gave a token")
	}
	summary, _ := json.Marshal(r.Summary())
	out := r.TokenErr.Error() + strings.Join(r.Lines(), "\n") + string(summary) + e.logs.String()
	if strings.Contains(out, "CANARY") || strings.Contains(out, "eyJ") {
		t.Errorf("the authority's reply leaked:\n%s", out)
	}
	if !strings.Contains(r.TokenErr.Error(), "not a valid token response") {
		t.Errorf("TokenErr = %v, want it to say the reply was not a valid token response", r.TokenErr)
	}
}
