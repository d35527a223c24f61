package devstack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/devstack"
	"github.com/weatherfunc/handler/internal/devstack/entra"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEndToEnd builds handler and runs it under the stand-in Functions host
// with every stand-in, as `go run ./cmd/devstack` does, and checks the whole
// path: CallerTimer → MSAL → Entra → WeatherHttp (token validated against the
// JWKS) → Key Vault-resolved key → OpenWeatherMap.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the handler binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var stdout, stderr syncBuffer
	st, err := devstack.Start(ctx, devstack.Options{
		RepoRoot: filepath.Join("..", ".."),
		Addr:     "127.0.0.1:0",
		// Timers fire only when the test says so.
		TimerEvery: 1000 * time.Hour,
		Stdout:     &stdout,
		Stderr:     &stderr,
		ParentEnv:  os.Getenv,
		BuildEnv:   os.Environ(),
	})
	if err != nil {
		t.Fatalf("devstack.Start: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	defer st.Close()
	client := &http.Client{Timeout: 20 * time.Second}

	goodToken, err := st.Entra.Mint(entra.MintOptions{ClientID: st.CallerClientID, Roles: []string{"access_as_application"}})
	if err != nil {
		t.Fatal(err)
	}
	waitForAPI(t, client, st, goodToken)

	t.Run("three ticks, one token request, one weather request", func(t *testing.T) {
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
		out := stdout.String() + stderr.String()
		issued := st.Entra.IssuedTokens()
		if len(issued) == 0 {
			t.Fatal("the daemon got no token from the Entra stand-in")
		}
		for _, s := range append(append(st.SecretValues, rotated, goodToken, noRole), issued...) {
			if strings.Contains(out, s) {
				t.Errorf("handler output contains a secret or token")
			}
		}
		// And the tokens' signatures, in case a log line cut one up.
		for _, tok := range append([]string{goodToken, noRole}, issued...) {
			sig := tok[strings.LastIndexByte(tok, '.')+1:]
			if strings.Contains(out, sig) {
				t.Errorf("handler output contains a token signature")
			}
		}
	})
}

// waitForAPI polls WeatherHttp with another city until the handler has loaded
// the signing keys and resolved the weather key from the vault, and until the
// daemon's client secret has been read, so the counted ticks start warm.
func waitForAPI(t *testing.T, client *http.Client, st *devstack.Stack, token string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, st.APIURL()+"?city=Moscow", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && st.Vault.Reads("caller-client-secret") > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not ready after 60 s (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
