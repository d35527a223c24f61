package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestC05_KeysFailFirstThenRecover: the JWKS endpoint fails on the first
// fetch and works later. Meanwhile requests get 503 + Retry-After (never an
// accept); afterwards tokens validate without a restart.
func TestC05_KeysFailFirstThenRecover(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	failed := make(chan struct{})
	release := make(chan struct{})
	p.setJWKSHook(func(w http.ResponseWriter, n int64) bool {
		if n == 1 {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusInternalServerError)
			close(failed)
			return true
		}
		<-release // the retry is held until the test has seen the 503
		return false
	})
	clk := newClock()
	v := p.newVerifier(t, clk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.Start(ctx)
	<-failed

	tok := mint(t, k0, p.appClaims(clk), nil)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("Verify while keys are missing = %v, want ErrKeysUnavailable", err)
	}
	r := httptest.NewRequest(http.MethodGet, "/api/WeatherHttp", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	res := through(t, v, r)
	if res.status != http.StatusServiceUnavailable || res.retryAfter == "" || res.reached {
		t.Fatalf("while keys are missing: status %d, Retry-After %q, reached %v", res.status, res.retryAfter, res.reached)
	}
	if ty, _ := res.problem["type"].(string); !strings.HasSuffix(ty, "/auth-unavailable") {
		t.Errorf("problem type = %q", ty)
	}
	if v.Ready() {
		t.Error("Ready with no keys")
	}

	close(release)
	waitReady(t, v)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify after recovery: %v", err)
	}
	if res := through(t, v, r); res.status != http.StatusOK {
		t.Errorf("after recovery: status %d", res.status)
	}
	if got := p.metaHits.Load(); got != 2 {
		t.Errorf("metadata fetched %d times, want 2: only the keys are retried", got)
	}
}

func TestUnknownKIDRefetchIsRateLimited(t *testing.T) {
	k0, k1, k2 := testSigner(0), testSigner(1), testSigner(2)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)
	if got := p.jwksHits.Load(); got != 1 {
		t.Fatalf("keys fetched %d times at start", got)
	}

	// A key rotated in just after start: the first refetch is allowed.
	p.setSigners(k0, k1)
	if _, err := v.Verify(context.Background(), mint(t, k1, p.appClaims(clk), nil)); err != nil {
		t.Fatalf("token signed by the rotated-in key: %v", err)
	}
	if got := p.jwksHits.Load(); got != 2 {
		t.Fatalf("keys fetched %d times, want 2", got)
	}

	// Another new key within 5 minutes: no refetch, refused.
	p.setSigners(k0, k1, k2)
	for range 20 {
		_, err := v.Verify(context.Background(), mint(t, k2, p.appClaims(clk), nil))
		if Reason(err) != "unknown signing key" {
			t.Fatalf("within the rate limit: %v", err)
		}
	}
	if got := p.jwksHits.Load(); got != 2 {
		t.Fatalf("keys fetched %d times within 5 min, want 2", got)
	}

	// 5 minutes later the next miss may refetch again.
	clk.Add(unknownKIDInterval)
	if _, err := v.Verify(context.Background(), mint(t, k2, p.appClaims(clk), nil)); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if got := p.jwksHits.Load(); got != 3 {
		t.Fatalf("keys fetched %d times, want 3", got)
	}
	if _, err := v.Verify(context.Background(), mint(t, k0, p.appClaims(clk), map[string]any{"kid": "nope"})); Reason(err) != "unknown signing key" {
		t.Fatalf("unknown kid right after a refetch: %v", err)
	}
	if got := p.jwksHits.Load(); got != 3 {
		t.Fatalf("keys fetched %d times, want 3", got)
	}
}

