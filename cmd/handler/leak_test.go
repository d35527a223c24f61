package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/entra"
	"github.com/weatherfunc/handler/internal/devstack/identity"
	"github.com/weatherfunc/handler/internal/devstack/keyvault"
	"github.com/weatherfunc/handler/internal/devstack/owm"
	"github.com/weatherfunc/handler/internal/logctx"
)

// canary makes a distinctive secret value: if it shows up anywhere, it leaked.
func canary(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "canary-" + what + "-" + hex.EncodeToString(b)
}

// canaryCert is a certificate and key as PEM, the key's lines being canaries.
func canaryCert(t *testing.T) (*x509.Certificate, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "leak-test daemon"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	return cert, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// leakRig is every dependency of the handler as a loopback stand-in, with a
// canary in every secret place: the vault's values, the daemon's secret and
// certificate key, the identity header, and every token anyone issues.
type leakRig struct {
	tenant, api, secretClient, certClient, fedClient, strangerClient, miClient, miPrincipal string

	entra    *entra.Server
	mi       *identity.Server
	miURL    string
	miHeader string
	vaultURL string

	owmOK, owmWrongKey, owmHang, owmClosed string

	mu       sync.Mutex
	canaries []string
}

func (r *leakRig) add(vs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.canaries = append(r.canaries, vs...)
}

func (r *leakRig) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(append([]string(nil), r.canaries...), r.entra.IssuedTokens()...)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newLeakRig(t *testing.T) *leakRig {
	t.Helper()
	r := &leakRig{
		tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47", api: "11111111-2222-3333-4444-555555555555",
		secretClient: "66666666-7777-8888-9999-000000000001", certClient: "66666666-7777-8888-9999-000000000002",
		fedClient: "66666666-7777-8888-9999-000000000003", strangerClient: "66666666-7777-8888-9999-000000000004",
		miClient: "a0a0a0a0-b1b1-4c2c-8d3d-e4e4e4e4e4e4", miPrincipal: "f5f5f5f5-0606-4717-8828-393939393939",
		miHeader: canary(t, "identity-header"),
	}
	weatherKey, callerSecret, wrongSecret := canary(t, "weather-key"), canary(t, "caller-secret"), canary(t, "wrong-secret")
	registered, registeredPEM := canaryCert(t)
	_, unregisteredPEM := canaryCert(t)
	_, otherPEM := canaryCert(t)
	// A key that belongs to none of the certificates next to it.
	mismatched := registeredPEM[:strings.Index(registeredPEM, "-----BEGIN CERTIFICATE")] + otherPEM[strings.Index(otherPEM, "-----BEGIN CERTIFICATE"):]
	r.add(weatherKey, callerSecret, wrongSecret, registeredPEM, unregisteredPEM, mismatched, r.miHeader)

	var err error
	r.entra, err = entra.Start(testCA, entra.Options{
		TenantID: r.tenant,
		API:      entra.API{ClientID: r.api},
		Clients: map[string]entra.Client{
			r.secretClient:   {Secret: callerSecret, Roles: []string{"access_as_application"}},
			r.certClient:     {Certificates: []*x509.Certificate{registered}, Roles: []string{"access_as_application"}},
			r.fedClient:      {FederatedCredentials: []entra.FederatedCredential{{Subject: r.miPrincipal}}, Roles: []string{"access_as_application"}},
			r.strangerClient: {FederatedCredentials: []entra.FederatedCredential{{Subject: "00000000-0000-4000-8000-00000000beef"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.entra.Close() })
	// One request from this process first, so the race detector sees the
	// stand-in's URL written before its handlers read it.
	if res, err := testCA.Client().Get(r.entra.URL() + "/" + r.tenant + "/v2.0/.well-known/openid-configuration"); err == nil {
		res.Body.Close()
	}

	r.mi = identity.New(identity.Options{
		Header: r.miHeader, ClientIDs: []string{r.miClient}, PrincipalID: r.miPrincipal,
		Mint: func(req identity.TokenRequest) (string, error) {
			if req.Resource == entra.TokenExchangeAudience {
				return r.entra.MintFederated(req.PrincipalID, req.ClientID, req.ExpiresOn)
			}
			tok := identity.RandomToken()
			r.add(tok)
			return tok, nil
		},
	})
	miSrv := httptest.NewServer(r.mi.Handler())
	t.Cleanup(miSrv.Close)
	r.miURL = miSrv.URL + "/msi/token"

	kv := keyvault.New(keyvault.Options{
		TenantID: r.tenant,
		Secrets: map[string]string{
			"weather-api-key": weatherKey, "caller-client-secret": callerSecret, "wrong-client-secret": wrongSecret,
			"caller-certificate": registeredPEM, "unregistered-certificate": unregisteredPEM, "mismatched-certificate": mismatched,
		},
		ContentTypes: map[string]string{"caller-certificate": "application/x-pem-file", "unregistered-certificate": "application/x-pem-file",
			"mismatched-certificate": "application/x-pem-file"},
		Authorize: func(tok string) bool { return r.mi.Valid(tok, keyvault.Resource) },
	})
	// Secrets named kv403-…, kv404-…, kv429-… get Key Vault's recorded
	// error answers once the token is valid.
	failures := map[string]struct {
		status int
		body   []byte
	}{
		"kv403": {http.StatusForbidden, readFile(t, "403_ForbiddenByRbac_getSecret.body.json")},
		"kv404": {http.StatusNotFound, readFile(t, "404_SecretNotFound_get_version.body.json")},
		"kv429": {http.StatusTooManyRequests, readFile(t, "429_Throttled.body.json")},
	}
	vault, vaultURL, err := testCA.Listen("", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		name := strings.TrimPrefix(req.URL.Path, "/secrets/")
		if f, found := failures[strings.SplitN(name, "-", 2)[0]]; found && ok && r.mi.Valid(tok, keyvault.Resource) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(f.status)
			_, _ = w.Write(f.body)
			return
		}
		kv.Handler().ServeHTTP(w, req)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vault.Close() })
	r.vaultURL = vaultURL
	kv.SetVaultURL(vaultURL)

	serve := func(h http.Handler) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	r.owmOK = serve(owm.New(owm.Options{APIKey: weatherKey}).Handler())
	r.owmWrongKey = serve(owm.New(owm.Options{APIKey: canary(t, "other-owm-key")}).Handler())
	r.owmHang = serve(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { <-req.Context().Done() }))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.owmClosed = "http://" + l.Addr().String()
	l.Close()
	return r
}

func (r *leakRig) ref(name string) string {
	return "@Microsoft.KeyVault(SecretUri=" + r.vaultURL + "/secrets/" + name + "/)"
}

// exchange is one request and its whole answer, as text.
func exchange(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, fmt.Sprint(resp.Header) + "\n" + string(b)
}

// TestNoSecretLeaksOnAnyFailurePath runs the wired handler against
// stand-ins, once per failure path of issue 4 item 6, with canary values in
// every secret place, and asserts that no canary (nor any token issued)
// appears on stdout, stderr, in any response body or header of WeatherHttp
// and CallerTimer, or in the timer's Logs (part of its body).
func TestNoSecretLeaksOnAnyFailurePath(t *testing.T) {
	r := newLeakRig(t)
	// azidentity reads the managed-identity endpoint from the process
	// environment (its own convention); one identity serves every case.
	t.Setenv("IDENTITY_ENDPOINT", r.miURL)
	t.Setenv("IDENTITY_HEADER", r.miHeader)

	tests := []struct {
		name       string
		env        map[string]string
		apiStatus  int    // WeatherHttp's answer, 0 = any 5xx
		tickStatus int    // CallerTimer's reply status
		want       string // proof the failure happened, in stdout+stderr+replies
	}{
		{name: "upstream connection refused", env: map[string]string{"WEATHER_API_BASE_URL": r.owmClosed}, tickStatus: 500, want: "connection refused"},
		{name: "upstream timeout", env: map[string]string{"WEATHER_API_BASE_URL": r.owmHang}, apiStatus: 504, tickStatus: 500, want: "upstream-timeout"},
		{name: "upstream 401 (key rotated at the provider)", env: map[string]string{"WEATHER_API_BASE_URL": r.owmWrongKey}, tickStatus: 500, want: "refresh requested"},
		{name: "Key Vault 403 ForbiddenByRbac", env: map[string]string{"WEATHER_API_KEY": r.ref("kv403-weather"), "CALLER_CLIENT_SECRET": r.ref("kv403-caller")},
			apiStatus: 503, tickStatus: 500, want: "ForbiddenByRbac"},
		{name: "Key Vault 404 SecretNotFound", env: map[string]string{"WEATHER_API_KEY": r.ref("kv404-weather"), "CALLER_CLIENT_SECRET": r.ref("kv404-caller")},
			apiStatus: 503, tickStatus: 500, want: "SecretNotFound"},
		{name: "Key Vault 429 Throttled", env: map[string]string{"WEATHER_API_KEY": r.ref("kv429-weather"), "CALLER_CLIENT_SECRET": r.ref("kv429-caller")},
			apiStatus: 503, tickStatus: 500, want: "Throttled"},
		{name: "token endpoint 401 (wrong client secret)", env: map[string]string{"CALLER_CLIENT_SECRET": r.ref("wrong-client-secret")},
			apiStatus: 200, tickStatus: 500, want: "AADSTS7000215"},
		{name: "bad certificate (key of another certificate)", env: map[string]string{"CALLER_CREDENTIAL": "certificate", "CALLER_CLIENT_ID": r.certClient,
			"CALLER_CLIENT_SECRET": "", "CALLER_CLIENT_CERTIFICATE": r.ref("mismatched-certificate")}, apiStatus: 200, tickStatus: 500, want: "belongs to none of its certificates"},
		{name: "certificate not registered on the app (AADSTS700027)", env: map[string]string{"CALLER_CREDENTIAL": "certificate", "CALLER_CLIENT_ID": r.certClient,
			"CALLER_CLIENT_SECRET": "", "CALLER_CLIENT_CERTIFICATE": r.ref("unregistered-certificate")}, apiStatus: 200, tickStatus: 500, want: "AADSTS700027"},
		{name: "managed identity without a matching federated credential (AADSTS70021)", env: map[string]string{"CALLER_CREDENTIAL": "managed-identity",
			"CALLER_CLIENT_ID": r.strangerClient, "CALLER_CLIENT_SECRET": ""}, apiStatus: 200, tickStatus: 500, want: "AADSTS70021"},
		// The paths that work, as a control: the same greps find nothing.
		{name: "control: secret", apiStatus: 200, tickStatus: 200, want: "London"},
		{name: "control: certificate", env: map[string]string{"CALLER_CREDENTIAL": "certificate", "CALLER_CLIENT_ID": r.certClient,
			"CALLER_CLIENT_SECRET": "", "CALLER_CLIENT_CERTIFICATE": r.ref("caller-certificate")}, apiStatus: 200, tickStatus: 200, want: "London"},
		{name: "control: managed identity", env: map[string]string{"CALLER_CREDENTIAL": "managed-identity", "CALLER_CLIENT_ID": r.fedClient,
			"CALLER_CLIENT_SECRET": ""}, apiStatus: 200, tickStatus: 200, want: "London"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The environment is set by the parent and only read here.
			t.Parallel()
			var stdout, stderr syncBuffer
			var h atomic.Pointer[http.Handler]
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { (*h.Load()).ServeHTTP(w, req) }))
			defer front.Close()

			env := goodEnv()
			for k, v := range map[string]string{
				"AZURE_TENANT_ID": r.tenant, "API_CLIENT_ID": r.api, "AZURE_AUTHORITY_HOST": r.entra.URL(),
				"WEATHER_API_BASE_URL": r.owmOK, "WEATHER_API_KEY": r.ref("weather-api-key"),
				"CALLER_CLIENT_ID": r.secretClient, "CALLER_CREDENTIAL": "secret", "CALLER_CLIENT_SECRET": r.ref("caller-client-secret"),
				"CALLER_TARGET_URL": front.URL + "/api/WeatherHttp", "CALLER_CITIES": "London",
				"IDENTITY_ENDPOINT": r.miURL, "IDENTITY_HEADER": r.miHeader, "AZURE_CLIENT_ID": r.miClient,
			} {
				env[k] = v
			}
			for k, v := range tt.env {
				if v == "" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			s, err := parseSettings(getenvFrom(env))
			if err != nil {
				t.Fatal(err)
			}
			s.weatherUpstreamTimeout = 300 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			handler, err := wire(ctx, s, slog.New(logctx.NewHostHandler(&stdout, &stderr, slog.LevelDebug)))
			if err != nil {
				t.Fatal(err)
			}
			h.Store(&handler)

			bearer, err := r.entra.Mint(entra.MintOptions{ClientID: r.secretClient, Roles: []string{"access_as_application"}})
			if err != nil {
				t.Fatal(err)
			}
			r.add(bearer)
			var replies []string
			// WeatherHttp, until it gives the answer this path leads to (the
			// signing keys and the vault are read in the background).
			var status int
			deadline := time.Now().Add(15 * time.Second)
			for {
				req, _ := http.NewRequest(http.MethodGet, front.URL+"/api/WeatherHttp?city=London", nil)
				req.Header.Set("Authorization", "Bearer "+bearer)
				var text string
				status, text = exchange(t, req)
				replies = append(replies, text)
				settled := status == tt.apiStatus || (tt.apiStatus == 0 && status >= 500 && status != http.StatusServiceUnavailable)
				if settled && (tt.apiStatus != http.StatusServiceUnavailable || strings.Contains(stderr.String(), tt.want)) {
					if status == http.StatusServiceUnavailable && !strings.Contains(text, "Retry-After") {
						t.Errorf("503 without Retry-After: %s", text)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("WeatherHttp = %d, want %d; last reply %s\nstderr: %s", status, tt.apiStatus, text, stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			// One CallerTimer tick, as the host sends it.
			req, _ := http.NewRequest(http.MethodPost, front.URL+"/CallerTimer",
				strings.NewReader(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Azure-Functions-InvocationId", "5b4ad3a4-4b2c-4d55-9d1a-3f2b8c6c0e11")
			tickStatus, tickText := exchange(t, req)
			replies = append(replies, tickText)
			if tickStatus != tt.tickStatus {
				t.Errorf("CallerTimer = %d, want %d: %s\nstderr: %s", tickStatus, tt.tickStatus, tickText, stderr.String())
			}

			all := stdout.String() + "\n" + stderr.String() + "\n" + strings.Join(replies, "\n")
			if !strings.Contains(all, tt.want) {
				t.Errorf("the failure did not happen as planned: no %q in\n%s", tt.want, all)
			}
			for _, c := range r.all() {
				forms := []string{c, url.QueryEscape(c)}
				for _, line := range strings.Split(c, "\n") { // PEM: every base64 line
					if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
						forms = append(forms, line)
					}
				}
				if i := strings.LastIndexByte(c, '.'); strings.Count(c, ".") == 2 && len(c)-i > 20 { // a JWT: its signature too
					forms = append(forms, c[i+1:])
				}
				for _, f := range forms {
					if i := strings.Index(all, f); i >= 0 {
						lo, hi := max(0, i-120), min(len(all), i+len(f)+40)
						t.Errorf("a secret leaked: …%s…", all[lo:hi])
					}
				}
			}
		})
	}
}
