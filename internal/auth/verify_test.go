package auth

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifyAttackMatrix replays, against our Verifier, every row of
// testdata/entra/observed.golang-jwt-v5.3.1_keyfunc-v3.9.2.attack-matrix.txt
// (what the libraries accept by default) plus the field cases about
// issuers, audiences and versions. Each must be refused with the named
// reason; the valid rows must pass.
func TestVerifyAttackMatrix(t *testing.T) {
	k0, k1 := testSigner(0), testSigner(1)
	p := newIDP(t, k0, k1)
	clk := newClock()
	v := p.started(t, clk, nil)
	now := clk.Now().Unix()

	// with returns the app-only claims with changes (a nil value deletes).
	with := func(base map[string]any, changes map[string]any) map[string]any {
		c := make(map[string]any, len(base))
		for k, val := range base {
			c[k] = val
		}
		for k, val := range changes {
			if val == nil {
				delete(c, k)
			} else {
				c[k] = val
			}
		}
		return c
	}
	app := p.appClaims(clk)
	valid := mint(t, k0, app, nil)
	h, pl, sig := segments(valid)

	pubDER, err := x509.MarshalPKIXPublicKey(&k0.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(app))
		tok.Header["kid"] = k0.kid
		s, err := tok.SignedString(pubDER)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	noneTok := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(app))
		tok.Header["kid"] = k0.kid
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	// The last base64url character of a 256-byte signature carries 4 bits
	// of padding; setting them gives the same bytes to a lax decoder.
	nonCanonical := func() string {
		last := sig[len(sig)-1]
		i := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last)
		alt := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i|1]
		return h + "." + pl + "." + sig[:len(sig)-1] + string(alt)
	}()
	rawPayload := func(payload string) string {
		hb, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "RS256", "kid": k0.kid})
		return mintRaw(t, k0, hb, []byte(payload))
	}
	appJSON, _ := json.Marshal(app)
	// dupAud appends a second aud member: a lax parser takes the last.
	dupAud := rawPayload(strings.TrimSuffix(string(appJSON), "}") + `,"aud":"https://graph.microsoft.com"}`)

	tests := []struct {
		name   string
		token  string
		want   error  // nil: accepted
		reason string // expected Reason(err)
	}{
		{name: "valid v2 app-only", token: valid},
		{name: "valid v2 delegated", token: mint(t, k0, p.userClaims(clk), nil)},
		{name: "valid, signed by the second key in the set", token: mint(t, k1, app, nil)},
		{name: "C01 v1 token with App ID URI audience", token: mint(t, k0, v1Claims(clk), map[string]any{"x5t": k0.kid})},
		{name: "C02 v1 token from the v2 endpoint (sts issuer, ver 1.0)", token: mint(t, k0, with(v1Claims(clk), map[string]any{"scp": DefaultRequiredScope, "roles": nil}), nil)},
		{name: "C03 ver 2.0 with the v1 issuer", token: mint(t, k0, with(app, map[string]any{"iss": v1Issuer}), nil), want: ErrInvalidToken, reason: "issuer mismatch"},
		{name: "C03 ver 1.0 with the v2 issuer", token: mint(t, k0, with(v1Claims(clk), map[string]any{"iss": p.v2Iss()}), nil), want: ErrInvalidToken, reason: "issuer mismatch"},
		{name: "C03 ver 1.0 with the client ID audience", token: mint(t, k0, with(v1Claims(clk), map[string]any{"aud": testClient}), nil), want: ErrInvalidToken, reason: "audience mismatch"},
		{name: "C03 ver 2.0 with the App ID URI audience", token: mint(t, k0, with(app, map[string]any{"aud": testAppURI}), nil), want: ErrInvalidToken, reason: "audience mismatch"},
		{name: "ver missing", token: mint(t, k0, with(app, map[string]any{"ver": nil}), nil), want: ErrInvalidToken, reason: "ver missing"},
		{name: "ver unknown", token: mint(t, k0, with(app, map[string]any{"ver": "3.0"}), nil), want: ErrInvalidToken, reason: "ver unsupported"},
		{name: "ver not a string", token: mint(t, k0, with(app, map[string]any{"ver": 2.0}), nil), want: ErrInvalidToken, reason: "ver is not a string"},
		{name: "C04 Microsoft Graph token (nonce header, graph audience)", token: mint(t, k0, with(app, map[string]any{"aud": "https://graph.microsoft.com"}), map[string]any{"nonce": "bm9uY2U"}), want: ErrInvalidToken, reason: "header parameter nonce not allowed"},
		{name: "C04 Graph audience without nonce", token: mint(t, k0, with(app, map[string]any{"aud": "https://graph.microsoft.com"}), nil), want: ErrInvalidToken, reason: "audience mismatch"},
		{name: "alg none", token: noneTok, want: ErrInvalidToken, reason: "alg not allowed"},
		{name: "HS256 with the public key DER as secret", token: hs256, want: ErrInvalidToken, reason: "alg not allowed"},
		{name: "alg RS512", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS512, jwt.MapClaims(app))
			tok.Header["kid"] = k0.kid
			s, _ := tok.SignedString(k0.priv)
			return s
		}(), want: ErrInvalidToken, reason: "alg not allowed"},
		{name: "alg missing", token: mint(t, k0, app, map[string]any{"alg": nil}), want: ErrInvalidToken, reason: "alg not allowed"},
		{name: "no kid (signed by a key in the set)", token: mint(t, k1, app, map[string]any{"kid": nil}), want: ErrInvalidToken, reason: "kid missing"},
		{name: "kid not a string", token: mint(t, k0, app, map[string]any{"kid": 7}), want: ErrInvalidToken, reason: "kid malformed"},
		{name: "kid path traversal", token: mint(t, k0, app, map[string]any{"kid": "../../etc/passwd"}), want: ErrInvalidToken, reason: "kid malformed"},
		{name: "jku header to attacker", token: mint(t, k0, app, map[string]any{"jku": "https://attacker.example/keys"}), want: ErrInvalidToken, reason: "header parameter jku not allowed"},
		{name: "x5u header", token: mint(t, k0, app, map[string]any{"x5u": "https://attacker.example/cert"}), want: ErrInvalidToken, reason: "header parameter x5u not allowed"},
		{name: "embedded jwk header", token: mint(t, k0, app, map[string]any{"jwk": map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"}}), want: ErrInvalidToken, reason: "header parameter jwk not allowed"},
		{name: "x5c header", token: mint(t, k0, app, map[string]any{"x5c": []string{"MIIB"}}), want: ErrInvalidToken, reason: "header parameter x5c not allowed"},
		{name: "crit header unknown ext", token: mint(t, k0, app, map[string]any{"crit": []string{"exp"}, "exp": now}), want: ErrInvalidToken, reason: "header parameter crit not allowed"},
		{name: "exp missing", token: mint(t, k0, with(app, map[string]any{"exp": nil}), nil), want: ErrInvalidToken, reason: "exp missing"},
		{name: "exp = 0", token: mint(t, k0, with(app, map[string]any{"exp": 0}), nil), want: ErrInvalidToken, reason: "token expired"},
		{name: "exp as string", token: mint(t, k0, with(app, map[string]any{"exp": "99999999999"}), nil), want: ErrInvalidToken, reason: "exp is not a number"},
		{name: "nbf as string", token: mint(t, k0, with(app, map[string]any{"nbf": "1"}), nil), want: ErrInvalidToken, reason: "nbf is not a number"},
		{name: "iat as string", token: mint(t, k0, with(app, map[string]any{"iat": "1"}), nil), want: ErrInvalidToken, reason: "iat is not a number"},
		{name: "exp out of range", token: mint(t, k0, with(app, map[string]any{"exp": 1e300}), nil), want: ErrInvalidToken, reason: "exp out of range"},
		{name: "expired 4 min ago (beyond 1 min leeway)", token: mint(t, k0, with(app, map[string]any{"exp": now - 240}), nil), want: ErrInvalidToken, reason: "token expired"},
		{name: "expired 61 s ago", token: mint(t, k0, with(app, map[string]any{"exp": now - 61}), nil), want: ErrInvalidToken, reason: "token expired"},
		{name: "expired 30 s ago (within leeway)", token: mint(t, k0, with(app, map[string]any{"exp": now - 30}), nil)},
		{name: "nbf 10 min future", token: mint(t, k0, with(app, map[string]any{"nbf": now + 600}), nil), want: ErrInvalidToken, reason: "token not yet valid"},
		{name: "nbf 30 s future (within leeway)", token: mint(t, k0, with(app, map[string]any{"nbf": now + 30}), nil)},
		{name: "iat 10 min future", token: mint(t, k0, with(app, map[string]any{"iat": now + 600}), nil), want: ErrInvalidToken, reason: "token issued in the future"},
		{name: "aud array incl ours", token: mint(t, k0, with(app, map[string]any{"aud": []string{testClient}}), nil), want: ErrInvalidToken, reason: "aud is not a single string"},
		{name: "aud missing", token: mint(t, k0, with(app, map[string]any{"aud": nil}), nil), want: ErrInvalidToken, reason: "aud missing"},
		{name: "aud other", token: mint(t, k0, with(app, map[string]any{"aud": "00000003-0000-0000-c000-000000000000"}), nil), want: ErrInvalidToken, reason: "audience mismatch"},
		{name: "aud ours in upper case", token: mint(t, k0, with(app, map[string]any{"aud": strings.ToUpper(testClient)}), nil), want: ErrInvalidToken, reason: "audience mismatch"},
		{name: "duplicate aud claim", token: dupAud, want: ErrInvalidToken, reason: "duplicate claim name"},
		{name: "iss trailing slash", token: mint(t, k0, with(app, map[string]any{"iss": p.v2Iss() + "/"}), nil), want: ErrInvalidToken, reason: "issuer mismatch"},
		{name: "iss uppercase host", token: mint(t, k0, with(app, map[string]any{"iss": strings.Replace(p.v2Iss(), "https://", "HTTPS://", 1)}), nil), want: ErrInvalidToken, reason: "issuer mismatch"},
		{name: "iss missing", token: mint(t, k0, with(app, map[string]any{"iss": nil}), nil), want: ErrInvalidToken, reason: "iss missing"},
		{name: "token from another tenant", token: mint(t, k0, with(app, map[string]any{"tid": otherTenant, "iss": p.srv.URL + "/" + otherTenant + "/v2.0"}), nil), want: ErrInvalidToken, reason: "issuer mismatch"},
		{name: "tid of another tenant with our issuer", token: mint(t, k0, with(app, map[string]any{"tid": otherTenant}), nil), want: ErrInvalidToken, reason: "tenant mismatch"},
		{name: "tid missing", token: mint(t, k0, with(app, map[string]any{"tid": nil}), nil), want: ErrInvalidToken, reason: "tid missing"},
		{name: "claim names differ in case only (EXP)", token: mint(t, k0, with(app, map[string]any{"exp": nil, "EXP": now + 3600}), nil), want: ErrInvalidToken, reason: "exp missing"},
		{name: "roles not an array", token: mint(t, k0, with(app, map[string]any{"roles": DefaultRequiredRole}), nil), want: ErrInvalidToken, reason: "roles is not an array of strings"},
		{name: "claims not an object", token: rawPayload(`["aud"]`), want: ErrInvalidToken, reason: "claims are not a JSON object"},
		{name: "claims null", token: rawPayload(`null`), want: ErrInvalidToken, reason: "claims are not a JSON object"},
		{name: "signature segment with padding", token: valid + "==", want: ErrInvalidToken, reason: "malformed token"},
		{name: "sig non-canonical trailing bits", token: nonCanonical, want: ErrInvalidToken, reason: "malformed token"},
		{name: "payload segment with padding", token: h + "." + pl + "=." + sig, want: ErrInvalidToken, reason: "malformed token"},
		{name: "standard base64 alphabet", token: strings.NewReplacer("-", "+", "_", "/").Replace(valid), want: ErrInvalidToken},
		{name: "two segments", token: h + "." + pl, want: ErrInvalidToken, reason: "malformed token"},
		{name: "four segments", token: valid + ".x", want: ErrInvalidToken, reason: "malformed token"},
		{name: "garbage", token: "not a token", want: ErrInvalidToken, reason: "malformed token"},
		{name: "empty", token: "", want: ErrInvalidToken, reason: "empty token"},
		{name: "longer than 16 KiB", token: strings.Repeat("a", MaxTokenSize+1), want: ErrInvalidToken, reason: "token too large"},
		{name: "tampered payload", token: h + "." + b64([]byte(strings.Replace(string(appJSON), `"roles":["access_as_application"]`, `"roles":["access_as_application","admin"]`, 1))) + "." + sig, want: ErrInvalidToken, reason: "signature invalid"},
		{name: "signed by another key under a known kid", token: mint(t, testSigner(2), app, map[string]any{"kid": k0.kid}), want: ErrInvalidToken, reason: "signature invalid"},
		{name: "unknown kid", token: mint(t, testSigner(2), app, nil), want: ErrInvalidToken, reason: "unknown signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want accepted", err)
				}
				if c.TenantID != testTenant || c.AuthorizedParty != testCaller {
					t.Errorf("claims = %+v", c)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if c != nil {
				t.Errorf("claims returned with an error")
			}
			if tt.reason != "" && Reason(err) != tt.reason {
				t.Errorf("Reason = %q, want %q", Reason(err), tt.reason)
			}
			if Reason(err) == "" {
				t.Errorf("no reason in %v", err)
			}
		})
	}
}