func TestConcurrentUnknownKIDMissesShareOneFetch(t *testing.T) {
	k0, k1 := testSigner(0), testSigner(1)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)
	p.setSigners(k0, k1)
	tok := mint(t, k1, p.appClaims(clk), nil)

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Verify: %v", err)
		}
	}
	if got := p.jwksHits.Load(); got != 2 {
		t.Errorf("keys fetched %d times for 32 concurrent misses, want 2 (start + one)", got)
	}
}

func TestUnknownKIDWaitIsBounded(t *testing.T) {
	k0, k1 := testSigner(0), testSigner(1)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)
	v.refetchWait = 10 * time.Millisecond // stands in for the 5 s bound

	hung := make(chan struct{})
	p.setJWKSHook(func(w http.ResponseWriter, n int64) bool {
		<-hung
		return false
	})
	defer close(hung)
	_, err := v.Verify(context.Background(), mint(t, k1, p.appClaims(clk), nil))
	if Reason(err) != "unknown signing key" {
		t.Fatalf("Verify with a hung keys endpoint = %v", err)
	}
	// The old keys still work while the refetch hangs.
	if _, err := v.Verify(context.Background(), mint(t, k0, p.appClaims(clk), nil)); err != nil {
		t.Fatalf("known key during a hung refetch: %v", err)
	}
}

func TestFailedRefreshKeepsLastGoodKeys(t *testing.T) {
	k0, k1 := testSigner(0), testSigner(1)
	bodies := []struct {
		name   string
		status int
		body   string
	}{
		{name: "server error", status: http.StatusInternalServerError, body: "{}"},
		{name: "not JSON", status: http.StatusOK, body: "<html>"},
		{name: "empty key set", status: http.StatusOK, body: `{"keys":[]}`},
		{name: "only an EC key", status: http.StatusOK, body: `{"keys":[{"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`},
	}
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			p := newIDP(t, k0)
			clk := newClock()
			v := p.started(t, clk, nil)
			p.setJWKSHook(func(w http.ResponseWriter, n int64) bool {
				w.WriteHeader(b.status)
				_, _ = w.Write([]byte(b.body))
				return true
			})
			// An unknown kid triggers the refetch, which fails.
			if _, err := v.Verify(context.Background(), mint(t, k1, p.appClaims(clk), nil)); Reason(err) != "unknown signing key" {
				t.Fatalf("unknown kid: %v", err)
			}
			if p.jwksHits.Load() != 2 {
				t.Fatalf("refetch did not happen")
			}
			if _, err := v.Verify(context.Background(), mint(t, k0, p.appClaims(clk), nil)); err != nil {
				t.Fatalf("last good key after a failed refresh: %v", err)
			}
			if !v.Ready() {
				t.Error("not Ready after a failed refresh")
			}
		})
	}
}

// TestC04_GraphTokensCauseNoRefetchStorm: Microsoft Graph tokens (nonce in
// the header, Graph audience, often a kid we do not have) are refused before
// any key lookup, so a flood of them fetches nothing.
func TestC04_GraphTokensCauseNoRefetchStorm(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)

	c := p.appClaims(clk)
	c["aud"] = "https://graph.microsoft.com"
	c["scp"] = "User.Read"
	graph := []string{
		mint(t, testSigner(2), c, map[string]any{"nonce": "pz0Mt3m0V1v", "kid": "graph-kid"}),
		mint(t, testSigner(2), c, map[string]any{"kid": "graph-kid"}),
		mint(t, k0, c, map[string]any{"nonce": "pz0Mt3m0V1v"}),
	}
	r := httptest.NewRequest(http.MethodGet, "/api/WeatherHttp", nil)
	for i := range 300 {
		tok := graph[i%len(graph)]
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Graph token: %v", err)
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		if res := through(t, v, r); res.status != http.StatusUnauthorized || !strings.Contains(res.challenge, `error="invalid_token"`) {
			t.Fatalf("Graph token through Middleware: %d %q", res.status, res.challenge)
		}
	}
	if got := p.jwksHits.Load(); got != 1 {
		t.Errorf("keys fetched %d times, want 1 (start only)", got)
	}
}

