package weather

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/owm"
	"github.com/weatherfunc/handler/internal/secrets"
	"github.com/weatherfunc/handler/internal/testutil"
)

// testKey returns a fresh, recognizable API key for one test. It is generated
// at run time, so no key is ever written in the source.
func testKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "owmkey-LEAKCANARY-" + hex.EncodeToString(b)
}

// readOWM reads a recorded OpenWeatherMap body from testdata/owm.
func readOWM(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "owm", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clock is an injectable clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// reply is one scripted upstream answer.
type reply struct {
	status int
	body   []byte
	header http.Header
}

// scripted is a loopback OpenWeatherMap that answers from a script (the last
// reply repeats) and records what it was asked.
type scripted struct {
	srv   *httptest.Server
	mu    sync.Mutex
	reps  []reply
	reqs  []*http.Request
	calls atomic.Int64
}

func newScripted(t *testing.T, reps ...reply) *scripted {
	t.Helper()
	s := &scripted{reps: reps}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		rep := s.reps[0]
		if len(s.reps) > 1 {
			s.reps = s.reps[1:]
		}
		s.mu.Unlock()
		if r.URL.Path != "/data/2.5/weather" {
			t.Errorf("upstream path = %q", r.URL.Path)
		}
		for k, vs := range rep.header {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) set(reps ...reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reps = reps
}

func (s *scripted) lastRequest() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return nil
	}
	return s.reqs[len(s.reqs)-1]
}

// standIn starts the real OpenWeatherMap stand-in on loopback.
func standIn(t *testing.T, key string) (*owm.Server, string) {
	t.Helper()
	o := owm.New(owm.Options{APIKey: key})
	srv := httptest.NewServer(o.Handler())
	t.Cleanup(srv.Close)
	return o, srv.URL
}

// newTestService builds a Service against baseURL with key, a test clock and
// a generous rate limit unless opts says otherwise.
func newTestService(t testing.TB, baseURL, key string, clk *clock, opts Options) *Service {
	t.Helper()
	opts.BaseURL = baseURL
	if opts.APIKey == nil {
		opts.APIKey = secrets.Ready(secrets.New(key))
	}
	if opts.Now == nil && clk != nil {
		opts.Now = clk.Now
	}
	if opts.RatePerMinute == 0 {
		opts.RatePerMinute = 6000
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends GET Path?rawQuery to s's handler.
func do(s *Service, rawQuery string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path+"?"+rawQuery, nil))
	return rec
}

// problemBody decodes a problem+json reply.
type problemBody struct {
	Type          string `json:"type"`
	Title         string `json:"title"`
	Status        int    `json:"status"`
	Detail        string `json:"detail"`
	InvalidParams []struct {
		Name   string `json:"name"`
		Reason string `json:"reason"`
	} `json:"invalid-params"`
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) problemBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Errorf("problem body %q: %v", rec.Body.String(), err)
	}
	return p
}

type syncBuffer = testutil.SyncBuffer

func debugLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
