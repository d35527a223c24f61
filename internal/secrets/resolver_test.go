package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/weatherfunc/handler/internal/devstack/identity"
	"github.com/weatherfunc/handler/internal/devstack/keyvault"
	"github.com/weatherfunc/handler/internal/devstack/tlsca"
	"github.com/weatherfunc/handler/internal/testutil"
)

// The secret values used below; none may ever appear in a log line or an error.
const (
	weatherKey   = "owm-KEY-5e1f0c9a-do-not-log"
	callerSecret = "caller-SECRET-0b7d-do-not-log"
	tenantID     = "72f988bf-86f1-41af-91ab-2d7cd011db47"
)

type syncBuffer = testutil.SyncBuffer

func randomGUID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stack is the managed-identity stand-in (plain http on loopback, as in Azure)
// plus the Key Vault stand-in over HTTPS, wired to the real azidentity
// ManagedIdentityCredential and the real azsecrets client.
type stack struct {
	ca       *tlsca.CA
	mi       *identity.Server
	kv       *keyvault.Server
	vaultURL string // https://127.0.0.1:port
	vaultLn  string // 127.0.0.1:port
	header   string // IDENTITY_HEADER
	logs     *syncBuffer
	resolver *Resolver
	cred     azcore.TokenCredential
	hc       *http.Client
}