func TestPerKeyIssuer(t *testing.T) {
	t.Run("recorded document", func(t *testing.T) {
		body, err := os.ReadFile("testdata/jwks-common-v2-2024-10-with-issuer.json")
		if err != nil {
			t.Fatal(err)
		}
		ks, skipped, err := parseKeySet(body)
		if err != nil || len(skipped) != 0 {
			t.Fatalf("parseKeySet: %v (skipped %v)", err, skipped)
		}
		if len(ks.issuers) != 7 {
			t.Fatalf("parsed %d keys, want 7", len(ks.issuers))
		}
		m := &metadata{
			v2Issuer: "https://login.microsoftonline.com/" + testTenant + "/v2.0",
			v1Issuer: v1Issuer,
		}
		v := &Verifier{cfg: config{tenantID: testTenant}}
		for kid, iss := range ks.issuers {
			consumer := strings.Contains(iss, otherTenant)
			if got := v.keyIssuerAllowed(iss, m); got == consumer {
				t.Errorf("key %s (issuer %s): allowed = %v", kid, iss, got)
			}
		}
	})

	t.Run("key of another tenant never validates ours", func(t *testing.T) {
		ours, theirs, templ := testSigner(0), testSigner(1), testSigner(2)
		p := newIDP(t)
		theirs.issuer = p.srv.URL + "/" + otherTenant + "/v2.0"
		templ.issuer = p.srv.URL + "/{tenantid}/v2.0"
		ours.issuer = p.v2Iss()
		p.setSigners(ours, theirs, templ)
		clk := newClock()
		v := p.started(t, clk, nil)
		for _, tc := range []struct {
			s    signer
			want string
		}{{ours, ""}, {templ, ""}, {theirs, "signing key belongs to another issuer"}} {
			_, err := v.Verify(context.Background(), mint(t, tc.s, p.appClaims(clk), nil))
			if Reason(err) != tc.want {
				t.Errorf("key %s: %v, want %q", tc.s.kid, err, tc.want)
			}
			_, err = v.Verify(context.Background(), mint(t, tc.s, v1Claims(clk), nil))
			if Reason(err) != tc.want {
				t.Errorf("key %s, v1 token: %v, want %q", tc.s.kid, err, tc.want)
			}
		}
	})
}