func TestVerifyClaims(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)

	uc := p.userClaims(clk)
	uc["exp"] = float64(clk.Now().Unix()) + 3600.5 // non-integer NumericDate
	c, err := v.Verify(context.Background(), mint(t, k0, uc, nil))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := Claims{
		Issuer:          p.v2Iss(),
		Subject:         "0c0c0c0c-2222-4333-8444-555566667777",
		Audience:        testClient,
		TenantID:        testTenant,
		ObjectID:        "0c0c0c0c-2222-4333-8444-555566667777",
		AuthorizedParty: testCaller,
		Version:         "2.0",
		IDType:          "user",
		Scopes:          []string{"User.Read", DefaultRequiredScope},
		IssuedAt:        clk.Now().Add(-time.Minute),
		NotBefore:       clk.Now().Add(-time.Minute),
		ExpiresAt:       clk.Now().Add(time.Hour + 500*time.Millisecond),
	}
	if c.Issuer != want.Issuer || c.Subject != want.Subject || c.Audience != want.Audience ||
		c.TenantID != want.TenantID || c.ObjectID != want.ObjectID || c.AuthorizedParty != want.AuthorizedParty ||
		c.Version != want.Version || c.IDType != want.IDType || strings.Join(c.Scopes, " ") != strings.Join(want.Scopes, " ") ||
		!c.IssuedAt.Equal(want.IssuedAt) || !c.NotBefore.Equal(want.NotBefore) || !c.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("claims\n got %+v\nwant %+v", *c, want)
	}
	if c.AppOnly() {
		t.Error("delegated token reported as app-only")
	}

	// v1: appid is the authorized party.
	c, err = v.Verify(context.Background(), mint(t, k0, v1Claims(clk), nil))
	if err != nil {
		t.Fatalf("Verify v1: %v", err)
	}
	if c.AuthorizedParty != testCaller || c.Audience != testAppURI || !c.AppOnly() {
		t.Errorf("v1 claims = %+v", c)
	}
}

