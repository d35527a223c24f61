package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/weatherfunc/handler/internal/testutil"
)

const (
	testTenant  = "7f1c0d2e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
	otherTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
	testClient  = "3e2d1c0b-aaaa-4bbb-8ccc-123456789abc"
	testCaller  = "5a5a5a5a-1111-4222-8333-444455556666"
	testAppURI  = "api://" + testClient
	v1Issuer    = "https://sts.windows.net/" + testTenant + "/"
)

// testRSAKeys are generated once per test binary: RSA generation is the
// slowest thing these tests do.
var testRSAKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 3)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

// signer is one signing key of the stand-in.
type signer struct {
	kid    string
	priv   *rsa.PrivateKey
	issuer string // published per-key issuer, "" for none
}

func testSigner(i int) signer {
	return signer{kid: "test-key-" + string(rune('a'+i)), priv: testRSAKeys()[i]}
}

// idp is a loopback Entra ID stand-in speaking the real discovery and JWKS
// wire formats over HTTPS.
type idp struct {
	t   testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	signers []signer
	// jwksHook, when set, may answer a keys request itself (returning
	// true); n counts keys requests from 1.
	jwksHook func(w http.ResponseWriter, n int64) bool
	v1Status int // when non-zero, the v1 metadata answers with it
	v2Issuer string

	jwksHits atomic.Int64
	metaHits atomic.Int64
}

func newIDP(t testing.TB, signers ...signer) *idp {
	t.Helper()
	p := &idp{t: t, signers: signers}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.metaHits.Add(1)
		tenant := r.PathValue("tenant")
		p.mu.Lock()
		iss := p.v2Issuer
		p.mu.Unlock()
		if iss == "" {
			iss = p.srv.URL + "/" + tenant + "/v2.0"
		}
		writeJSON(w, map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              p.srv.URL + "/" + tenant + "/discovery/v2.0/keys",
			"token_endpoint":                        p.srv.URL + "/" + tenant + "/oauth2/v2.0/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.metaHits.Add(1)
		p.mu.Lock()
		status := p.v1Status
		p.mu.Unlock()
		if status != 0 {
			http.Error(w, "no", status)
			return
		}
		tenant := r.PathValue("tenant")
		writeJSON(w, map[string]any{
			"issuer":   "https://sts.windows.net/" + tenant + "/",
			"jwks_uri": p.srv.URL + "/common/discovery/keys",
		})
	})
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", func(w http.ResponseWriter, r *http.Request) {
		n := p.jwksHits.Add(1)
		p.mu.Lock()
		hook := p.jwksHook
		p.mu.Unlock()
		if hook != nil && hook(w, n) {
			return
		}
		p.mu.Lock()
		doc := jwksDoc(p.signers...)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	p.srv = httptest.NewTLSServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) v2Iss() string { return p.srv.URL + "/" + testTenant + "/v2.0" }

func (p *idp) setSigners(s ...signer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signers = s
}

func (p *idp) setJWKSHook(h func(w http.ResponseWriter, n int64) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jwksHook = h
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwksDoc(signers ...signer) []byte {
	keys := make([]map[string]any, 0, len(signers))
	for _, s := range signers {
		k := map[string]any{
			"kty": "RSA",
			"use": "sig",
			"kid": s.kid,
			"n":   b64(s.priv.N.Bytes()),
			"e":   b64(big.NewInt(int64(s.priv.E)).Bytes()),
		}
		if s.issuer != "" {
			k["issuer"] = s.issuer
		}
		keys = append(keys, k)
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// fakeClock is the injected clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_750_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type syncBuffer = testutil.SyncBuffer

// started returns a Verifier for the stand-in, started and (unless
// noWait) ready.
func (p *idp) started(t testing.TB, clk *fakeClock, mod func(*Options)) *Verifier {
	t.Helper()
	v := p.newVerifier(t, clk, mod)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v.Start(ctx)
	waitReady(t, v)
	return v
}

func (p *idp) newVerifier(t testing.TB, clk *fakeClock, mod func(*Options)) *Verifier {
	t.Helper()
	opts := Options{
		TenantID:      testTenant,
		AuthorityHost: p.srv.URL,
		ClientID:      testClient,
		HTTPClient:    p.srv.Client(),
		Now:           clk.Now,
	}
	if mod != nil {
		mod(&opts)
	}
	v, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// waitReady polls Ready; it asserts nothing about how long loading takes,
// only that it happens within a generous bound.
func waitReady(t testing.TB, v *Verifier) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !v.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("verifier never became ready")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// claims returns the claims of a valid app-only v2 token at clk's time.
func (p *idp) appClaims(clk *fakeClock) map[string]any {
	now := clk.Now().Unix()
	return map[string]any{
		"aud":   testClient,
		"iss":   p.v2Iss(),
		"iat":   now - 60,
		"nbf":   now - 60,
		"exp":   now + 3600,
		"azp":   testCaller,
		"oid":   "0c0c0c0c-2222-4333-8444-555566667777",
		"sub":   "0c0c0c0c-2222-4333-8444-555566667777",
		"roles": []string{DefaultRequiredRole},
		"tid":   testTenant,
		"ver":   "2.0",
		"idtyp": "app",
	}
}

// userClaims returns the claims of a valid delegated v2 token.
func (p *idp) userClaims(clk *fakeClock) map[string]any {
	c := p.appClaims(clk)
	delete(c, "roles")
	c["idtyp"] = "user"
	c["scp"] = "User.Read " + DefaultRequiredScope
	c["name"] = "Test User"
	return c
}

// v1Claims returns the claims of a valid app-only v1 token.
func v1Claims(clk *fakeClock) map[string]any {
	now := clk.Now().Unix()
	return map[string]any{
		"aud":   testAppURI,
		"iss":   v1Issuer,
		"iat":   now - 60,
		"nbf":   now - 60,
		"exp":   now + 3600,
		"appid": testCaller,
		"oid":   "0c0c0c0c-2222-4333-8444-555566667777",
		"roles": []string{DefaultRequiredRole},
		"tid":   testTenant,
		"ver":   "1.0",
	}
}

// mint signs claims with s, the header holding alg RS256, typ JWT, kid
// and extra (an extra value of nil deletes the parameter).
func mint(t testing.TB, s signer, claims map[string]any, extra map[string]any) string {
	t.Helper()
	h := map[string]any{"typ": "JWT", "alg": "RS256", "kid": s.kid}
	for k, v := range extra {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return mintRaw(t, s, hb, cb)
}

// mintRaw signs the exact header and payload bytes with RS256.
func mintRaw(t testing.TB, s signer, header, payload []byte) string {
	t.Helper()
	signing := b64(header) + "." + b64(payload)
	sig, err := jwt.SigningMethodRS256.Sign(signing, s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// segments splits a token into its three segments.
func segments(tok string) (string, string, string) {
	p := strings.Split(tok, ".")
	return p[0], p[1], p[2]
}