func TestParseKeySetSkipsUnusableKeys(t *testing.T) {
	good := testSigner(0)
	doc := string(jwksDoc(good))
	doc = strings.TrimSuffix(doc, "]}") + `,
		{"kty":"RSA","use":"enc","kid":"enc","n":"` + b64(good.priv.N.Bytes()) + `","e":"AQAB"},
		{"kty":"RSA","use":"sig","alg":"RS384","kid":"rs384","n":"` + b64(good.priv.N.Bytes()) + `","e":"AQAB"},
		{"kty":"RSA","use":"sig","kid":"short","n":"` + b64(good.priv.N.Bytes()[:64]) + `","e":"AQAB"},
		{"kty":"RSA","use":"sig","kid":"../x","n":"` + b64(good.priv.N.Bytes()) + `","e":"AQAB"},
		{"kty":"RSA","use":"sig","n":"` + b64(good.priv.N.Bytes()) + `","e":"AQAB"},
		{"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
		{"kty":"RSA","use":"sig","kid":"` + good.kid + `","n":"` + b64(testSigner(1).priv.N.Bytes()) + `","e":"AQAB"}
	]}`
	ks, skipped, err := parseKeySet([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.issuers) != 1 || len(skipped) != 7 {
		t.Errorf("kept %d keys, skipped %d (%v); want 1 and 7", len(ks.issuers), len(skipped), skipped)
	}
}

func TestMetadataProblemsKeepVerifierUnready(t *testing.T) {
	tests := []struct {
		name string
		mod  func(p *idp)
	}{
		{name: "v1 metadata missing", mod: func(p *idp) { p.mu.Lock(); p.v1Status = http.StatusNotFound; p.mu.Unlock() }},
		{name: "v2 issuer of another tenant", mod: func(p *idp) {
			p.mu.Lock()
			p.v2Issuer = "https://login.microsoftonline.com/" + otherTenant + "/v2.0"
			p.mu.Unlock()
		}},
		{name: "v2 issuer over http", mod: func(p *idp) {
			p.mu.Lock()
			p.v2Issuer = "http://login.microsoftonline.com/" + testTenant + "/v2.0"
			p.mu.Unlock()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIDP(t, testSigner(0))
			tt.mod(p)
			clk := newClock()
			v := p.newVerifier(t, clk, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			v.Start(ctx)
			deadline := time.Now().Add(20 * time.Second)
			for p.metaHits.Load() < 3 { // a first attempt and a retry
				if time.Now().After(deadline) {
					t.Fatal("no retry")
				}
				time.Sleep(time.Millisecond)
			}
			if v.Ready() {
				t.Fatal("Ready with bad metadata")
			}
			if _, err := v.Verify(ctx, mint(t, testSigner(0), p.appClaims(clk), nil)); !errors.Is(err, ErrKeysUnavailable) {
				t.Errorf("Verify = %v, want ErrKeysUnavailable", err)
			}
		})
	}
}

func TestStartStopsWithContext(t *testing.T) {
	p := newIDP(t, testSigner(0))
	v := p.newVerifier(t, newClock(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	v.Start(ctx)
	v.Start(ctx) // a second Start does nothing
	waitReady(t, v)
	cancel()
	hits := p.metaHits.Load()
	if hits != 2 {
		t.Errorf("metadata fetched %d times by one start, want 2 (v2 + v1)", hits)
	}
}

// TestRefreshFailuresGoToOptionsLogger: a failing keys endpoint is reported
// through Options.Logger and never through slog's global default logger.
func TestRefreshFailuresGoToOptionsLogger(t *testing.T) {
	global := &syncBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(global, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	p := newIDP(t, testSigner(0))
	p.setJWKSHook(func(w http.ResponseWriter, n int64) bool {
		http.Error(w, "down", http.StatusBadGateway)
		return true
	})
	ours := &syncBuffer{}
	v := p.newVerifier(t, newClock(), func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(ours, nil)) })
	ctx, cancel := context.WithCancel(context.Background())
	v.Start(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(ours.String(), "signing keys refresh failed") {
		if time.Now().After(deadline) {
			t.Fatal("no refresh failure logged")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if !strings.Contains(ours.String(), `"level":"ERROR"`) || !strings.Contains(ours.String(), "status 502") {
		t.Errorf("Options.Logger got %q", ours.String())
	}
	if global.String() != "" {
		t.Errorf("global logger got %q", global.String())
	}
}

// TestScheduleBounds pins the key-loading constants to DESIGN §9 and issue
// 3: the timers run on the real clock, so the tests above shorten or
// trigger them rather than wait for them; this guards the values.
func TestScheduleBounds(t *testing.T) {
	switch {
	case refreshInterval > 24*time.Hour:
		t.Errorf("refreshInterval %v > 24 h", refreshInterval)
	case retryMax > 10*time.Second:
		t.Errorf("retryMax %v > 10 s: an empty key set must be retried at least every 10 s", retryMax)
	case unknownKIDInterval != 5*time.Minute:
		t.Errorf("unknownKIDInterval %v, want 5 min", unknownKIDInterval)
	case unknownKIDWait > 5*time.Second:
		t.Errorf("unknownKIDWait %v > 5 s", unknownKIDWait)
	case fetchTimeout > 10*time.Second:
		t.Errorf("fetchTimeout %v > 10 s", fetchTimeout)
	case retryAfter != "10":
		t.Errorf("Retry-After %q, want the 10 s retry bound", retryAfter)
	}
}