func TestVerifyBeforeStartIsUnavailable(t *testing.T) {
	p := newIDP(t, testSigner(0))
	clk := newClock()
	v := p.newVerifier(t, clk, nil)
	_, err := v.Verify(context.Background(), mint(t, testSigner(0), p.appClaims(clk), nil))
	if !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("Verify before Start = %v, want ErrKeysUnavailable", err)
	}
	if v.Ready() {
		t.Error("Ready before Start")
	}
	if p.metaHits.Load() != 0 || p.jwksHits.Load() != 0 {
		t.Error("New or Verify did network I/O before Start")
	}
}

func TestLeewayOption(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, func(o *Options) { o.Leeway = 5 * time.Minute })
	c := p.appClaims(clk)
	c["exp"] = clk.Now().Unix() - 240
	if _, err := v.Verify(context.Background(), mint(t, k0, c, nil)); err != nil {
		t.Errorf("expired 4 min ago with 5 min leeway: %v", err)
	}
	c["exp"] = clk.Now().Unix() - 301
	if _, err := v.Verify(context.Background(), mint(t, k0, c, nil)); Reason(err) != "token expired" {
		t.Errorf("expired 301 s ago with 5 min leeway: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	base := func() Options {
		return Options{TenantID: testTenant, AuthorityHost: "https://login.microsoftonline.com/", ClientID: testClient}
	}
	tests := []struct {
		name    string
		mod     func(*Options)
		wantErr string // substring; "" means valid
	}{
		{name: "defaults", mod: func(*Options) {}},
		{name: "upper-case GUIDs are normalised", mod: func(o *Options) { o.TenantID = strings.ToUpper(testTenant) }},
		{name: "loopback http authority", mod: func(o *Options) { o.AuthorityHost = "http://127.0.0.1:8080" }},
		{name: "tenant missing", mod: func(o *Options) { o.TenantID = "" }, wantErr: "TenantID"},
		{name: "tenant not a GUID", mod: func(o *Options) { o.TenantID = "common" }, wantErr: "TenantID"},
		{name: "client missing", mod: func(o *Options) { o.ClientID = "" }, wantErr: "ClientID"},
		{name: "authority missing", mod: func(o *Options) { o.AuthorityHost = "" }, wantErr: "AuthorityHost"},
		{name: "authority http", mod: func(o *Options) { o.AuthorityHost = "http://login.microsoftonline.com" }, wantErr: "AuthorityHost"},
		{name: "authority relative", mod: func(o *Options) { o.AuthorityHost = "login.microsoftonline.com" }, wantErr: "AuthorityHost"},
		{name: "authority with query", mod: func(o *Options) { o.AuthorityHost = "https://login.microsoftonline.com?x=1" }, wantErr: "AuthorityHost"},
		{name: "app ID URI with a quote", mod: func(o *Options) { o.AppIDURI = `api://x"y` }, wantErr: "AppIDURI"},
		{name: "app ID URI not absolute", mod: func(o *Options) { o.AppIDURI = "weather" }, wantErr: "AppIDURI"},
		{name: "role with a space", mod: func(o *Options) { o.RequiredRole = "a b" }, wantErr: "RequiredRole"},
		{name: "scope with a quote", mod: func(o *Options) { o.RequiredScope = `a"` }, wantErr: "RequiredScope"},
		{name: "leeway 5 min", mod: func(o *Options) { o.Leeway = 5 * time.Minute }},
		{name: "leeway over 5 min", mod: func(o *Options) { o.Leeway = 5*time.Minute + time.Second }, wantErr: "Leeway"},
		{name: "leeway negative", mod: func(o *Options) { o.Leeway = -time.Second }, wantErr: "Leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			tt.mod(&o)
			v, err := New(o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one naming %s", err, tt.wantErr)
			}
			if v != nil {
				t.Error("Verifier returned with an error")
			}
		})
	}

	v, err := New(base())
	if err != nil {
		t.Fatal(err)
	}
	if v.cfg.appIDURI != testAppURI || v.cfg.requiredRole != DefaultRequiredRole ||
		v.cfg.requiredScope != DefaultRequiredScope || v.cfg.leeway != DefaultLeeway ||
		v.cfg.authority != "https://login.microsoftonline.com" || v.cfg.client == nil || v.cfg.client.Timeout != 10*time.Second {
		t.Errorf("defaults not applied: %+v", v.cfg)
	}

	// All problems at once, each naming its field.
	_, err = New(Options{Leeway: time.Hour})
	for _, f := range []string{"TenantID", "ClientID", "AuthorityHost", "Leeway"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("New(empty) error %v does not name %s", err, f)
		}
	}
}
