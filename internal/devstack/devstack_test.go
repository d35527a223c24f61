package devstack_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/devstack"
	"github.com/weatherfunc/handler/internal/devstack/entra"
	"github.com/weatherfunc/handler/internal/testutil"
)

type syncBuffer = testutil.SyncBuffer

// buildHandler compiles cmd/handler once for every stack of a test.
func buildHandler(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "handler")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/handler")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startStack(t *testing.T, ctx context.Context, credential, bin string) (*devstack.Stack, *syncBuffer, *syncBuffer) {
	t.Helper()
	var stdout, stderr syncBuffer
	st, err := devstack.Start(ctx, devstack.Options{
		RepoRoot: filepath.Join("..", ".."),
		Addr:     "127.0.0.1:0",
		// Timers fire only when the test says so.
		TimerEvery: 1000 * time.Hour,
		Stdout:     &stdout,
		Stderr:     &stderr,
		ParentEnv:  os.Getenv,
		Handler:    bin,
		Credential: credential,
	})
	if err != nil {
		t.Fatalf("devstack.Start: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, &stdout, &stderr
}

// threeTicks fires CallerTimer three times and checks that each tick read
// London's weather and that the three cost one token request.
func threeTicks(t *testing.T, ctx context.Context, st *devstack.Stack, stderr *syncBuffer) {
	t.Helper()
	tokensBefore, londonBefore := st.Entra.TokenRequests(), st.Weather.CallsFor("London")
	for i := range 3 {
		res, err := st.Host.FireTimer(ctx, "CallerTimer", false)
		if err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
		if res.Failed || res.Status != http.StatusOK {
			t.Fatalf("tick %d failed: status %d, %s\nstderr:\n%s", i, res.Status, res.Reason, stderr.String())
		}
		logs := strings.Join(res.Logs, "\n")
		// London's recorded observation (weather_weather_name.body.json).
		for _, want := range []string{"London", "light rain", "200"} {
			if !strings.Contains(logs, want) {
				t.Errorf("tick %d Logs lack %q:\n%s", i, want, logs)
			}
		}
	}
	if got := st.Entra.TokenRequests() - tokensBefore; got != 1 {
		t.Errorf("token requests over three ticks = %d, want 1", got)
	}
	if got := st.Weather.CallsFor("London") - londonBefore; got != 1 {
		t.Errorf("weather calls for London over three ticks = %d, want 1", got)
	}
}

// noSecretPrinted checks that nothing the handler printed holds a secret
// value, the identity header, or a token (or a token's signature).
func noSecretPrinted(t *testing.T, st *devstack.Stack, out string, extra ...string) {
	t.Helper()
	issued := st.Entra.IssuedTokens()
	if len(issued) == 0 {
		t.Fatal("the daemon got no token from the Entra stand-in")
	}
	for _, s := range append(append(append([]string(nil), st.SecretValues...), extra...), issued...) {
		if strings.Contains(out, s) {
			t.Errorf("handler output contains a secret or token")
		}
		// PEM text: any of its base64 lines.
		for _, line := range strings.Split(s, "\n") {
			if len(line) >= 40 && strings.Contains(out, line) {
				t.Errorf("handler output contains a line of a secret")
			}
		}
	}
	// And the tokens' signatures, in case a log line cut one up.
	for _, tok := range append(append([]string(nil), extra...), issued...) {
		if i := strings.LastIndexByte(tok, '.'); i >= 0 {
			if sig := tok[i+1:]; len(sig) > 16 && strings.Contains(out, sig) {
				t.Errorf("handler output contains a token signature")
			}
		}
	}
}

// TestEndToEnd builds handler and runs it under the stand-in Functions host
// with every stand-in, as `go run ./cmd/devstack` does, once per daemon
// credential, and checks the whole path: CallerTimer → MSAL (federated
// managed-identity assertion, certificate assertion or client secret) →
// Entra → WeatherHttp (token validated against the JWKS) → Key
// Vault-resolved key → OpenWeatherMap.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the handler binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := buildHandler(t)
	client := &http.Client{Timeout: 20 * time.Second}

	for _, cred := range []string{devstack.CredentialCertificate, devstack.CredentialSecret} {
		t.Run(cred, func(t *testing.T) {
			st, stdout, stderr := startStack(t, ctx, cred, bin)
			if st.Credential != cred || st.CallerSecretName == "" {
				t.Errorf("stack credential %q, caller secret %q", st.Credential, st.CallerSecretName)
			}
			goodToken, err := st.Entra.Mint(entra.MintOptions{ClientID: st.CallerClientID, Roles: []string{"access_as_application"}})
			if err != nil {
				t.Fatal(err)
			}
			waitForAPI(t, client, st, goodToken)
			threeTicks(t, ctx, st, stderr)
			if n := st.Vault.Reads(st.CallerSecretName); n != 1 {
				t.Errorf("vault reads of %s = %d, want 1", st.CallerSecretName, n)
			}
			noSecretPrinted(t, st, stdout.String()+stderr.String(), goodToken)
		})
	}

	// The default: managed identity, no daemon secret anywhere.
	st, stdout, stderr := startStack(t, ctx, "", bin)
	if st.Credential != devstack.CredentialManagedIdentity || st.CallerSecretName != "" {
		t.Errorf("default credential %q, caller secret %q", st.Credential, st.CallerSecretName)
	}
	goodToken, err := st.Entra.Mint(entra.MintOptions{ClientID: st.CallerClientID, Roles: []string{"access_as_application"}})
	if err != nil {
		t.Fatal(err)
	}
	waitForAPI(t, client, st, goodToken)

	t.Run("managed-identity: three ticks, one token request, one weather request", func(t *testing.T) {
		miBefore := st.Identity.Requests()
		threeTicks(t, ctx, st, stderr)
		// The daemon app has only a federated credential, so the token
		// proves the assertion: the identity endpoint's token for
		// api://AzureADTokenExchange, asked for once (azidentity caches it).
		if n := st.Identity.Requests() - miBefore; n != 1 {
			t.Errorf("managed-identity requests over three ticks = %d, want 1 (the federated assertion)", n)
		}
		for _, name := range []string{"caller-client-secret", "caller-certificate"} {
			if n := st.Vault.Reads(name); n != 0 {
				t.Errorf("vault reads of %s = %d, want none", name, n)
			}
		}
	})

	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	noRole, err := st.Entra.Mint(entra.MintOptions{ClientID: st.CallerClientID})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := st.Entra.Mint(entra.MintOptions{ClientID: st.CallerClientID, Roles: []string{"access_as_application"}, Key: otherKey, KeyID: "not-in-the-jwks"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		auth       string
		status     int
		wantHeader string
	}{
		{"no token", "", http.StatusUnauthorized, "Bearer realm="},
		{"token without the role", "Bearer " + noRole, http.StatusForbidden, `error="insufficient_scope"`},
		{"token signed by a key outside the JWKS", "Bearer " + foreign, http.StatusUnauthorized, `error="invalid_token"`},
		{"valid token", "Bearer " + goodToken, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.APIURL()+"?city=London", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if h := resp.Header.Get("WWW-Authenticate"); tt.wantHeader != "" && !strings.Contains(h, tt.wantHeader) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", h, tt.wantHeader)
			}
			if tt.status == http.StatusOK {
				var body struct {
					City    string `json:"city"`
					Country string `json:"country"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.City != "London" || body.Country != "GB" {
					t.Errorf("body = %+v (%v), want London, GB", body, err)
				}
			}
		})
	}

	// The key is rotated at the provider and in the vault: the first refusal
	// makes the handler read the versionless reference again, and the API
	// heals without a restart.
	rotated := "rotated-" + st.SecretValues[0]
	t.Run("a rotated weather key heals without a restart", func(t *testing.T) {
		st.Vault.SetSecret(st.WeatherSecretName, rotated)
		st.Weather.SetAPIKey(rotated)
		readsBefore := st.Vault.Reads(st.WeatherSecretName)
		var last int
		for range 100 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.APIURL()+"?city=New+York", nil)
			req.Header.Set("Authorization", "Bearer "+goodToken)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if last = resp.StatusCode; last == http.StatusOK {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if last != http.StatusOK {
			t.Errorf("after rotation the API still answers %d", last)
		}
		if got := st.Vault.Reads(st.WeatherSecretName) - readsBefore; got != 1 {
			t.Errorf("vault reads of the weather key after rotation = %d, want 1", got)
		}
	})

	t.Run("no secret in anything the handler printed", func(t *testing.T) {
		noSecretPrinted(t, st, stdout.String()+stderr.String(), rotated, goodToken, noRole)
	})
}

// waitForAPI polls WeatherHttp with another city until the handler has loaded
// the signing keys and resolved the weather key from the vault, and until the
// daemon's secret or certificate (if any) has been read, so the counted ticks
// start warm.
func waitForAPI(t *testing.T, client *http.Client, st *devstack.Stack, token string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, st.APIURL()+"?city=Moscow", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && (st.CallerSecretName == "" || st.Vault.Reads(st.CallerSecretName) > 0) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not ready after 60 s (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
