package weather

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serve sends method Path?rawQuery with header to s's handler.
func serve(s *Service, method, rawQuery string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, Path+"?"+rawQuery, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

var etagRE = regexp.MustCompile(`^"[A-Za-z0-9_-]{24}"$`)

// TestETag: a strong tag of the observation's bytes, the same on hits,
// HEAD, stale answers and a refetch of an identical observation; different
// for another representation (units).
func TestETag(t *testing.T) {
	body := readOWM(t, "weather_weather_name.body.json")
	up := newScripted(t, reply{status: 200, body: body})
	clk := newClock()
	s := newTestService(t, up.srv.URL, testKey(t), clk, Options{CacheTTL: time.Minute})

	miss := do(s, "city=London")
	tag := miss.Header().Get("ETag")
	if !etagRE.MatchString(tag) {
		t.Fatalf("ETag = %q, want a strong quoted tag", tag)
	}
	if want := entityTag(miss.Body.Bytes()); tag != want {
		t.Errorf("ETag %s is not the tag of the body (%s)", tag, want)
	}
	steps := []struct {
		name, method, query string
		advance             time.Duration
		then                *reply
		same                bool
	}{
		{"hit", http.MethodGet, "city=london", time.Second, nil, true},
		{"HEAD hit", http.MethodHead, "city=LONDON", 0, nil, true},
		{"other units", http.MethodGet, "city=London&units=imperial", 0, &reply{status: 500}, false},
		{"stale", http.MethodGet, "city=London", 2 * time.Minute, &reply{status: 200, body: body}, true},
		{"refetch of the same observation", http.MethodGet, "city=London", time.Second, nil, true},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		rec := serve(s, st.method, st.query, nil)
		if rec.Code != 200 {
			t.Fatalf("%s: status %d", st.name, rec.Code)
		}
		if got := rec.Header().Get("ETag"); (got == tag) != st.same || !etagRE.MatchString(got) {
			t.Errorf("%s: ETag %q (first %q), want same=%v", st.name, got, tag, st.same)
		}
		if st.then != nil {
			up.set(*st.then)
		}
	}
	if cs := serve(s, http.MethodGet, "city=London", nil).Header().Get("Cache-Status"); !strings.HasPrefix(cs, "weatherhttp; hit; ttl=") {
		t.Errorf("Cache-Status after the refetch = %q", cs)
	}
}

// TestIfNoneMatch: a matching If-None-Match (weak comparison, lists, "*",
// several lines) gets 304 with the cache headers and no body; anything else
// the full 200. Errors ignore it.
func TestIfNoneMatch(t *testing.T) {
	up := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
	clk := newClock()
	s := newTestService(t, up.srv.URL, testKey(t), clk, Options{})
	first := do(s, "city=London")
	tag := first.Header().Get("ETag")
	clk.Advance(30 * time.Second)

	tests := []struct {
		name   string
		method string
		inm    []string
		want   int
	}{
		{"exact", http.MethodGet, []string{tag}, 304},
		{"weak form of ours", http.MethodGet, []string{"W/" + tag}, 304},
		{"in a list", http.MethodGet, []string{`"a", W/"b",` + tag + `, "c"`}, 304},
		{"list without spaces", http.MethodGet, []string{`"a",` + tag}, 304},
		{"on a second line", http.MethodGet, []string{`"a"`, tag}, 304},
		{"star", http.MethodGet, []string{"*"}, 304},
		{"HEAD exact", http.MethodHead, []string{tag}, 304},
		{"other tag", http.MethodGet, []string{`"abc"`}, 200},
		{"unquoted", http.MethodGet, []string{strings.Trim(tag, `"`)}, 200},
		{"malformed before ours", http.MethodGet, []string{`abc, ` + tag}, 200},
		{"unterminated", http.MethodGet, []string{`"` + strings.Trim(tag, `"`)}, 200},
		{"empty", http.MethodGet, []string{""}, 200},
		{"prefix of ours", http.MethodGet, []string{tag[:len(tag)-2] + `"`}, 200},
		{"HEAD other", http.MethodHead, []string{`"x"`}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(s, tc.method, "city=London", http.Header{"If-None-Match": tc.inm})
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			h := rec.Header()
			if h.Get("ETag") != tag || h.Get("Cache-Control") != "private, max-age=600" ||
				h.Get("Cache-Status") != "weatherhttp; hit; ttl=570" || h.Get("Age") != "30" {
				t.Errorf("headers %v", h)
			}
			switch {
			case tc.want == 304 && (rec.Body.Len() != 0 || h.Get("Content-Type") != "" || h.Get("Content-Length") != ""):
				t.Errorf("304 with a body or entity headers: %v %q", h, rec.Body)
			case tc.want == 200 && h.Get("Content-Length") != first.Header().Get("Content-Length"):
				t.Errorf("Content-Length %q, want %q", h.Get("Content-Length"), first.Header().Get("Content-Length"))
			}
		})
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1", n)
	}

	// A miss that matches (the tag is of the bytes, so a client may hold it
	// from before an eviction) is a 304 too.
	s2 := newTestService(t, up.srv.URL, testKey(t), clk, Options{})
	if rec := serve(s2, http.MethodGet, "city=London", http.Header{"If-None-Match": {tag}}); rec.Code != 304 || rec.Header().Get("Cache-Status") != "weatherhttp; fwd=miss" {
		t.Errorf("miss with our tag: status %d, Cache-Status %q", rec.Code, rec.Header().Get("Cache-Status"))
	}
	// Errors are not conditional.
	up404 := newScripted(t, reply{status: 404, body: readOWM(t, "404_city_not_found.body.json")})
	s3 := newTestService(t, up404.srv.URL, testKey(t), clk, Options{})
	if rec := serve(s3, http.MethodGet, "city=Atlantis", http.Header{"If-None-Match": {"*"}}); rec.Code != 404 || rec.Header().Get("ETag") != "" {
		t.Errorf("404 with If-None-Match *: status %d, ETag %q", rec.Code, rec.Header().Get("ETag"))
	}
}

