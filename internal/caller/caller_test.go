package caller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/weatherfunc/handler/internal/devstack/entra"
	"github.com/weatherfunc/handler/internal/devstack/tlsca"
	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/secrets"
	"github.com/weatherfunc/handler/internal/testutil"
)

const (
	tenantID     = "8a7f1e2d-3c4b-4a5e-9f60-718293a4b5c6"
	apiClientID  = "0f1e2d3c-4b5a-4697-8877-665544332211"
	daemonID     = "11111111-2222-4333-8444-555555555555"
	daemonSecret = "Zx8Q~daemon.secret-value_0123456789"
	role         = "access_as_application"
)

// londonJSON is the API's documented reply shape (our JSON, not
// OpenWeatherMap's), for the recorded London observation.
const londonJSON = `{"city":"London","country":"GB","coordinates":{"lat":51.5085,"lon":-0.1257},` +
	`"observed_at":"2020-06-09T10:52:22Z","units":"metric",` +
	`"temperature":{"current":11.6,"feels_like":9.8,"min":10,"max":13},"humidity":87,"pressure":1012,` +
	`"wind":{"speed":4.1,"deg":250},"clouds":90,"visibility":10000,` +
	`"conditions":[{"id":500,"main":"Rain","description":"light rain","icon":"10d"}],` +
	`"sunrise":"2020-06-09T03:43:00Z","sunset":"2020-06-09T20:16:00Z","timezone":3600}`

type syncBuffer = testutil.SyncBuffer

// loopbackOnly is a transport that refuses every host but 127.0.0.1 and
// counts the refusals: MSAL behind it can reach the stand-in and nothing else
// (case C09: no call to login.microsoftonline.com).
type loopbackOnly struct {
	next    http.RoundTripper
	mu      sync.Mutex
	refused []string
	paths   []string
}

func (l *loopbackOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.URL.Hostname() != "127.0.0.1" {
		l.refused = append(l.refused, r.URL.Host)
		return nil, fmt.Errorf("test transport: refused host %s", r.URL.Host)
	}
	l.paths = append(l.paths, r.Method+" "+r.URL.Path)
	return l.next.RoundTrip(r)
}

func (l *loopbackOnly) refusals() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.refused...)
}

type env struct {
	ca       *tlsca.CA
	entra    *entra.Server
	guard    *loopbackOnly
	msalHTTP *http.Client
	apiURL   string
	apiHits  atomic.Int64
	tokens   sync.Map // tokens the API saw
	logs     *syncBuffer
	logger   *slog.Logger
}

// newEnv starts the Entra stand-in and a loopback weather API that verifies
// the bearer token against the stand-in's key, issuer, audience and role.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, map[string]entra.Client{daemonID: {Secret: daemonSecret, Roles: []string{role}}})
}

