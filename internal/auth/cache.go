package auth

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// DefaultCacheSize is the number of verified tokens a Verifier remembers
// when Options.CacheSize is zero.
const DefaultCacheSize = 10_000

// tokenHash is the SHA-256 of a whole compact token: the cache key. The
// token itself is never stored.
type tokenHash [sha256.Size]byte

// verified is one token that passed every check of Verify.
type verified struct {
	claims *Claims // never handed out: lookups return a copy
	// meta and keys are the metadata and key set the token was verified
	// against. An entry is used only while both are still the current
	// ones: any reload of either (a scheduled refresh, an unknown-kid
	// refetch) retires every entry at once, including those whose key was
	// dropped or whose key's published issuer changed.
	meta *metadata
	keys *keySet
	kid  string // the signing key, for the record (keys covers it)
}

// tokenCache remembers verified tokens by the SHA-256 of their text, so that
// a daemon presenting the same token again and again costs a hash and a map
// lookup instead of an RSA verification. It is bounded: when full, an
// arbitrary entry (Go's randomised map iteration order) is evicted.
//
// Why this is not a timing oracle: the lookup compares 32-byte SHA-256
// digests, never token bytes. How long it takes can depend only on the
// digest of the presented token, which the presenter already knows, and on
// how many leading digest bytes it shares with a cached digest. Learning
// that tells nothing usable: producing a token whose digest shares more
// bytes with a cached one is a SHA-256 preimage search, and only the exact
// token (a collision otherwise) hashes to the full digest. A hit returns
// what Verify returned for those exact bytes, so the cache can only repeat
// an earlier acceptance, never produce a new one.
type tokenCache struct {
	mu    sync.RWMutex
	limit int
	m     map[tokenHash]*verified
}

func newTokenCache(limit int) *tokenCache {
	if limit <= 0 {
		return nil
	}
	return &tokenCache{limit: limit, m: make(map[tokenHash]*verified, min(limit, 1024))}
}

// get returns a copy of the claims cached under h when the entry is still
// valid at now for the current metadata m and key set ks: m and ks are the
// ones it was verified with, and the token has not reached exp.
//
// NOTE: stricter than Verify: a cached acceptance ends at exp itself, not at
// exp+Leeway. A token in its leeway tail is verified in full on every
// request. nbf and iat are checked again with the leeway, so a clock that
// steps back cannot make the cache accept what Verify would refuse.
func (c *tokenCache) get(h tokenHash, now time.Time, leeway time.Duration, m *metadata, ks *keySet) (*Claims, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.m[h]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	cl := e.claims
	if e.meta != m || e.keys != ks || !now.Before(cl.ExpiresAt) ||
		now.Add(leeway).Before(cl.NotBefore) || now.Add(leeway).Before(cl.IssuedAt) {
		c.remove(h, e)
		return nil, false
	}
	return cl.clone(), true
}

// put remembers that the token hashing to h was verified with claims
// against m and ks, evicting an arbitrary entry when the cache is full. A
// token already past exp is not remembered.
func (c *tokenCache) put(h tokenHash, claims *Claims, now time.Time, m *metadata, ks *keySet, kid string) {
	if c == nil || ks == nil || !now.Before(claims.ExpiresAt) {
		return
	}
	e := &verified{claims: claims.clone(), meta: m, keys: ks, kid: kid}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[h]; !ok && len(c.m) >= c.limit {
		for k := range c.m { // a random start: random eviction
			delete(c.m, k)
			break
		}
	}
	c.m[h] = e
}

// remove deletes the entry under h if it is still e.
func (c *tokenCache) remove(h tokenHash, e *verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[h] == e {
		delete(c.m, h)
	}
}

// len is the number of entries (for tests).
func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// clone returns a copy of c that shares nothing mutable with it, so a
// caller changing its claims cannot change what the cache hands out next.
func (c *Claims) clone() *Claims {
	d := *c
	d.Roles = slices.Clone(c.Roles)
	d.Scopes = slices.Clone(c.Scopes)
	return &d
}