// TestCacheControl: 200s are private and fresh for exactly as long as our
// entry (max-age counts from generation, so it is Age plus the seconds
// left); stale answers are not fresh; errors are no-store.
func TestCacheControl(t *testing.T) {
	up := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
	clk := newClock()
	s := newTestService(t, up.srv.URL, testKey(t), clk, Options{CacheTTL: 10 * time.Minute, MaxStale: time.Hour})
	steps := []struct {
		name         string
		advance      time.Duration
		query        string
		then         *reply
		status       int
		cacheControl string
		age          string
		clientFresh  int // max-age minus Age: what a client honouring Age keeps it
	}{
		{"miss", 0, "city=London", nil, 200, "private, max-age=600", "", 600},
		{"hit", 90*time.Second + 500*time.Millisecond, "city=London", nil, 200, "private, max-age=599", "90", 509},
		{"last second", 509 * time.Second, "city=London", &reply{status: 500}, 200, "private, max-age=599", "599", 0},
		{"stale", time.Second, "city=London", nil, 200, "private, max-age=0", "600", -600},
		{"error", 0, "city=Paris", nil, 502, "no-store", "", 0},
		{"bad input", 0, "city=", nil, 400, "no-store", "", 0},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		rec := do(s, st.query)
		if rec.Code != st.status {
			t.Fatalf("%s: status %d, want %d", st.name, rec.Code, st.status)
		}
		if got := rec.Header().Get("Cache-Control"); got != st.cacheControl {
			t.Errorf("%s: Cache-Control = %q, want %q", st.name, got, st.cacheControl)
		}
		if got := rec.Header().Get("Age"); got != st.age {
			t.Errorf("%s: Age = %q, want %q", st.name, got, st.age)
		}
		if st.status == 200 {
			maxAge, _ := strconv.Atoi(strings.TrimPrefix(rec.Header().Get("Cache-Control"), "private, max-age="))
			age, _ := strconv.Atoi(rec.Header().Get("Age"))
			if maxAge-age != st.clientFresh {
				t.Errorf("%s: a client keeps it fresh %d s, want %d", st.name, maxAge-age, st.clientFresh)
			}
		}
		if st.then != nil {
			up.set(*st.then)
		}
	}
	if got := cacheControl(CacheState{Hit: true, TTL: 500 * time.Millisecond, Age: 599*time.Second + 500*time.Millisecond}, 10*time.Minute); got != "private, max-age=599" {
		t.Errorf("sub-second freshness left: %q (the client must not keep it longer than we do)", got)
	}
}

// TestHEADHasNoBody: HEAD gets GET's status and headers, errors included,
// and no body.
func TestHEADHasNoBody(t *testing.T) {
	up := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
	s := newTestService(t, up.srv.URL, testKey(t), newClock(), Options{})
	for _, q := range []string{"city=London", "city=", "city=%zz", "units=kelvin&city=London"} {
		get := serve(s, http.MethodGet, q, nil)
		head := serve(s, http.MethodHead, q, nil)
		if head.Code != get.Code || head.Body.Len() != 0 {
			t.Errorf("%q: HEAD status %d (GET %d), %d body bytes", q, head.Code, get.Code, head.Body.Len())
		}
		for _, k := range []string{"Content-Type", "Content-Length", "ETag", "Cache-Control"} {
			if head.Header().Get(k) != get.Header().Get(k) {
				t.Errorf("%q: HEAD %s = %q, GET %q", q, k, head.Header().Get(k), get.Header().Get(k))
			}
		}
	}
}

// FuzzETagMatches: whatever the If-None-Match lines, the parser does not
// panic, and it reports a match only when the input holds our tag or "*".
func FuzzETagMatches(f *testing.F) {
	tag := entityTag([]byte(`{"units":"metric"}`))
	for _, seed := range []string{tag, "W/" + tag, "*", `"a", ` + tag, `"a",W/"b"`, `"`, `W/`, `,,,`, "\t" + tag + " ,", `"a"` + tag} {
		f.Add(seed, "")
	}
	f.Add(`"a"`, tag)
	f.Fuzz(func(t *testing.T, a, b string) {
		lines := []string{a, b}
		got := etagMatches(lines, tag)
		if got && !strings.Contains(a+"\n"+b, tag) && !strings.Contains(a+"\n"+b, "*") {
			t.Fatalf("match without our tag or *: %q", lines)
		}
		if !etagMatches([]string{a, tag}, tag) && !etagMatches([]string{tag, a}, tag) {
			t.Fatalf("our tag on its own line did not match (with %q)", a)
		}
		if !etagMatches([]string{tag}, tag) || !etagMatches([]string{"W/" + tag}, tag) {
			t.Fatal("our own tag did not match")
		}
	})
}
