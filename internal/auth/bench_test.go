package auth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// The benchmarks below are the token half of docs/PERFORMANCE.md: one raw
// RSA verification as the physical floor, and Verify on a token it has
// never seen (the cost a new daemon token pays once), on the same token
// with the cache off, and from the verified-token cache (what every later
// request pays).

// BenchmarkRSAVerify is the baseline: one RSA-2048 PKCS#1 v1.5 SHA-256
// verification of a token's signature over a precomputed digest.
func BenchmarkRSAVerify(b *testing.B) {
	k0 := testSigner(0)
	p := newIDP(b, k0)
	tok := mint(b, k0, p.appClaims(newClock()), nil)
	i := strings.LastIndexByte(tok, '.')
	digest := sha256.Sum256([]byte(tok[:i]))
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &k0.priv.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFresh verifies a token the verifier has not seen: each
// iteration presents the next of 64 distinct tokens to a one-entry cache,
// so every call misses, verifies in full and replaces the entry — the
// whole cost of a new token, cache bookkeeping included.
func BenchmarkVerifyFresh(b *testing.B) {
	k0 := testSigner(0)
	p := newIDP(b, k0)
	clk := newClock()
	v := p.started(b, clk, func(o *Options) { o.CacheSize = 1 })
	toks := make([]string, 64)
	for i := range toks {
		c := p.appClaims(clk)
		c["uti"] = "bench-" + strconv.Itoa(i) // a distinct token per entry
		toks[i] = mint(b, k0, c, nil)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Verify(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerifyNoCache verifies the same token in full every time
// (Options.CacheSize negative): Verify as it was before the cache.
func BenchmarkVerifyNoCache(b *testing.B) {
	k0 := testSigner(0)
	p := newIDP(b, k0)
	clk := newClock()
	v := p.started(b, clk, func(o *Options) { o.CacheSize = -1 })
	tok := mint(b, k0, p.appClaims(clk), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached presents the same token again: a SHA-256 of the
// token, a map lookup and a copy of the claims.
func BenchmarkVerifyCached(b *testing.B) {
	k0 := testSigner(0)
	p := newIDP(b, k0)
	clk := newClock()
	v := p.started(b, clk, nil)
	tok := mint(b, k0, p.appClaims(clk), nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel is the cached path from every core at once
// (the read lock's shared counter is the contended part).
func BenchmarkVerifyCachedParallel(b *testing.B) {
	k0 := testSigner(0)
	p := newIDP(b, k0)
	clk := newClock()
	v := p.started(b, clk, nil)
	tok := mint(b, k0, p.appClaims(clk), nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMiddleware(b *testing.B) {
	k0 := testSigner(0)
	p := newIDP(b, k0)
	clk := newClock()
	v := p.started(b, clk, nil)
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/api/WeatherHttp?city=London", nil)
	r.Header.Set("Authorization", "Bearer "+mint(b, k0, p.appClaims(clk), nil))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
