package weather

import (
	"container/list"
	"math"
	"strconv"
	"sync"
	"time"
)

// entry is one cached answer for a cache key. It is immutable once stored,
// so readers share it without copying.
type entry struct {
	key        string
	body       []byte // our JSON for the observation, encoded once at store time; nil when notFound
	etag       string // strong entity tag of body (see entityTag); "" when notFound
	notFound   bool   // a negative entry: the provider knows no such location
	stored     time.Time
	expires    time.Time // fresh until
	staleUntil time.Time // may stand in for a failed upstream call until (== expires for negative entries)
}

// lru is a bounded map of entries with least-recently-used eviction. Entries
// past their staleUntil are dropped when met.
type lru struct {
	mu    sync.Mutex
	limit int
	ll    *list.List // front = most recently used; values are *entry
	m     map[string]*list.Element
}

func newLRU(limit int) *lru {
	return &lru{limit: limit, ll: list.New(), m: make(map[string]*list.Element)}
}

// get returns the entry for key if it is still fresh or usable as stale at now.
func (c *lru) get(key string, now time.Time) (*entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.staleUntil) {
		c.ll.Remove(el)
		delete(c.m, key)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return e, true
}

// put stores e, replacing any entry for its key, and evicts the least
// recently used entries beyond the limit.
func (c *lru) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[e.key]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.m[e.key] = c.ll.PushFront(e)
	for c.ll.Len() > c.limit {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*entry).key)
	}
}

// CacheState says how the cache took part in an answer.
type CacheState struct {
	// Hit is true when the answer came from the cache (fresh or stale).
	Hit bool
	// Stale is true when an expired observation stood in for a failed upstream call.
	Stale bool
	// TTL is the freshness left on a hit (negative when Stale).
	TTL time.Duration
	// Age is how long ago the cached answer was fetched (hits only).
	Age time.Duration
}

// hitState describes serving e at now.
func hitState(e *entry, now time.Time) CacheState {
	ttl := e.expires.Sub(now)
	return CacheState{Hit: true, Stale: ttl <= 0, TTL: ttl, Age: max(now.Sub(e.stored), 0)}
}

// CacheStatus renders the RFC 9211 Cache-Status field value under our cache
// name: "weatherhttp; hit; ttl=42", "weatherhttp; hit; ttl=-5; detail=stale"
// or "weatherhttp; fwd=miss".
func (c CacheState) CacheStatus() string {
	if !c.Hit {
		return CacheName + "; fwd=miss"
	}
	// Floor keeps a fresh answer at ttl >= 0 and a stale one at ttl <= -1.
	ttl := int64(math.Floor(c.TTL.Seconds()))
	if c.Stale {
		return CacheName + "; hit; ttl=" + strconv.FormatInt(min(ttl, -1), 10) + "; detail=stale"
	}
	return CacheName + "; hit; ttl=" + strconv.FormatInt(ttl, 10)
}

// AgeSeconds is the value of the Age header (RFC 9111 §5.1) on a hit.
func (c CacheState) AgeSeconds() string {
	return strconv.FormatInt(int64(c.Age/time.Second), 10)
}

// CacheName is the cache's name in Cache-Status.
const CacheName = "weatherhttp"
