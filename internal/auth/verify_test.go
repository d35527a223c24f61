package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestVerifyEmptyToken: an empty string is refused before anything else
// (Middleware never passes one: "Bearer" alone is a 400). The attack suite,
// with every other refusal, is TestAttackSuite in attack_test.go.
func TestVerifyEmptyToken(t *testing.T) {
	p := newIDP(t, testSigner(0))
	v := p.started(t, newClock(), nil)
	c, err := v.Verify(context.Background(), "")
	if !errors.Is(err, ErrInvalidToken) || c != nil || Reason(err) != "empty token" {
		t.Errorf("Verify(\"\") = %v, %v", c, err)
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
