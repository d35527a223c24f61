package auth

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// recordedEntra serves the recorded Entra documents, byte for byte, at the
// paths Entra serves them, and returns a client that reaches the server for
// any host name (like a hosts-file entry for login.microsoftonline.com), so
// the recorded jwks_uri works unchanged.
func recordedEntra(t *testing.T, tenant string) *http.Client {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v2, v1, keys := read("openid-configuration-common-v2-2024.json"), read("openid-configuration-common-v1-2024.json"), read("jwks-common-v2-2024.json")
	mux := http.NewServeMux()
	serve := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Host != "login.microsoftonline.com" {
				t.Errorf("request to host %q", r.Host)
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write(body)
		}
	}
	mux.HandleFunc("GET /"+tenant+"/v2.0/.well-known/openid-configuration", serve(v2))
	mux.HandleFunc("GET /"+tenant+"/.well-known/openid-configuration", serve(v1))
	mux.HandleFunc("GET /common/discovery/v2.0/keys", serve(keys))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)

	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig = &tls.Config{
		RootCAs:    tr.TLSClientConfig.RootCAs,
		ServerName: "example.com", // a name in httptest's certificate
		MinVersion: tls.VersionTLS12,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestC06_RealAppOnlyTokenWithoutRole verifies a genuine Entra v2 app-only
// token against the recorded keys and metadata at its own time (iat+60 s):
// signature, issuer, audience and lifetime pass; it carries neither roles
// nor scp, so authorization refuses it: 403, not 401 and not 200.
func TestC06_RealAppOnlyTokenWithoutRole(t *testing.T) {
	b, err := os.ReadFile("testdata/real-v2-app-only-2024.jwt")
	if err != nil {
		t.Fatal(err)
	}
	raw := strings.TrimSpace(string(b))
	_, payload, _ := segments(raw)
	pb, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	var tc struct {
		Aud string  `json:"aud"`
		Tid string  `json:"tid"`
		Iss string  `json:"iss"`
		Iat float64 `json:"iat"`
	}
	if err := json.Unmarshal(pb, &tc); err != nil {
		t.Fatal(err)
	}

	client := recordedEntra(t, tc.Tid)
	at := time.Unix(int64(tc.Iat), 0).Add(60 * time.Second)
	v, err := New(Options{
		TenantID:      tc.Tid,
		AuthorityHost: "https://login.microsoftonline.com",
		ClientID:      tc.Aud,
		HTTPClient:    client,
		Now:           func() time.Time { return at },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.Start(ctx)
	waitReady(t, v)

	c, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("Verify(real token): %v", err)
	}
	if c.Issuer != tc.Iss || c.Audience != tc.Aud || c.TenantID != tc.Tid || c.Version != "2.0" || c.AuthorizedParty != tc.Aud {
		t.Errorf("claims = %+v", c)
	}
	if !c.AppOnly() || len(c.Roles) != 0 || len(c.Scopes) != 0 {
		t.Errorf("AppOnly %v, roles %v, scopes %v", c.AppOnly(), c.Roles, c.Scopes)
	}
	if err := v.Authorize(c); !errors.Is(err, ErrInsufficientScope) {
		t.Fatalf("Authorize = %v, want ErrInsufficientScope", err)
	}

	r := httptest.NewRequest(http.MethodGet, "/api/WeatherHttp?city=London", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	res := through(t, v, r)
	if res.status != http.StatusForbidden || res.reached {
		t.Fatalf("Middleware: status %d, reached %v", res.status, res.reached)
	}
	want := `Bearer realm="api://` + tc.Aud + `", error="insufficient_scope", error_description="app role missing", scope="access_as_application"`
	if res.challenge != want {
		t.Errorf("WWW-Authenticate = %q\nwant %q", res.challenge, want)
	}

	// The same token with one byte in the middle of its signature changed:
	// still canonical base64url, so this is a real RSA verification
	// failure, refused with 401.
	t.Run("one signature byte changed", func(t *testing.T) {
		h, pl, sig := segments(raw)
		sb, err := base64.RawURLEncoding.Strict().DecodeString(sig)
		if err != nil {
			t.Fatal(err)
		}
		sb[len(sb)/2] ^= 0x01
		tampered := h + "." + pl + "." + base64.RawURLEncoding.EncodeToString(sb)
		if tampered == raw {
			t.Fatal("token unchanged")
		}
		if _, err := v.Verify(ctx, tampered); !errors.Is(err, ErrInvalidToken) || Reason(err) != "signature invalid" {
			t.Fatalf("Verify(tampered) = %v, want ErrInvalidToken: signature invalid", err)
		}
		r := httptest.NewRequest(http.MethodGet, "/api/WeatherHttp?city=London", nil)
		r.Header.Set("Authorization", "Bearer "+tampered)
		res := through(t, v, r)
		want := `Bearer realm="api://` + tc.Aud + `", error="invalid_token", error_description="signature invalid"`
		if res.status != http.StatusUnauthorized || res.reached || res.challenge != want {
			t.Errorf("Middleware: status %d, reached %v, WWW-Authenticate %q; want 401 %q", res.status, res.reached, res.challenge, want)
		}
	})

	// The same token is refused at other times and by another API.
	for _, tt := range []struct {
		name   string
		now    time.Time
		client string
		reason string
	}{
		{name: "after exp + leeway", now: time.Unix(1721268532, 0).Add(DefaultLeeway), client: tc.Aud, reason: "token expired"},
		{name: "before nbf - leeway", now: time.Unix(1721264632, 0).Add(-DefaultLeeway - time.Second), client: tc.Aud, reason: "token not yet valid"},
		{name: "another API", now: at, client: "00000000-0000-4000-8000-000000000001", reason: "audience mismatch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v2, err := New(Options{TenantID: tc.Tid, AuthorityHost: "https://login.microsoftonline.com", ClientID: tt.client,
				HTTPClient: client, Now: func() time.Time { return tt.now }})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			v2.Start(ctx)
			waitReady(t, v2)
			if _, err := v2.Verify(ctx, raw); Reason(err) != tt.reason {
				t.Errorf("Verify = %v, want reason %q", err, tt.reason)
			}
		})
	}
}

// TestRecordedKeysDocumentsParse: every key Entra published in the recorded
// documents is usable (x5c, x5t and n/e agree).
func TestRecordedKeysDocumentsParse(t *testing.T) {
	for _, name := range []string{"jwks-common-v2-2024.json", "jwks-common-v2-2024-10-with-issuer.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		ks, skipped, err := parseKeySet(b)
		if err != nil || len(skipped) != 0 || len(ks.issuers) != len(doc.Keys) {
			t.Errorf("%s: %v, skipped %v", name, err, skipped)
		}
	}
}
