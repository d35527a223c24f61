package loadtest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a tiny handler for TestColdStart.
const helperEnv = "LOADTEST_TEST_HANDLER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		serveHelper()
		return
	}
	os.Exit(m.Run())
}

// serveHelper answers GET / at once and the API with 503 for its first two
// requests, then 200 to the right token (what a handler loading its keys
// does).
func serveHelper() {
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("GET /api/WeatherHttp", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 || r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv(PortSetting), mux)
}

func TestColdStart(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ColdStart(context.Background(), ColdOptions{
		Launch:   Launch{Exe: exe, Dir: t.TempDir(), Env: []string{helperEnv + "=1", PortSetting + "=1"}},
		Launches: 3,
		Path:     "/api/WeatherHttp?city=London",
		Token:    "tok",
		Timeout:  20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Samples) != 3 {
		t.Fatalf("%d samples", len(res.Samples))
	}
	for _, s := range res.Samples {
		if s.FirstAnswer <= 0 || s.Authenticated < s.FirstAnswer {
			t.Errorf("sample %+v", s)
		}
	}
	if res.FirstAnswer.Min > res.FirstAnswer.Median || res.FirstAnswer.Median > res.FirstAnswer.Max {
		t.Errorf("spread %+v", res.FirstAnswer)
	}
	if _, err := ColdStart(context.Background(), ColdOptions{Launches: 0}); err == nil {
		t.Error("0 launches accepted")
	}
}

func TestRun(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if r.Header.Get("Authorization") != "Bearer a" && r.Header.Get("Authorization") != "Bearer b" {
			t.Errorf("Authorization %q", r.Header.Get("Authorization"))
		}
		if n%10 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{URL: srv.URL, Tokens: []string{"a", "b"}, Concurrency: 4, Duration: 20 * time.Second, MaxRequests: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || hits.Load() != 200 {
		t.Errorf("requests %d, server saw %d, want 200", res.Requests, hits.Load())
	}
	if res.Errors != 20 || res.Statuses[503] != 20 || res.Statuses[200] != 180 {
		t.Errorf("errors %d, statuses %v", res.Errors, res.Statuses)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.RequestsPerSecond() <= 0 {
		t.Errorf("latency %+v, %f/s", res.Latency, res.RequestsPerSecond())
	}
}

func TestRunRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"non-loopback host", Options{URL: "http://example.com/api/WeatherHttp"}, "not a loopback address"},
		{"private address", Options{URL: "http://10.0.0.1:7071/"}, "not a loopback address"},
		{"not http", Options{URL: "ftp://127.0.0.1/"}, "not an absolute http(s) URL"},
		{"duration too long", Options{URL: "http://127.0.0.1:1/", Duration: MaxDuration + time.Second}, "duration"},
		{"concurrency too high", Options{URL: "http://127.0.0.1:1/", Concurrency: MaxConcurrency + 1}, "concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestLoopbackClientRefusesOtherAddresses: the dialer checks the resolved
// address, so a name that resolves elsewhere cannot slip through.
func TestLoopbackClientRefusesOtherAddresses(t *testing.T) {
	c := LoopbackClient(1, 2*time.Second)
	_, err := c.Get("http://192.0.2.1:9/") // TEST-NET-1: refused before any packet
	if !errors.Is(err, errNotLoopback) {
		t.Errorf("Get = %v, want errNotLoopback", err)
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := Summarize(d)
	if p.P50 != 50*time.Millisecond || p.P90 != 90*time.Millisecond || p.P99 != 99*time.Millisecond || p.Max != 100*time.Millisecond {
		t.Errorf("Summarize = %+v", p)
	}
	if (Summarize(nil) != Percentiles{}) {
		t.Error("empty input")
	}
	one := Summarize([]time.Duration{time.Second})
	if one.P50 != time.Second || one.P99 != time.Second {
		t.Errorf("one sample: %+v", one)
	}
	s := spreadOf([]time.Duration{4, 1, 3, 2})
	if s.Min != 1 || s.Median != 2 || s.Max != 4 { // (2+3)/2 in integer nanoseconds
		t.Errorf("spreadOf = %+v", s)
	}
}

func TestParseStatus(t *testing.T) {
	doc := "Name:\thandler\nPPid:\t42\nVmPeak:\t  800000 kB\nVmHWM:\t   17824 kB\nVmRSS:\t   17100 kB\nThreads:\t7\n"
	m, err := parseStatus(strings.NewReader(doc))
	if err != nil || m.PeakRSS != 17824<<10 || m.RSS != 17100<<10 {
		t.Errorf("parseStatus = %+v, %v", m, err)
	}
	for _, bad := range []string{"Name:\tx\n", "VmHWM:\t12 MB\nVmRSS:\t1 kB\n", "VmHWM:\t-1 kB\nVmRSS:\t1 kB\n"} {
		if _, err := parseStatus(strings.NewReader(bad)); err == nil {
			t.Errorf("parseStatus(%q) accepted", bad)
		}
	}
	if _, err := ReadMemory(os.Getpid()); err != nil {
		t.Errorf("ReadMemory(self): %v", err)
	}
}

func TestFindChild(t *testing.T) {
	proc := t.TempDir()
	mk := func(pid, ppid int, exe string) {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte("Name:\tx\nPPid:\t"+strconv.Itoa(ppid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
			t.Fatal(err)
		}
	}
	mk(10, 1, "/tmp/devstack-1/app/handler")  // not our child
	mk(11, 7, "/usr/bin/go")                  // our child, another binary
	mk(12, 7, "/tmp/devstack-2/app/handler")  // the one
	mk(13, 12, "/tmp/devstack-2/app/handler") // a grandchild
	if pid, err := findChild(proc, 7, "handler"); err != nil || pid != 12 {
		t.Errorf("findChild = %d, %v; want 12", pid, err)
	}
	if _, err := findChild(proc, 8, "handler"); err == nil {
		t.Error("found a child of a process without children")
	}
	mk(14, 7, "/tmp/devstack-3/app/handler (deleted)")
	if _, err := findChild(proc, 7, "handler"); err == nil {
		t.Error("two candidates: want an error")
	}
}

func TestReadLaunch(t *testing.T) {
	l, err := ReadLaunch(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	wd, _ := os.Getwd()
	if l.Exe != exe || l.Dir != wd || len(l.Env) == 0 {
		t.Errorf("ReadLaunch = %q %q %d vars; want %q %q", l.Exe, l.Dir, len(l.Env), exe, wd)
	}
}