// newEnvWith is newEnv with the given app registrations in the Entra stand-in.
func newEnvWith(t *testing.T, clients map[string]entra.Client) *env {
	t.Helper()
	ca, err := tlsca.New()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ca: ca, logs: &syncBuffer{}}
	e.logger = slog.New(slog.NewJSONHandler(e.logs, nil))
	e.entra, err = entra.Start(ca, entra.Options{
		TenantID: tenantID,
		Clients:  clients,
		API:      entra.API{ClientID: apiClientID},
		Logger:   e.logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.entra.Close() })
	e.guard = &loopbackOnly{next: ca.Client().Transport}
	e.msalHTTP = &http.Client{Transport: e.guard, Timeout: 10 * time.Second}

	srv, base, err := ca.Listen("", http.HandlerFunc(e.serveAPI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	e.apiURL = base + "/api/WeatherHttp"
	return e
}

func (e *env) serveAPI(w http.ResponseWriter, r *http.Request) {
	e.apiHits.Add(1)
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return e.entra.PublicKey(), nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(e.entra.Issuer()), jwt.WithAudience(apiClientID),
		jwt.WithExpirationRequired())
	if !ok || err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="weather", error="invalid_token"`)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"invalid-token","title":"Invalid token","status":401}`))
		return
	}
	e.tokens.Store(raw, true)
	if roles, _ := claims["roles"].([]any); len(roles) != 1 || roles[0] != role {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	problem := func(status int, typ, title string) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"type":%q,"title":%q,"status":%d,"detail":"upstream https://api.openweathermap.org/...appid=KEY"}`, typ, title, status)
	}
	switch city := r.URL.Query().Get("city"); city {
	case "London":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(londonJSON))
	case "Atlantis":
		problem(http.StatusNotFound, "location-not-found", "Location not found")
	case "Paris":
		problem(http.StatusServiceUnavailable, "upstream-unavailable", "Weather service unavailable")
	case "Garbage":
		_, _ = w.Write([]byte("<html>oops</html>"))
	default:
		problem(http.StatusBadRequest, "invalid-params", "Invalid parameters")
	}
}

func (e *env) tokenSource(t *testing.T, mutate func(*MSALOptions)) *MSALTokenSource {
	t.Helper()
	o := MSALOptions{
		AuthorityHost: e.entra.URL(),
		TenantID:      tenantID,
		ClientID:      daemonID,
		Scope:         "api://" + apiClientID + "/.default",
		ClientSecret:  secrets.Ready(secrets.New(daemonSecret)),
		HTTPClient:    e.msalHTTP,
	}
	if mutate != nil {
		mutate(&o)
	}
	ts, err := NewMSALTokenSource(o)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func (e *env) daemon(t *testing.T, ts TokenSource, cities ...string) *Daemon {
	t.Helper()
	d, err := New(Options{TargetURL: e.apiURL, Cities: cities, Tokens: ts, HTTPClient: e.ca.Client(), Logger: e.logger, Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// assertNoLeak checks that neither the client secret nor any token the API
// received appears in the report (lines, summary) or the logs.
func (e *env) assertNoLeak(t *testing.T, r Report) {
	t.Helper()
	summary, err := json.Marshal(r.Summary())
	if err != nil {
		t.Fatal(err)
	}
	haystack := strings.Join(r.Lines(), "\n") + string(summary) + e.logs.String()
	if r.TokenErr != nil {
		haystack += r.TokenErr.Error()
	}
	needles := []string{daemonSecret}
	e.tokens.Range(func(k, _ any) bool { needles = append(needles, k.(string)); return true })
	for _, n := range needles {
		if strings.Contains(haystack, n) {
			t.Errorf("a secret or token leaked into lines/summary/logs")
		}
	}
	if strings.Contains(haystack, "eyJ") {
		t.Errorf("something JWT-shaped in lines/summary/logs")
	}
}

func TestC10_ThreeTicksOneTokenRequest(t *testing.T) {
	e := newEnv(t)
	d := e.daemon(t, e.tokenSource(t, nil), "London")
	for i := range 3 {
		r := d.Tick(context.Background())
		if r.TokenErr != nil || r.Succeeded() != 1 {
			t.Fatalf("tick %d: token %v, lines %q", i, r.TokenErr, r.Lines())
		}
		e.assertNoLeak(t, r)
	}
	if n := e.entra.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d, want 1 for 3 ticks (MSAL's cache must be used)", n)
	}
	if n := e.apiHits.Load(); n != 3 {
		t.Errorf("API calls = %d, want 3", n)
	}
}

func TestC09_NoInstanceDiscoveryForLocalAuthority(t *testing.T) {
	e := newEnv(t)
	ts := e.tokenSource(t, nil)
	if ts.InstanceDiscovery() {
		t.Fatal("instance discovery on for a loopback authority")
	}
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}
	if got := e.guard.refusals(); len(got) != 0 {
		t.Errorf("MSAL tried hosts other than the configured authority: %v", got)
	}
	e.guard.mu.Lock()
	paths := strings.Join(e.guard.paths, "\n")
	e.guard.mu.Unlock()
	for _, want := range []string{
		"GET /" + tenantID + "/v2.0/.well-known/openid-configuration",
		"POST /" + tenantID + "/oauth2/v2.0/token",
	} {
		if !strings.Contains(paths, want) {
			t.Errorf("MSAL did not call %s; calls:\n%s", want, paths)
		}
	}
}

// TestC09_GuardSeesInstanceDiscovery shows that the guard in
// TestC09_NoInstanceDiscoveryForLocalAuthority would notice: with discovery
// left on (MSAL's default), MSAL calls login.microsoftonline.com.
func TestC09_GuardSeesInstanceDiscovery(t *testing.T) {
	e := newEnv(t)
	ts := e.tokenSource(t, nil)
	ts.discovery = true
	if _, err := ts.Token(context.Background()); err == nil {
		t.Fatal("Token succeeded with instance discovery on and the internet refused")
	}
	if got := e.guard.refusals(); len(got) == 0 || got[0] != "login.microsoftonline.com" {
		t.Errorf("refusals = %v, want login.microsoftonline.com", got)
	}
	if n := e.entra.TokenRequests(); n != 0 {
		t.Errorf("token requests = %d", n)
	}
}

func TestC09_InstanceDiscoveryOnlyForMicrosoftClouds(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"", true}, // default: login.microsoftonline.com
		{"https://login.microsoftonline.com", true},
		{"https://login.microsoftonline.com/", true},
		{"https://LOGIN.microsoftonline.us", true},
		{"https://login.partner.microsoftonline.cn", true},
		{"https://127.0.0.1:8443", false},
		{"https://login.contoso.internal", false},
		{"https://login.microsoftonline.com.evil.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			ts, err := NewMSALTokenSource(MSALOptions{AuthorityHost: tt.host, TenantID: tenantID, ClientID: daemonID,
				Scope: "api://x/.default", ClientSecret: secrets.NewCell()})
			if err != nil {
				t.Fatal(err)
			}
			if ts.InstanceDiscovery() != tt.want {
				t.Errorf("InstanceDiscovery() = %v, want %v", ts.InstanceDiscovery(), tt.want)
			}
		})
	}
}

func TestWrongSecretNamesSettingAndCallsNoAPI(t *testing.T) {
	e := newEnv(t)
	ts := e.tokenSource(t, func(o *MSALOptions) { o.ClientSecret = secrets.Ready(secrets.New("wrong-secret-value")) })
	d := e.daemon(t, ts, "London", "Paris")
	r := d.Tick(context.Background())
	if r.TokenErr == nil {
		t.Fatal("no TokenErr")
	}
	if !strings.Contains(r.TokenErr.Error(), "CALLER_CLIENT_SECRET") || !errors.Is(r.TokenErr, ErrConfig) {
		t.Errorf("TokenErr %q does not name CALLER_CLIENT_SECRET as a config error", r.TokenErr)
	}
	var te *TokenError
	if !errors.As(r.TokenErr, &te) || te.Status != 401 || te.Code != "invalid_client" || te.AADSTS != 7000215 || !te.Permanent() {
		t.Errorf("TokenError = %+v", te)
	}
	if n := e.apiHits.Load(); n != 0 {
		t.Errorf("API called %d times without a token", n)
	}
	if r.Failed() != 2 || r.Succeeded() != 0 {
		t.Errorf("failed %d succeeded %d", r.Failed(), r.Succeeded())
	}
	lines := r.Lines()
	for _, l := range lines {
		t.Log(l)
	}
	if len(lines) != 3 || !strings.Contains(lines[0], "CALLER_CLIENT_SECRET") || !strings.Contains(lines[1], "London") || !strings.Contains(lines[1], "no access token") {
		t.Errorf("lines = %q", lines)
	}
	if strings.Contains(strings.Join(lines, "\n"), "wrong-secret-value") || strings.Contains(e.logs.String(), "wrong-secret-value") {
		t.Error("the secret leaked")
	}
	if s := r.Summary(); s["token_ok"] != false || s["failed"] != 2 {
		t.Errorf("summary = %v", s)
	}
	e.assertNoLeak(t, r)
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name    string
		mutate  func(*MSALOptions)
		setting string
		aadsts  int
	}{
		{"unknown client", func(o *MSALOptions) { o.ClientID = "00000000-0000-4000-8000-000000000000" }, "CALLER_CLIENT_ID", 700016},
		{"unknown resource", func(o *MSALOptions) { o.Scope = "api://someone-else/.default" }, "CALLER_SCOPE", 500011},
		{"unknown tenant", func(o *MSALOptions) { o.TenantID = "00000000-0000-4000-8000-00000000dead" }, "AZURE_TENANT_ID", 90002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.tokenSource(t, tt.mutate).Token(context.Background())
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v (%T), want *TokenError", err, err)
			}
			if te.Setting != tt.setting || te.AADSTS != tt.aadsts || !errors.Is(err, ErrConfig) {
				t.Errorf("TokenError = %+v, want setting %s AADSTS%d", te, tt.setting, tt.aadsts)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.setting) || strings.Contains(msg, "\n") || len(msg) > 200 {
				t.Errorf("message %q", msg)
			}
		})
	}
}

// TestTokenErrorFromRecordedBody classifies the recorded AADSTS7000215 body.
func TestTokenErrorFromRecordedBody(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "derived_token_401_AADSTS7000215_invalid_client_secret.body.json"))
	if err != nil {
		t.Fatal(err)
	}
	code, n := parseAuthorityError(body)
	if code != "invalid_client" || n != 7000215 || settingFor(code, n) != "CALLER_CLIENT_SECRET" {
		t.Errorf("got %q %d", code, n)
	}
}

func TestPerCityFailuresInLines(t *testing.T) {
	e := newEnv(t)
	d := e.daemon(t, e.tokenSource(t, nil), "London", "Atlantis", "Paris", "Garbage")
	r := d.Tick(context.Background())
	if r.TokenErr != nil {
		t.Fatal(r.TokenErr)
	}
	lines := r.Lines()
	for _, l := range lines {
		t.Log(l)
	}
	if len(lines) != 4 {
		t.Fatalf("lines = %q", lines)
	}
	tests := []struct {
		name  string
		line  string
		wants []string
	}{
		{"London answered", lines[0], []string{"London, GB", "11.6 °C", "light rain", "HTTP 200", "ms)"}},
		{"404 city", lines[1], []string{"Atlantis", "FAILED", "HTTP 404", "unknown city", "Location not found"}},
		{"503 upstream", lines[2], []string{"Paris", "FAILED", "HTTP 503", "upstream weather service", "upstream-unavailable"}},
		{"malformed 200", lines[3], []string{"Garbage", "FAILED", "malformed reply"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.wants {
				if !strings.Contains(tt.line, w) {
					t.Errorf("line %q lacks %q", tt.line, w)
				}
			}
			if strings.Contains(tt.line, "appid") || strings.Contains(tt.line, "openweathermap") {
				t.Errorf("line %q repeats the problem detail", tt.line)
			}
		})
	}
	if r.Succeeded() != 1 || r.Failed() != 3 {
		t.Errorf("succeeded %d failed %d", r.Succeeded(), r.Failed())
	}
	london := r.Results[0]
	if london.Temperature == nil || *london.Temperature != 11.6 || london.Units != "metric" || london.Country != "GB" ||
		!london.ObservedAt.Equal(time.Date(2020, 6, 9, 10, 52, 22, 0, time.UTC)) {
		t.Errorf("London = %+v", london)
	}
	var ae *APIError
	if !errors.As(r.Results[1].Err, &ae) || ae.Status != 404 || ae.Type != "location-not-found" {
		t.Errorf("Atlantis err = %#v", r.Results[1].Err)
	}
	s := r.Summary()
	if s["cities"] != 4 || s["succeeded"] != 1 || s["failed"] != 3 || s["token_ok"] != true {
		t.Errorf("summary = %v", s)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Errorf("summary is not JSON: %v", err)
	}
	e.assertNoLeak(t, r)
}

func TestAPIRefusesToken(t *testing.T) {
	e := newEnv(t)
	d := e.daemon(t, staticTokens("not-a-jwt"), "London")
	r := d.Tick(context.Background())
	line := r.Lines()[0]
	for _, w := range []string{"HTTP 401", "refused the token", "invalid_token"} {
		if !strings.Contains(line, w) {
			t.Errorf("line %q lacks %q", line, w)
		}
	}
	if strings.Contains(line, "not-a-jwt") || strings.Contains(e.logs.String(), "not-a-jwt") {
		t.Error("token leaked")
	}
}

// noSleep is an Options.Sleep that does not wait.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

type staticTokens string

func (s staticTokens) Token(context.Context) (secrets.Secret, error) {
	return secrets.New(string(s)), nil
}

func TestAPIUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	d, err := New(Options{TargetURL: "http://" + addr + "/api/WeatherHttp", Cities: []string{"London"}, Tokens: staticTokens("tok"), Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	r := d.Tick(context.Background())
	if c := r.Results[0]; c.Status != 0 || c.Err == nil || !strings.Contains(r.Lines()[0], "weather API unreachable") {
		t.Errorf("result %+v, lines %q", c, r.Lines())
	}
}

func TestSecretArrivesLate(t *testing.T) {
	e := newEnv(t)
	cell := secrets.NewCell()
	ts := e.tokenSource(t, func(o *MSALOptions) { o.ClientSecret = cell })
	_, err := ts.Token(context.Background())
	if !errors.Is(err, secrets.ErrNotReady) || !strings.Contains(err.Error(), "CALLER_CLIENT_SECRET") {
		t.Errorf("err = %v, want ErrNotReady naming CALLER_CLIENT_SECRET", err)
	}
	if n := e.entra.TokenRequests(); n != 0 {
		t.Errorf("token requests before the secret: %d", n)
	}
	cell.Set(secrets.New(daemonSecret))
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatalf("after Set: %v", err)
	}
	// A rotated secret rebuilds the client (and its cache): the next call
	// goes to the authority with the new value.
	cell.Set(secrets.New("rotated-but-not-registered"))
	var te *TokenError
	if _, err := ts.Token(context.Background()); !errors.As(err, &te) || te.Setting != "CALLER_CLIENT_SECRET" {
		t.Errorf("after rotation: %v", err)
	}
	if n := e.entra.TokenRequests(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}

func TestC08_ScopeWithoutDefaultRefused(t *testing.T) {
	for _, scope := range []string{"", "api://" + apiClientID, "User.Read", "/.default", "api://a/.default api://b/.default"} {
		t.Run(scope, func(t *testing.T) {
			_, err := NewMSALTokenSource(MSALOptions{TenantID: tenantID, ClientID: daemonID, Scope: scope, ClientSecret: secrets.NewCell()})
			if err == nil || !strings.Contains(err.Error(), "CALLER_SCOPE") {
				t.Errorf("err = %v, want one naming CALLER_SCOPE", err)
			}
		})
	}
}

func TestNewMSALTokenSourceValidates(t *testing.T) {
	ok := MSALOptions{TenantID: tenantID, ClientID: daemonID, Scope: "api://x/.default", ClientSecret: secrets.NewCell()}
	tests := []struct {
		name    string
		mutate  func(*MSALOptions)
		setting string
	}{
		{"http authority", func(o *MSALOptions) { o.AuthorityHost = "http://127.0.0.1:1" }, "AZURE_AUTHORITY_HOST"},
		{"authority with path", func(o *MSALOptions) { o.AuthorityHost = "https://login.microsoftonline.com/tenant" }, "AZURE_AUTHORITY_HOST"},
		{"no tenant", func(o *MSALOptions) { o.TenantID = "" }, "AZURE_TENANT_ID"},
		{"tenant with slash", func(o *MSALOptions) { o.TenantID = "a/b" }, "AZURE_TENANT_ID"},
		{"no client", func(o *MSALOptions) { o.ClientID = "" }, "CALLER_CLIENT_ID"},
		{"no secret cell", func(o *MSALOptions) { o.ClientSecret = nil }, "CALLER_CLIENT_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mutate(&o)
			if _, err := NewMSALTokenSource(o); err == nil || !strings.Contains(err.Error(), tt.setting) {
				t.Errorf("err = %v, want one naming %s", err, tt.setting)
			}
		})
	}
	if _, err := NewMSALTokenSource(ok); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"relative target", Options{TargetURL: "/api/WeatherHttp", Cities: []string{"London"}, Tokens: staticTokens("t")}, "CALLER_TARGET_URL"},
		{"ftp target", Options{TargetURL: "ftp://h/x", Cities: []string{"London"}, Tokens: staticTokens("t")}, "CALLER_TARGET_URL"},
		{"http target off loopback (the token would travel in the clear)", Options{TargetURL: "http://myapp.azurewebsites.net/api/WeatherHttp", Cities: []string{"London"}, Tokens: staticTokens("t")}, "CALLER_TARGET_URL must use https"},
		{"target with credentials", Options{TargetURL: "https://u:p@h/api/WeatherHttp", Cities: []string{"London"}, Tokens: staticTokens("t")}, "CALLER_TARGET_URL"},
		{"no cities", Options{TargetURL: "https://h/api/WeatherHttp", Cities: []string{" ", ""}, Tokens: staticTokens("t")}, "CALLER_CITIES"},
		{"no tokens", Options{TargetURL: "https://h/api/WeatherHttp", Cities: []string{"London"}}, "token source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %s", err, tt.want)
			}
		})
	}
}

// stepClock advances by step on every reading.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func TestInjectedClockAndContextLogger(t *testing.T) {
	e := newEnv(t)
	clock := &stepClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), step: 10 * time.Millisecond}
	d, err := New(Options{TargetURL: e.apiURL + "?units=metric", Cities: []string{"London", "Atlantis"}, Tokens: e.tokenSource(t, nil),
		HTTPClient: e.ca.Client(), Now: clock.Now, Concurrency: 1, Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	ctx := logctx.With(context.Background(), slog.New(slog.NewJSONHandler(&buf, nil)).With("invocation_id", "inv-1"))
	r := d.Tick(ctx)
	for _, c := range r.Results {
		if c.Latency != 10*time.Millisecond {
			t.Errorf("%s latency %v, want one clock step", c.City, c.Latency)
		}
	}
	// Readings: tick start, token done, and per city its start and the
	// request's start and end; then the tick's end.
	if r.Duration != 80*time.Millisecond {
		t.Errorf("duration %v, want 8 clock steps", r.Duration)
	}
	if s := r.Summary(); s["duration_ms"] != int64(80) || s["token_ms"] != int64(10) {
		t.Errorf("duration_ms = %v", s["duration_ms"])
	}
	logs := buf.String()
	if strings.Count(logs, `"invocation_id":"inv-1"`) != 2 || !strings.Contains(logs, `"city":"Atlantis"`) {
		t.Errorf("context logger not used:\n%s", logs)
	}
}

func TestConcurrencyKeepsOrder(t *testing.T) {
	e := newEnv(t)
	cities := []string{"London", "Atlantis", "Paris", "London", "Atlantis", "Paris", "London"}
	d, err := New(Options{TargetURL: e.apiURL, Cities: cities, Tokens: e.tokenSource(t, nil), HTTPClient: e.ca.Client(), Concurrency: 3, Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	r := d.Tick(context.Background())
	for i, c := range r.Results {
		if c.City != cities[i] {
			t.Errorf("result %d is %s, want %s", i, c.City, cities[i])
		}
	}
	if r.Succeeded() != 3 {
		t.Errorf("succeeded %d", r.Succeeded())
	}
}

func TestParseObservation(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
		check   func(t *testing.T, o observation)
	}{
		{name: "documented shape", body: londonJSON, check: func(t *testing.T, o observation) {
			if o.City != "London" || o.Conditions != "light rain" || o.Temperature == nil || *o.Temperature != 11.6 {
				t.Errorf("%+v", o)
			}
		}},
		{name: "no temperature", body: `{"city":"X"}`, check: func(t *testing.T, o observation) {
			if o.Temperature != nil {
				t.Error("temperature set")
			}
		}},
		{name: "control characters stripped", body: `{"city":"Lon\u0000don\n","conditions":[{"description":"a\u202eb"}]}`, check: func(t *testing.T, o observation) {
			if o.City != "London" || o.Conditions != "ab" {
				t.Errorf("%q %q", o.City, o.Conditions)
			}
		}},
		{name: "unix observed_at", body: `{"observed_at":1591699942}`, check: func(t *testing.T, o observation) {
			if o.ObservedAt.Unix() != 1591699942 {
				t.Errorf("%v", o.ObservedAt)
			}
		}},
		{name: "bad observed_at ignored", body: `{"observed_at":"yesterday"}`},
		{name: "not JSON", body: `<html>`, wantErr: true},
		{name: "array", body: `[1]`, wantErr: true},
		{name: "temperature of wrong type", body: `{"temperature":{"current":"hot"}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseObservation([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func FuzzParseObservation(f *testing.F) {
	f.Add([]byte(londonJSON))
	f.Add([]byte(`{"city":"\u0000","temperature":null,"conditions":[{}],"observed_at":12}`))
	f.Add([]byte(`{"temperature":{"current":1e308},"units":"imperial"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseObservation(body)
		if err != nil {
			return
		}
		line := CityResult{City: o.City, Country: o.Country, Temperature: o.Temperature, Units: o.Units, Conditions: o.Conditions, Status: 200}.line()
		if strings.ContainsAny(line, "\n\r\x00") {
			t.Errorf("line %q breaks a log line", line)
		}
	})
}

func FuzzParseAPIError(f *testing.F) {
	f.Add(404, `Bearer realm="x"`, []byte(`{"type":"location-not-found","title":"Location not found","status":404}`))
	f.Add(401, `Bearer realm="weather", error="invalid_token", error_description="expired"`, []byte(``))
	f.Add(503, ``, []byte(`{"title":"a\nb"}`))
	f.Fuzz(func(t *testing.T, status int, www string, body []byte) {
		msg := parseAPIError(status, www, body).Error()
		if strings.ContainsAny(msg, "\n\r\x00") {
			t.Errorf("message %q breaks a log line", msg)
		}
	})
}

func FuzzParseAuthorityError(f *testing.F) {
	body, err := os.ReadFile(filepath.Join("testdata", "derived_token_401_AADSTS7000215_invalid_client_secret.body.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add([]byte(`{"error":"x\ny","error_codes":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code, n := parseAuthorityError(body)
		msg := (&TokenError{Status: 400, Code: code, AADSTS: n, Setting: settingFor(code, n)}).Error()
		if strings.ContainsAny(msg, "\n\r\x00\"") || len(msg) > 300 {
			t.Errorf("message %q", msg)
		}
	})
}
