package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// cached reports whether v's verified-token cache would accept tok now.
func cached(v *Verifier, now time.Time, tok string) bool {
	_, ok := v.cache.get(sha256.Sum256([]byte(tok)), now, v.cfg.leeway, v.meta.Load(), v.keys.Load())
	return ok
}

func TestCacheRepeatsTheSameClaims(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)
	tok := mint(t, k0, p.appClaims(clk), nil)
	ctx := context.Background()

	first, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !cached(v, clk.Now(), tok) {
		t.Fatal("verified token not cached")
	}
	again, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify (cached): %v", err)
	}
	if !reflect.DeepEqual(first, again) {
		t.Errorf("cached claims differ:\n%+v\n%+v", first, again)
	}
	// The caller owns what it gets: changing it changes nothing cached.
	again.Roles[0] = "admin"
	again.Scopes = append(again.Scopes, "x")
	third, err := v.Verify(ctx, tok)
	if err != nil || third.Roles[0] != DefaultRequiredRole || len(third.Scopes) != 0 {
		t.Errorf("cache handed out shared claims: %+v (%v)", third, err)
	}
	if err := v.Authorize(third); err != nil {
		t.Errorf("Authorize(cached claims): %v", err)
	}
	if n := v.cache.len(); n != 1 {
		t.Errorf("cache holds %d entries, want 1", n)
	}
}

// TestCacheNeverAcceptsExpiredToken: a cached acceptance ends at exp; the
// leeway tail is verified in full each time, and past it the token is refused.
func TestCacheNeverAcceptsExpiredToken(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)
	claims := p.appClaims(clk)
	claims["exp"] = clk.Now().Unix() + 10
	tok := mint(t, k0, claims, nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !cached(v, clk.Now(), tok) {
		t.Fatal("not cached")
	}
	clk.Add(10 * time.Second) // at exp: inside the 60 s leeway
	if cached(v, clk.Now(), tok) {
		t.Error("cache accepts a token at its exp")
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Errorf("Verify inside the leeway: %v", err)
	}
	if cached(v, clk.Now(), tok) {
		t.Error("a token past exp was cached")
	}
	clk.Add(DefaultLeeway) // past exp+leeway
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) || Reason(err) != "token expired" {
		t.Errorf("Verify past exp+leeway = %v, want token expired", err)
	}
}

// TestCacheClockSteppingBack: nbf is checked again on a hit.
func TestCacheClockSteppingBack(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)
	claims := p.appClaims(clk)
	claims["nbf"] = clk.Now().Unix()
	tok := mint(t, k0, claims, nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if cached(v, clk.Now().Add(-DefaultLeeway-time.Second), tok) {
		t.Error("cache accepts a token before nbf-leeway")
	}
}

// TestCacheNeverAcceptsTokenOfRemovedKey: once the key set no longer holds
// the token's key, the cached acceptance is gone and the token is refused.
func TestCacheNeverAcceptsTokenOfRemovedKey(t *testing.T) {
	k0, k1 := testSigner(0), testSigner(1)
	p := newIDP(t, k0, k1)
	clk := newClock()
	v := p.started(t, clk, nil)
	ctx := context.Background()
	tok := mint(t, k0, p.appClaims(clk), nil)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// k0 is rotated out; a token under a new kid makes the verifier refetch.
	k2 := testSigner(2)
	p.setSigners(k1, k2)
	if _, err := v.Verify(ctx, mint(t, k2, p.appClaims(clk), nil)); err != nil {
		t.Fatalf("Verify (new key): %v", err)
	}
	if cached(v, clk.Now(), tok) {
		t.Error("cache accepts a token whose key left the key set")
	}
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) || Reason(err) != "unknown signing key" {
		t.Errorf("Verify = %v, want unknown signing key", err)
	}
}

// TestCacheRetiredOnEveryReload: any new key set retires cached entries,
// even when the token's key stays (then the token verifies again in full).
func TestCacheRetiredOnEveryReload(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)
	ctx := context.Background()
	tok := mint(t, k0, p.appClaims(clk), nil)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Same kid, different key: a re-keyed kid must not keep the old acceptance.
	rekeyed := signer{kid: k0.kid, priv: testSigner(1).priv}
	p.setSigners(rekeyed)
	if err := v.loadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if cached(v, clk.Now(), tok) {
		t.Error("cache survived a key-set reload")
	}
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) || Reason(err) != "signature invalid" {
		t.Errorf("Verify after re-keying = %v, want signature invalid", err)
	}
	// A reload that keeps the key: verified in full, then cached again.
	p.setSigners(k0)
	if err := v.loadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Errorf("Verify after reload: %v", err)
	}
	if !cached(v, clk.Now(), tok) {
		t.Error("not cached again after reload")
	}
}

// TestCacheNeverAcceptsTokenDifferingInOneByte changes, drops or adds one
// byte at every position of a cached token: none is accepted, from the
// cache or otherwise.
func TestCacheNeverAcceptsTokenDifferingInOneByte(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)
	ctx := context.Background()
	tok := mint(t, k0, p.appClaims(clk), nil)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	variants := []struct{ name, tok string }{
		{"one byte appended", tok + "A"},
		{"last byte dropped", tok[:len(tok)-1]},
		{"first byte dropped", tok[1:]},
	}
	for i := 0; i < len(tok); i++ {
		c := byte('A')
		if tok[i] == 'A' {
			c = 'B'
		}
		variants = append(variants, struct{ name, tok string }{"byte changed", tok[:i] + string(c) + tok[i+1:]})
	}
	for i, vt := range variants {
		if cached(v, clk.Now(), vt.tok) {
			t.Errorf("%s (%d): accepted from the cache", vt.name, i)
		}
		if _, err := v.Verify(ctx, vt.tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s (%d): Verify = %v, want ErrInvalidToken", vt.name, i, err)
		}
	}
	if n := v.cache.len(); n != 1 {
		t.Errorf("cache holds %d entries, want only the valid token", n)
	}
}

func TestCacheSizeOption(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	ctx := context.Background()
	toks := make([]string, 5)
	for i := range toks {
		c := p.appClaims(clk)
		c["jti"] = strings.Repeat("j", i+1)
		toks[i] = mint(t, k0, c, nil)
	}
	tests := []struct {
		name string
		size int
		want int // entries after verifying every token
	}{
		{"zero is the default size", 0, len(toks)},
		{"bounded: evicts when full", 2, 2},
		{"negative is off", -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := p.started(t, clk, func(o *Options) { o.CacheSize = tt.size })
			for range 2 {
				for _, tok := range toks {
					if _, err := v.Verify(ctx, tok); err != nil {
						t.Fatalf("Verify: %v", err)
					}
				}
			}
			if n := v.cache.len(); n != tt.want {
				t.Errorf("cache holds %d entries, want %d", n, tt.want)
			}
			if tt.size == 0 && v.cache.limit != DefaultCacheSize {
				t.Errorf("limit = %d, want %d", v.cache.limit, DefaultCacheSize)
			}
		})
	}
}

// TestCacheConcurrent exercises hits, misses, inserts and a key reload at
// once (for the race detector).
func TestCacheConcurrent(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, func(o *Options) { o.CacheSize = 3 })
	ctx := context.Background()
	toks := make([]string, 4)
	for i := range toks {
		c := p.appClaims(clk)
		c["jti"] = strings.Repeat("j", i+1)
		toks[i] = mint(t, k0, c, nil)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := v.Verify(ctx, toks[(g+i)%len(toks)]); err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		if err := v.loadKeys(ctx); err != nil {
			t.Errorf("loadKeys: %v", err)
		}
	})
	wg.Wait()
}