// newStack starts the stand-ins; wrap (may be nil) sits in front of the vault.
// client (may be nil) replaces ca.Client() as the resolver's transport.
func newStack(t *testing.T, wrap func(*stack, http.Handler) http.Handler, client func(*stack) *http.Client) *stack {
	t.Helper()
	ca, err := tlsca.New()
	if err != nil {
		t.Fatal(err)
	}
	// A fresh client ID per stack: MSAL caches managed-identity tokens process-wide.
	cid := randomGUID(t)
	st := &stack{ca: ca, header: randomGUID(t), logs: &syncBuffer{}}
	st.mi = identity.New(identity.Options{Header: st.header, ClientIDs: []string{cid}})
	miSrv := httptest.NewServer(st.mi.Handler())
	t.Cleanup(miSrv.Close)
	t.Setenv("IDENTITY_ENDPOINT", miSrv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", st.header)

	st.kv = keyvault.New(keyvault.Options{
		TenantID:  tenantID,
		Secrets:   map[string]string{"weather-api-key": weatherKey, "caller-client-secret": callerSecret},
		Authorize: func(tok string) bool { return st.mi.Valid(tok, keyvault.Resource) },
	})
	var h http.Handler = st.kv.Handler()
	if wrap != nil {
		h = wrap(st, h)
	}
	srv, base, err := ca.Listen("", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	st.vaultURL, st.vaultLn = base, strings.TrimPrefix(base, "https://")
	st.kv.SetVaultURL(base)

	cred, err := NewCredential(CredentialOptions{ManagedIdentity: true, ClientID: cid})
	if err != nil {
		t.Fatal(err)
	}
	hc := ca.Client()
	if client != nil {
		hc = client(st)
	}
	st.cred, st.hc = cred, hc
	st.resolver, err = NewResolver(ResolverOptions{
		Credential: cred,
		HTTPClient: hc,
		Logger:     slog.New(slog.NewJSONHandler(st.logs, nil)),
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// redirectClient dials the vault stand-in whatever host a URL names, and
// checks its certificate as "localhost", so that a vault URL with a real
// Azure-looking name reaches the stand-in with every check in place.
func redirectClient(st *stack) *http.Client {
	c := st.ca.Client()
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig.ServerName = "localhost"
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, st.vaultLn)
	}
	return c
}

func mustParse(t *testing.T, s string) Reference {
	t.Helper()
	ref, isRef, err := ParseReference(s)
	if err != nil || !isRef {
		t.Fatalf("ParseReference(%q) = %v, %v", s, isRef, err)
	}
	return ref
}

// assertNoSecrets fails when a secret value or the identity header shows up in s.
func (st *stack) assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, v := range []string{weatherKey, callerSecret, st.header} {
		if strings.Contains(s, v) {
			t.Errorf("%s contains a secret: %s", what, s)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestResolveEndToEnd(t *testing.T) {
	st := newStack(t, nil, nil)
	ctx := ctxT(t)
	version := st.kv.Version("weather-api-key")
	tests := []struct {
		name, ref string
	}{
		{"SecretUri without version", "@Microsoft.KeyVault(SecretUri=" + st.vaultURL + "/secrets/weather-api-key)"},
		{"SecretUri without version, trailing slash", "@Microsoft.KeyVault(SecretUri=" + st.vaultURL + "/secrets/weather-api-key/)"},
		{"SecretUri with version", "@Microsoft.KeyVault(SecretUri=" + st.vaultURL + "/secrets/weather-api-key/" + version + ")"},
		{"SecretUri with version, trailing slash", "@Microsoft.KeyVault(SecretUri=" + st.vaultURL + "/secrets/weather-api-key/" + version + "/)"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := st.resolver.Resolve(ctx, mustParse(t, tt.ref))
			if err != nil {
				t.Fatal(err)
			}
			if s.Reveal() != weatherKey {
				t.Errorf("resolved %q", s.Reveal())
			}
			if n := st.kv.Reads("weather-api-key"); n != i+1 {
				t.Errorf("Reads = %d, want %d", n, i+1)
			}
		})
	}
	// Concurrent reads share the one client.
	var wg sync.WaitGroup
	first := mustParse(t, tests[0].ref)
	for range 8 {
		wg.Go(func() {
			s, err := st.resolver.Resolve(ctx, first)
			if err != nil || s.Reveal() != weatherKey {
				t.Errorf("concurrent Resolve: %v", err)
			}
		})
	}
	wg.Wait()
	// One client for the vault: one token for all the reads.
	if n := st.mi.Requests(); n != 1 {
		t.Errorf("identity endpoint asked %d times, want 1 (client and token cached per vault)", n)
	}
	if n := len(st.resolver.clients); n != 1 {
		t.Errorf("%d azsecrets clients for one vault", n)
	}
}

// TestResolveVaultNameFormKeepsVerification resolves the VaultName form: the
// vault URL is https://myvault.vault.azure.net (not loopback), so the SDK's
// challenge-resource check is on, and passes, as it does in Azure.
func TestResolveVaultNameFormKeepsVerification(t *testing.T) {
	st := newStack(t, nil, redirectClient)
	ref := mustParse(t, "@Microsoft.KeyVault(VaultName=myvault;SecretName=caller-client-secret)")
	if ref.VaultURL != "https://myvault.vault.azure.net" {
		t.Fatalf("VaultURL %q", ref.VaultURL)
	}
	s, err := st.resolver.Resolve(ctxT(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	if s.Reveal() != callerSecret {
		t.Errorf("resolved %q", s.Reveal())
	}
	version := st.kv.Version("caller-client-secret")
	ref = mustParse(t, "@Microsoft.KeyVault(VaultName=myvault;SecretName=caller-client-secret;SecretVersion="+version+")")
	if s, err := st.resolver.Resolve(ctxT(t), ref); err != nil || s.Reveal() != callerSecret {
		t.Errorf("with SecretVersion: %v", err)
	}
}

// TestChallengeVerificationStaysOnForNonLoopbackHosts: a vault that is not
// loopback and whose challenge names a resource outside its domain gets no
// token: the check is relaxed for loopback hosts only.
func TestChallengeVerificationStaysOnForNonLoopbackHosts(t *testing.T) {
	st := newStack(t, nil, redirectClient)
	ref := mustParse(t, "@Microsoft.KeyVault(SecretUri=https://myvault.attacker.example/secrets/weather-api-key)")
	_, err := st.resolver.Resolve(ctxT(t), ref)
	t.Logf("error: %v", err)
	var re *ResolveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *ResolveError", err)
	}
	if !strings.Contains(err.Error(), "key vault myvault.attacker.example: secret weather-api-key: ") ||
		!strings.Contains(err.Error(), "challenge") {
		t.Errorf("err = %v", err)
	}
	if n := st.mi.Requests(); n != 0 {
		t.Errorf("a token was requested (%d) for a vault that failed the challenge check", n)
	}
	if n := st.kv.Reads("weather-api-key"); n != 0 {
		t.Errorf("the secret was read %d times", n)
	}
}

func TestVaultClientOptions(t *testing.T) {
	tests := []struct {
		vault   string
		disable bool
	}{
		{"https://127.0.0.1:8443", true},
		{"https://127.1.2.3", true},
		{"https://[::1]:8443", true},
		{"https://localhost:8443", true},
		{"https://LOCALHOST", true},
		{"https://myvault.vault.azure.net", false},
		{"https://myvault.vault.azure.cn", false},
		{"https://myhsm.managedhsm.azure.net", false},
		{"https://localhost.evil.example", false},
		{"https://127.0.0.1.nip.io", false},
		{"https://localhost.", false},
		{"https://10.0.0.5", false},
		{"https://0.0.0.0:443", false},
	}
	for _, tt := range tests {
		t.Run(tt.vault, func(t *testing.T) {
			u, err := url.Parse(tt.vault)
			if err != nil {
				t.Fatal(err)
			}
			o := vaultClientOptions(u, nil)
			if o.DisableChallengeResourceVerification != tt.disable {
				t.Errorf("DisableChallengeResourceVerification = %v, want %v", o.DisableChallengeResourceVerification, tt.disable)
			}
			if o.InsecureAllowCredentialWithHTTP {
				t.Error("credentials over http allowed")
			}
			if o.Transport != nil {
				t.Error("nil HTTPClient should leave azcore's default transport")
			}
		})
	}
	hc := &http.Client{}
	if o := vaultClientOptions(&url.URL{Scheme: "https", Host: "v.vault.azure.net"}, hc); o.Transport != hc {
		t.Error("HTTPClient not used as the transport")
	}
}

// denyWith answers authorized requests for path with a recorded Key Vault body.
func denyWith(path string, status int, file string, t *testing.T) func(*stack, http.Handler) http.Handler {
	body := readTestdata(t, file)
	return func(st *stack, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if r.URL.Path == path && ok && st.mi.Valid(tok, keyvault.Resource) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.Header().Set("x-ms-request-id", "0e57042c-b600-47ba-bfac-27238ec41a3a")
				w.WriteHeader(status)
				_, _ = w.Write(body)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestResolveErrorsAreActionable(t *testing.T) {
	tests := []struct {
		name   string
		wrap   func(*stack, http.Handler) http.Handler
		secret string
		want   string // the whole text after "key vault <host>: secret <name>: "
	}{
		{name: "403 ForbiddenByRbac (recorded body)", wrap: denyWith("/secrets/weather-api-key/", 403, "403_ForbiddenByRbac_getSecret.body.json", t),
			secret: "weather-api-key", want: `403 ForbiddenByRbac: the identity lacks the "Key Vault Secrets User" role on the vault`},
		{name: "403 AccessDenied by access policy (recorded body)", wrap: denyWith("/secrets/weather-api-key/", 403, "403_AccessDenied_accesspolicy_get.body.json", t),
			secret: "weather-api-key", want: `403 AccessDenied: the vault uses access policies and the identity has no "Get" permission on secrets`},
		{name: "403 ForbiddenByFirewall (published body, not valid JSON)", wrap: denyWith("/secrets/weather-api-key/", 403, "403_ForbiddenByFirewall.AS-PUBLISHED-missing-closing-brace.txt", t),
			secret: "weather-api-key", want: `403 ForbiddenByFirewall: the vault's firewall (or network security perimeter) refused this client's network address`},
		{name: "429 Throttled (recorded body)", wrap: denyWith("/secrets/weather-api-key/", 429, "429_Throttled.body.json", t),
			secret: "weather-api-key", want: "429 Throttled: throttled by Key Vault"},
		{name: "404 from the stand-in", secret: "no-such-secret",
			want: "404 SecretNotFound: secret not found: check the secret name and version in the reference"},
		{name: "404 recorded body", wrap: denyWith("/secrets/weather-api-key/", 404, "404_SecretNotFound_get_version.body.json", t),
			secret: "weather-api-key", want: "404 SecretNotFound: secret not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStack(t, tt.wrap, nil)
			ref := mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/"+tt.secret+")")
			_, err := st.resolver.Resolve(ctxT(t), ref)
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("error: %v", err)
			prefix := "key vault " + st.vaultLn + ": secret " + tt.secret + ": "
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q\nwant  %q + …%q…", err, prefix, tt.want)
			}
			st.assertNoSecrets(t, "error", err.Error())
			var re *ResolveError
			if !errors.As(err, &re) || re.StatusCode == 0 || re.Name != tt.secret || re.Vault != st.vaultLn {
				t.Errorf("ResolveError %+v", re)
			}
		})
	}
}

func TestResolveUnauthorized(t *testing.T) {
	// The vault accepts no token from this identity (say, another tenant's).
	st := newStack(t, func(st *stack, next http.Handler) http.Handler {
		kv := keyvault.New(keyvault.Options{TenantID: tenantID, Secrets: map[string]string{"weather-api-key": weatherKey},
			Authorize: func(string) bool { return false }})
		return kv.Handler()
	}, nil)
	_, err := st.resolver.Resolve(ctxT(t), mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/weather-api-key)"))
	if err == nil || !strings.Contains(err.Error(), ": 401 Unauthorized: the vault refused the identity's token") {
		t.Errorf("err = %v", err)
	}
	if err != nil {
		st.assertNoSecrets(t, "error", err.Error())
	}
}

func TestResolveCredentialFailure(t *testing.T) {
	st := newStack(t, nil, nil)
	t.Setenv("IDENTITY_HEADER", "wrong-header") // what azidentity sends from now on
	_, err := st.resolver.Resolve(ctxT(t), mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/weather-api-key)"))
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "key vault "+st.vaultLn+": secret weather-api-key: no token for the vault from the managed identity or Azure CLI (the token endpoint answered HTTP 400)") {
		t.Errorf("err = %v", err)
	}
	if err != nil {
		st.assertNoSecrets(t, "error", err.Error())
	}
}

// An identity endpoint that echoes the request's headers in its error body
// must not get X-IDENTITY-HEADER into our error text (and so into logs).
func TestResolveCredentialFailureDoesNotEchoHeader(t *testing.T) {
	st := newStack(t, nil, nil)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"statusCode":400,"message":"bad request, headers: %s"}`, r.Header.Get("X-Identity-Header"))
	}))
	defer echo.Close()
	t.Setenv("IDENTITY_ENDPOINT", echo.URL+"/msi/token")
	_, err := st.resolver.Resolve(ctxT(t), mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/weather-api-key)"))
	if err == nil {
		t.Fatal("resolved with a failing identity endpoint")
	}
	if strings.Contains(err.Error(), st.header) {
		t.Errorf("error text carries the identity header: %v", err)
	}
}

// TestExplainRecordedBodies maps each recorded Key Vault error body to its advice.
func TestExplainRecordedBodies(t *testing.T) {
	const zero = "00000000-0000-0000-0000-0000000000000" // as the published bodies have it (37 characters)
	tests := []struct {
		file   string
		status int
		want   string
		facts  string // what the message says about who asked which vault
	}{
		{"403_ForbiddenByRbac_getSecret.body.json", 403, `403 ForbiddenByRbac: the identity lacks the "Key Vault Secrets User" role on the vault`,
			" (identity appid=" + zero + " oid=" + zero + ", vault someakv)"},
		{"403_AccessDenied_accesspolicy_get.body.json", 403, `403 AccessDenied: the vault uses access policies`, ""},
		{"403_ForbiddenByConnection.body.json", 403, "403 ForbiddenByConnection: public network access to the vault is disabled", ""},
		{"403_ForbiddenByFirewall.AS-PUBLISHED-missing-closing-brace.txt", 403, "403 ForbiddenByFirewall: the vault's firewall (or network security perimeter) refused",
			" (identity appid=" + zero + " oid=" + zero + ", client address xx.xx.xxx.xx, vault someakv)"},
		{"404_SecretNotFound_get_version.body.json", 404, "404 SecretNotFound: secret not found", ""},
		{"derived_go-TestCRUD_GET_deletedsecret_404.body.json", 404, "404 SecretNotFound: secret not found", ""},
		{"429_Throttled.body.json", 429, "429 Throttled: throttled by Key Vault (too many requests to the vault from this subscription); the handler retries with backoff", ""},
		{"derived_go-TestCRUD_401_challenge.body.json", 401, "401 Unauthorized: the vault refused the identity's token", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "https://someakv.vault.azure.net/secrets/somesecret/?api-version=2026-04-01", nil)
			resp := &http.Response{StatusCode: tt.status, Status: http.StatusText(tt.status), Header: http.Header{},
				Body: io.NopCloser(bytes.NewReader(readTestdata(t, tt.file))), Request: req}
			err := explain("someakv.vault.azure.net", "somesecret", time.Second, runtime.NewResponseError(resp))
			want := "key vault someakv.vault.azure.net: secret somesecret: " + tt.want
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got  %q\nwant %q…", err, want)
			}
			// The body's own text (resource paths, assignments, free text)
			// stays out of the message; only the identity's IDs, the client
			// address and the vault name are taken from it.
			if strings.Contains(err.Error(), "subscriptions") || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "Caller:") ||
				strings.Contains(err.Error(), "DeniedWithNoValidRBAC") || strings.Contains(err.Error(), "NSP") {
				t.Errorf("body text leaked into %q", err)
			}
			if tt.facts != "" && !strings.HasSuffix(err.Error(), tt.facts) {
				t.Errorf("got  %q\nwant it to end in %q", err, tt.facts)
			}
		})
	}
}

func TestKeepRetriesUntilVaultIsUp(t *testing.T) {
	const down = 3
	var calls atomic.Int32
	var cell = NewCell()
	st := newStack(t, func(st *stack, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := calls.Add(1)
			if n <= down {
				if n == down {
					// By now two failures were recorded in the cell.
					if _, err := cell.Get(); !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "WEATHER_API_KEY: key vault ") || !strings.Contains(err.Error(), "503") {
						t.Errorf("cell during the outage: %v", err)
					}
				}
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"error":{"code":"ServiceUnavailable","message":"The service is temporarily unavailable."}}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil)
	ref := mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/weather-api-key/)")
	if err := st.resolver.Keep(ctxT(t), "WEATHER_API_KEY", ref, cell); err != nil {
		t.Fatal(err)
	}
	s, err := cell.Get()
	if err != nil || s.Reveal() != weatherKey {
		t.Fatalf("cell: %v", err)
	}
	logs := st.logs.String()
	st.assertNoSecrets(t, "logs", logs)
	if n := strings.Count(logs, `"msg":"key vault reference not resolved; will retry"`); n != down {
		t.Errorf("%d retry lines, want %d:\n%s", n, down, logs)
	}
	for _, want := range []string{`"setting":"WEATHER_API_KEY"`, `"reference":"` + ref.String() + `"`, `503 ServiceUnavailable: Key Vault is unavailable`,
		`"msg":"key vault reference resolved"`, `"attempts":4`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestKeepStopsWithContext(t *testing.T) {
	st := newStack(t, func(*stack, http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		})
	}, nil)
	cell := NewCell()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := st.resolver.Keep(ctx, "CALLER_CLIENT_SECRET", mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/caller-client-secret)"), cell)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "CALLER_CLIENT_SECRET: key vault ") || !strings.Contains(err.Error(), "503") {
		t.Errorf("Keep = %v", err)
	}
	_, err = cell.Get()
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "CALLER_CLIENT_SECRET") || !strings.Contains(err.Error(), "Key Vault is unavailable") {
		t.Errorf("cell: %v", err)
	}
	if err := st.resolver.Keep(ctx, "X", Reference{}, nil); err == nil {
		t.Error("nil cell accepted")
	}
}

// TestC18_UnresolvedReferenceIsResolvedNeverUsedAsValue: when the platform
// could not resolve a reference, the setting holds the literal
// @Microsoft.KeyVault(...) text. It is recognized as a reference and resolved;
// the literal is never the secret, and a malformed literal is an error, never
// a plain value.
func TestC18_UnresolvedReferenceIsResolvedNeverUsedAsValue(t *testing.T) {
	st := newStack(t, nil, nil)
	literals := []string{
		"@Microsoft.KeyVault(SecretUri=" + st.vaultURL + "/secrets/weather-api-key/)",
		"@microsoft.keyvault(secreturi=" + st.vaultURL + "/secrets/weather-api-key)",
		" @Microsoft.KeyVault(SecretUri=" + st.vaultURL + "/secrets/weather-api-key/" + st.kv.Version("weather-api-key") + ") ",
	}
	for _, lit := range literals {
		ref, isRef, err := ParseReference(lit)
		if !isRef || err != nil {
			t.Fatalf("%q: isRef %v, err %v", lit, isRef, err)
		}
		cell := NewCell()
		if _, err := cell.Get(); !errors.Is(err, ErrNotReady) {
			t.Fatalf("an unresolved cell gave %v", err)
		}
		if err := st.resolver.Keep(ctxT(t), "WEATHER_API_KEY", ref, cell); err != nil {
			t.Fatal(err)
		}
		s, err := cell.Get()
		if err != nil {
			t.Fatal(err)
		}
		if s.Reveal() == lit || strings.Contains(strings.ToLower(s.Reveal()), "@microsoft.keyvault") || s.Reveal() != weatherKey {
			t.Errorf("the literal reference was used as the secret: %q", s.Reveal())
		}
	}
	for _, bad := range []string{
		"@Microsoft.KeyVault(SecretUri=)",
		"@Microsoft.KeyVault(VaultName=myvault)",
		"@Microsoft.KeyVault(SecretUri=http://myvault.vault.azure.net/secrets/x)",
		"@Microsoft.KeyVault(",
	} {
		if _, isRef, err := ParseReference(bad); !isRef || err == nil {
			t.Errorf("%q: isRef %v, err %v; a malformed reference must be an error, not a value", bad, isRef, err)
		}
	}
	if _, isRef, err := ParseReference(weatherKey); isRef || err != nil {
		t.Errorf("a plain key: isRef %v, err %v", isRef, err)
	}
}

func TestNewResolverRequiresCredential(t *testing.T) {
	if _, err := NewResolver(ResolverOptions{}); err == nil {
		t.Error("NewResolver without a credential succeeded")
	}
}

func TestResolveRefusesHTTPVault(t *testing.T) {
	st := newStack(t, nil, nil)
	ref := mustParse(t, "@Microsoft.KeyVault(SecretUri=http://127.0.0.1:1/secrets/x)")
	_, err := st.resolver.Resolve(ctxT(t), ref)
	if err == nil || !strings.Contains(err.Error(), "key vault 127.0.0.1:1: secret x: the vault URL is http") {
		t.Errorf("err = %v", err)
	}
	if n := st.mi.Requests(); n != 0 {
		t.Errorf("a token was requested for an http vault")
	}
	// Keep does not retry what cannot heal.
	cell := NewCell()
	if err := st.resolver.Keep(ctxT(t), "WEATHER_API_KEY", ref, cell); err == nil || !strings.HasPrefix(err.Error(), "WEATHER_API_KEY: key vault 127.0.0.1:1: secret x: the vault URL is http") {
		t.Errorf("Keep = %v", err)
	}
	if _, err := cell.Get(); !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "WEATHER_API_KEY") {
		t.Errorf("cell: %v", err)
	}
	for _, bad := range []Reference{{VaultURL: "https://v.vault.azure.net", Name: "a_b"}, {VaultURL: "https://v.vault.azure.net/x", Name: "a"}, {Name: "a"}} {
		if _, err := st.resolver.Resolve(ctxT(t), bad); err == nil {
			t.Errorf("Resolve(%+v) succeeded", bad)
		}
	}
}

func TestResolveTimeout(t *testing.T) {
	release := make(chan struct{})
	st := newStack(t, func(*stack, http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
	}, nil)
	defer close(release)
	st.resolver.timeout = 50 * time.Millisecond
	_, err := st.resolver.Resolve(context.Background(), mustParse(t, "@Microsoft.KeyVault(SecretUri="+st.vaultURL+"/secrets/x)"))
	if err == nil || !strings.Contains(err.Error(), "secret x: no answer within 50ms") {
		t.Errorf("err = %v", err)
	}
}

func TestJitterStaysInRange(t *testing.T) {
	for _, d := range []time.Duration{time.Nanosecond, time.Millisecond, time.Second, 30 * time.Second} {
		for range 1000 {
			if j := jitter(d); j < d/2 || j > d {
				t.Fatalf("jitter(%s) = %s, want within [%s, %s]", d, j, d/2, d)
			}
		}
	}
}
