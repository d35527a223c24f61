package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/tlsca"
	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/testutil"
)

type syncBuffer = testutil.SyncBuffer

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// The routes the binary serves must match the function folders and host.json:
// a function folder without a route (or a route without a folder) is a
// deployment that silently 404s.
func TestRoutesMatchFunctionFolders(t *testing.T) {
	hostCfg, fns, err := funcs.LoadApp(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if hostCfg.CustomHandler.DefaultExecutablePath != "handler" {
		t.Errorf("host.json defaultExecutablePath = %q, want handler", hostCfg.CustomHandler.DefaultExecutablePath)
	}
	if !hostCfg.CustomHandler.EnableForwardingHTTPRequest {
		t.Error("host.json enableForwardingHttpRequest is not true")
	}
	var names []string
	for _, f := range fns {
		names = append(names, f.Name)
		var trigger funcs.Binding
		for _, b := range f.Bindings {
			if b.Direction == "in" {
				trigger = b
			}
		}
		switch f.Name {
		case fnWeather:
			if trigger.Type != "httpTrigger" || trigger.Name != "req" || trigger.AuthLevel != "anonymous" {
				t.Errorf("%s trigger = %+v, want anonymous httpTrigger named req", f.Name, trigger)
			}
		case fnTimer:
			if trigger.Type != "timerTrigger" || trigger.Name != "timer" {
				t.Errorf("%s trigger = %+v, want timerTrigger named timer (routes.go decodes Data.timer)", f.Name, trigger)
			}
		default:
			t.Errorf("function folder %s has no route in routes.go", f.Name)
		}
	}
	slices.Sort(names)
	if want := []string{fnTimer, fnWeather}; !slices.Equal(names, want) {
		t.Errorf("function folders = %v, want %v", names, want)
	}
}

// Case C13: Key Vault and the JWKS endpoint take 40 s (here: forever) to
// answer at start; GET / must answer at once, and the handler must not exit.
func TestC13ReadinessBeforeSlowDependencies(t *testing.T) {
	release := make(chan struct{})
	hit := make(chan struct{})
	var once sync.Once
	slow, slowURL, err := testCA.Listen("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(hit) })
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	defer close(release)

	env := goodEnv()
	env["FUNCTIONS_CUSTOMHANDLER_PORT"] = freePort(t)
	env["AZURE_AUTHORITY_HOST"] = slowURL
	env["WEATHER_API_KEY"] = "@Microsoft.KeyVault(SecretUri=" + slowURL + "/secrets/weather-api-key/)"
	env["CALLER_CLIENT_SECRET"] = "@Microsoft.KeyVault(SecretUri=" + slowURL + "/secrets/caller-secret/)"

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stdout, stderr syncBuffer
	go func() { done <- run(ctx, nil, getenvFrom(env), &stdout, &stderr) }()

	select {
	case <-hit: // the slow dependency has been called and is holding the request
	case err := <-done:
		t.Fatalf("run returned before any dependency was called: %v", err)
	}
	resp, err := pollReady("http://127.0.0.1:" + env["FUNCTIONS_CUSTOMHANDLER_PORT"] + "/")
	if err != nil {
		t.Fatalf("readiness: %v (stderr: %s)", err, stderr.String())
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET / = %d, want 200", resp.StatusCode)
	}
	select {
	case err := <-done:
		t.Fatalf("handler exited while a dependency was slow: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
}

// The outbound client never follows a redirect: Go would keep the
// Authorization header on a redirect to the same host name on another port
// or over plain http, carrying the daemon's token to whatever answers there.
func TestOutboundClientDoesNotFollowRedirects(t *testing.T) {
	var leaked sync.Once
	got := make(chan string, 1)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Do(func() { got <- r.Header.Get("Authorization") })
	}))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()

	req, _ := http.NewRequest(http.MethodGet, redirect.URL+"/api/WeatherHttp", nil)
	req.Header.Set("Authorization", "Bearer canary-token")
	resp, err := newOutboundClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("status = %d, want the 307 itself", resp.StatusCode)
	}
	select {
	case h := <-got:
		t.Errorf("redirect followed; the other server got Authorization %q", h)
	default:
	}
}

// The host matches function routes case-insensitively and forwards the path
// as sent; the handler must serve /api/weatherhttp as /api/WeatherHttp.
func TestRoutesCaseInsensitive(t *testing.T) {
	entra, entraURL, err := testCA.Listen("", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	defer entra.Close()
	env := goodEnv()
	env["AZURE_AUTHORITY_HOST"] = entraURL
	env["WEATHER_API_KEY"] = "plain-test-value"
	env["CALLER_CLIENT_SECRET"] = "plain-test-value"
	env["CALLER_TARGET_URL"] = entraURL + "/api/WeatherHttp" // nothing leaves loopback
	s, err := parseSettings(getenvFrom(env))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	h, err := wire(ctx, s, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ method, path string }{
		{http.MethodGet, "/api/WeatherHttp"},
		{http.MethodGet, "/api/weatherhttp"},
		{http.MethodGet, "/API/WEATHERHTTP"},
		{http.MethodPost, "/callertimer"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			body := strings.NewReader(`{"Data":{"timer":{"IsPastDue":false}},"Metadata":{}}`)
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path+"?city=London", body))
			if rec.Code == http.StatusNotFound || rec.Code == http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want it routed", tt.method, tt.path, rec.Code)
			}
		})
	}
}

// pollReady polls like the host: every 25 ms, up to 30 s.
func pollReady(url string) (*http.Response, error) {
	var err error
	for range 1200 {
		var resp *http.Response
		resp, err = http.Get(url)
		if err == nil {
			resp.Body.Close()
			return resp, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return nil, err
}

// A fatal misconfiguration makes run return an error (main exits 1) with one
// line per problem, naming settings and never values.
func TestRunMisconfiguration(t *testing.T) {
	env := goodEnv()
	env["AZURE_TENANT_ID"] = "not-a-guid-value"
	env["CALLER_SCOPE"] = "User.Read"
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), nil, getenvFrom(env), &stdout, &stderr)
	if err == nil {
		t.Fatal("run accepted a bad configuration")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 {
		t.Errorf("want 2 problem lines, got %q", lines)
	}
	for _, v := range []string{"not-a-guid-value", "User.Read"} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("error shows a value: %v", err)
		}
	}
}

// testCA is trusted by this test process the way the handler trusts the
// offline stack's CA in production wiring: through SSL_CERT_FILE, set before
// anything loads the system roots.
var testCA *tlsca.CA

func TestMain(m *testing.M) {
	// The handler under test must not pick up a managed identity from the
	// machine it runs on.
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_CLIENT_ID"} {
		os.Unsetenv(k)
	}
	ca, err := tlsca.New()
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "handler-test-")
	if err != nil {
		panic(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := ca.WriteCertFile(path); err != nil {
		panic(err)
	}
	os.Setenv("SSL_CERT_FILE", path)
	testCA = ca
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
