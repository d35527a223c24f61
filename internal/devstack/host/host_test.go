package host

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/testutil"
)

type lockedBuffer = testutil.SyncBuffer

// clock is an injected clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

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

// raceNoExitSleep spares each exit of the race-enabled fake handler the race
// runtime's default one-second pause.
const raceNoExitSleep = "GORACE=atexit_sleep_ms=0"

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

type appSpec struct {
	forwarding   bool
	timeout      string // functionTimeout; "" = default
	extraTimers  bool   // the misbehaving timer functions
	noHTTPRoutes bool
}

// newApp lays out an app root like the project's: host.json, function
// folders and "handler" (a symlink to this test binary).
func newApp(t *testing.T, spec appSpec) string {
	t.Helper()
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	timeout := ""
	if spec.timeout != "" {
		timeout = `"functionTimeout": "` + spec.timeout + `",`
	}
	fwd := "false"
	if spec.forwarding {
		fwd = "true"
	}
	write("host.json", `{
  "version": "2.0", `+timeout+`
  "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
  "customHandler": {"description": {"defaultExecutablePath": "handler", "workingDirectory": "", "arguments": []},
                    "enableForwardingHttpRequest": `+fwd+`}
}`)
	if !spec.noHTTPRoutes {
		write("WeatherHttp/function.json", `{"bindings":[
  {"authLevel":"anonymous","type":"httpTrigger","direction":"in","name":"req","methods":["get","post"]},
  {"type":"http","direction":"out","name":"res"}]}`)
		write("Weather/function.json", `{"bindings":[
  {"authLevel":"anonymous","type":"httpTrigger","direction":"in","name":"req","methods":["get"],"route":"weather/{city:alpha}"},
  {"type":"http","direction":"out","name":"res"}]}`)
	}
	write("CallerTimer/function.json", `{"bindings":[{"name":"myTimer","type":"timerTrigger","direction":"in","schedule":"%CALLER_SCHEDULE%"}]}`)
	if spec.extraTimers {
		for _, name := range []string{"Timer500", "TimerText", "TimerNoType", "TimerBadJSON", "TimerSlow"} {
			write(name+"/function.json", `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 0 0 1 1 *"}]}`)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(root, "handler")); err != nil {
		t.Fatal(err)
	}
	return root
}

type started struct {
	h              *Host
	stdout, stderr *lockedBuffer
	clock          *clock
	root           string
}

func start(t *testing.T, spec appSpec, mode string, tweak func(*Options)) started {
	t.Helper()
	s := started{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, root: newApp(t, spec),
		clock: &clock{t: time.Date(2024, 5, 14, 15, 14, 15, 128919000, time.UTC)}}
	opts := Options{
		AppRoot: s.root,
		Env:     []string{fakeModeEnv + "=" + mode, raceNoExitSleep, "CALLER_SCHEDULE=0 */5 * * * *"},
		Addr:    "127.0.0.1:0",
		Stdout:  s.stdout,
		Stderr:  s.stderr,
		Now:     s.clock.Now,
	}
	if tweak != nil {
		tweak(&opts)
	}
	h, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v\nstdout:\n%s\nstderr:\n%s", err, s.stdout, s.stderr)
	}
	t.Cleanup(func() { _ = h.Close() })
	s.h = h
	return s
}

// eventually waits (bounded) for cond; for output that arrives through pipes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawClient never follows redirects and never decompresses.
var rawClient = &http.Client{
	Transport:     &http.Transport{DisableCompression: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func newReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestStartReadinessPolling(t *testing.T) {
	// The fake listens only after 300 ms: the host keeps polling GET /.
	s := start(t, appSpec{forwarding: true}, "slow-ready", nil)
	res, _ := do(t, newReq(t, "GET", s.h.URL()+"/api/WeatherHttp", nil))
	if res.StatusCode != 200 {
		t.Errorf("status = %d", res.StatusCode)
	}
	if !strings.HasPrefix(s.h.URL(), "http://127.0.0.1:") {
		t.Errorf("URL = %q", s.h.URL())
	}
	// Handler output, with the host's levels.
	eventually(t, "handler output", func() bool {
		return strings.Contains(s.stdout.String(), "[Information] fake handler listening on") &&
			strings.Contains(s.stderr.String(), "[Warning] warning: this is a fake handler") &&
			strings.Contains(s.stderr.String(), "[Error] an error line")
	})
	if !strings.Contains(s.stdout.String(), "Handler ready on port") {
		t.Errorf("stdout:\n%s", s.stdout)
	}
}

func TestStartHandlerExitsBeforeReady(t *testing.T) {
	root := newApp(t, appSpec{})
	var stderr lockedBuffer
	_, err := Start(context.Background(), Options{AppRoot: root, Addr: "127.0.0.1:0", Env: []string{fakeModeEnv + "=exit-early", raceNoExitSleep, "CALLER_SCHEDULE=0 */5 * * * *"},
		Stdout: io.Discard, Stderr: &stderr})
	if err == nil {
		t.Fatal("Start succeeded")
	}
	for _, want := range []string{"exited before it was ready", "exit status 3", "WEATHER_API_KEY is not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStartHandlerNeverReady(t *testing.T) {
	root := newApp(t, appSpec{})
	_, err := Start(context.Background(), Options{AppRoot: root, Addr: "127.0.0.1:0", Env: []string{fakeModeEnv + "=never-listen", raceNoExitSleep, "CALLER_SCHEDULE=0 */5 * * * *"},
		Stdout: io.Discard, Stderr: io.Discard, ReadyTimeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "did not answer GET / within 300ms") {
		t.Errorf("err = %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(root string)
		want  string
	}{
		{"missing executable", func(root string) { _ = os.Remove(filepath.Join(root, "handler")) }, "handler executable"},
		{"bad schedule", func(root string) {
			_ = os.WriteFile(filepath.Join(root, "CallerTimer", "function.json"), []byte(`{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"*/5 * * * *"}]}`), 0o644)
		}, "want 6 fields"},
		{"schedule that never fires", func(root string) {
			_ = os.WriteFile(filepath.Join(root, "CallerTimer", "function.json"), []byte(`{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 0 0 31 2 *"}]}`), 0o644)
		}, "never fires"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := newApp(t, appSpec{})
			tc.setup(root)
			_, err := Start(context.Background(), Options{AppRoot: root, Addr: "127.0.0.1:0", Env: []string{"CALLER_SCHEDULE=0 */5 * * * *"}, Stdout: io.Discard, Stderr: io.Discard})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHandlerEnvironment(t *testing.T) {
	t.Setenv("HOSTTEST_PARENT_ONLY", "must not leak")
	s := start(t, appSpec{}, "serve", func(o *Options) {
		o.Env = append(o.Env, "APP_SETTING=from-env", "FUNCTIONS_CUSTOMHANDLER_PORT=1")
		o.ParentEnv = func(k string) string {
			if k == "PATH" {
				return "/parent/bin"
			}
			return os.Getenv(k)
		}
	})
	tr, err := s.h.FireTimer(context.Background(), "CallerTimer", false)
	if err != nil || tr.Failed {
		t.Fatalf("FireTimer = %+v, %v", tr, err)
	}
	var rv timerReply
	if err := json.Unmarshal(tr.ReturnValue, &rv); err != nil {
		t.Fatal(err)
	}
	env := rv.Env
	if env["FUNCTIONS_CUSTOMHANDLER_PORT"] == "1" || env["FUNCTIONS_CUSTOMHANDLER_PORT"] != env["FUNCTIONS_HTTPWORKER_PORT"] ||
		env["FUNCTIONS_CUSTOMHANDLER_PORT"] != strings.TrimPrefix(s.h.handlerAddr(), "127.0.0.1:") {
		t.Errorf("ports: %v (handler at %s)", env, s.h.handlerAddr())
	}
	if !guidRE.MatchString(env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"]) {
		t.Errorf("worker ID = %q", env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"])
	}
	if env["FUNCTIONS_APP_ROOT_PATH"] != s.root {
		t.Errorf("app root = %q, want %q", env["FUNCTIONS_APP_ROOT_PATH"], s.root)
	}
	if env["APP_SETTING"] != "from-env" || env["PATH"] != "/parent/bin" {
		t.Errorf("settings: %v", env)
	}
	if _, leaked := env["HOSTTEST_PARENT_ONLY"]; leaked {
		t.Error("the parent's environment leaked into the handler")
	}
}

func TestC14C15_TimerPayloadShape(t *testing.T) {
	var mu sync.Mutex
	var seen []TimerResult
	s := start(t, appSpec{}, "serve", func(o *Options) {
		o.OnTimer = func(r TimerResult) { mu.Lock(); seen = append(seen, r); mu.Unlock() }
	})
	t0 := s.clock.Now()

	first, err := s.h.FireTimer(context.Background(), "callertimer", false) // names are case-insensitive
	if err != nil || first.Failed {
		t.Fatalf("FireTimer = %+v, %v\n%s", first, err, s.stderr)
	}
	if first.Function != "CallerTimer" || first.Status != 200 || !guidRE.MatchString(first.InvocationID) {
		t.Errorf("result = %+v", first)
	}
	if !reflect.DeepEqual(first.Logs, []string{"London: 12.3 °C", "Oslo: 4.0 °C"}) {
		t.Errorf("Logs = %q", first.Logs)
	}
	var rv timerReply
	if err := json.Unmarshal(first.ReturnValue, &rv); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		funcs.HeaderInvocationID: first.InvocationID,
		funcs.HeaderHostVersion:  HostVersion,
		"User-Agent":             "Azure-Functions-Host/" + HostVersion,
		"Content-Type":           "application/json; charset=utf-8",
	} {
		if got := rv.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}

	// Parse the payload back with the handler side of the protocol.
	inv, err := funcs.DecodeInvocation(bytes.NewReader(rv.Payload))
	if err != nil {
		t.Fatal(err)
	}
	var rawSys map[string]json.RawMessage
	_ = json.Unmarshal(inv.Metadata["sys"], &rawSys)
	if string(rawSys["MethodName"]) != `"\"CallerTimer\""` {
		t.Errorf("C15: MethodName on the wire = %s, want it double-encoded", rawSys["MethodName"])
	}
	sys, err := inv.Sys()
	if err != nil || sys.MethodName != "CallerTimer" || !sys.UtcNow.Equal(t0) || !guidRE.MatchString(sys.RandGuid) {
		t.Errorf("C15: Sys() = %+v, %v", sys, err)
	}
	info, err := inv.Timer("myTimer")
	if err != nil || info.Status != nil || info.IsPastDue || !info.AdjustForDST {
		t.Errorf("C14: first run = %+v, %v; want ScheduleStatus null", info, err)
	}
	// Same keys as the recorded timer value.
	var recorded, ours map[string]json.RawMessage
	rec, err := os.ReadFile("testdata/05-timerinfo-value.log-capture.json")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(rec, &recorded)
	_ = json.Unmarshal(inv.Data["myTimer"], &ours)
	if got, want := keys(ours), keys(recorded); !reflect.DeepEqual(got, want) {
		t.Errorf("timer value keys = %v, recording has %v", got, want)
	}

	// Second run, five minutes later and past due.
	s.clock.Advance(5 * time.Minute)
	second, err := s.h.FireTimer(context.Background(), "CallerTimer", true)
	if err != nil || second.Failed {
		t.Fatalf("FireTimer = %+v, %v", second, err)
	}
	_ = json.Unmarshal(second.ReturnValue, &rv)
	inv, err = funcs.DecodeInvocation(bytes.NewReader(rv.Payload))
	if err != nil {
		t.Fatal(err)
	}
	info, err = inv.Timer("myTimer")
	if err != nil || info.Status == nil || !info.IsPastDue {
		t.Fatalf("C14: second run = %+v, %v", info, err)
	}
	if !info.Status.Last.Equal(t0) || !info.Status.LastUpdated.Equal(t0) || !info.Status.Next.Equal(time.Date(2024, 5, 14, 15, 15, 0, 0, time.UTC)) {
		t.Errorf("C14: status = %+v", info.Status)
	}
	var wire struct {
		Data map[string]struct{ ScheduleStatus map[string]string }
	}
	_ = json.Unmarshal(rv.Payload, &wire)
	dotnet := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00$`)
	for k, v := range wire.Data["myTimer"].ScheduleStatus {
		if !dotnet.MatchString(v) {
			t.Errorf("C14: %s = %q, want .NET round-trip with 7 digits and offset", k, v)
		}
	}

	if want := "Executed 'Functions.CallerTimer' (Succeeded, Id=" + first.InvocationID + ", Duration=0ms)"; !strings.Contains(s.stdout.String(), want) {
		t.Errorf("stdout lacks %q:\n%s", want, s.stdout)
	}
	if !strings.Contains(s.stdout.String(), "] London: 12.3 °C") {
		t.Errorf("invocation Logs not logged:\n%s", s.stdout)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].InvocationID != first.InvocationID || seen[1].InvocationID != second.InvocationID {
		t.Errorf("OnTimer saw %+v", seen)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestTimerReplyRules(t *testing.T) {
	s := start(t, appSpec{extraTimers: true}, "serve", nil)
	tests := []struct {
		name       string
		function   string
		wantFailed bool
		wantStatus int
		wantReason string
	}{
		{"2xx JSON object succeeds", "CallerTimer", false, 200, ""},
		{"non-2xx fails and its Logs are dropped", "Timer500", true, 500, "500"},
		{"text/plain fails", "TimerText", true, 200, "Content-Type"},
		{"C11 missing Content-Type fails", "TimerNoType", true, 200, "Content-Type"},
		{"unparseable body fails", "TimerBadJSON", true, 200, "not {Outputs, Logs, ReturnValue}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := s.h.FireTimer(context.Background(), tc.function, false)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Failed != tc.wantFailed || tr.Status != tc.wantStatus || !strings.Contains(tr.Reason, tc.wantReason) {
				t.Errorf("result = %+v", tr)
			}
			if tc.wantFailed {
				if tr.Logs != nil || tr.ReturnValue != nil {
					t.Errorf("a failed invocation kept Logs %q / ReturnValue %s", tr.Logs, tr.ReturnValue)
				}
				if want := "Executed 'Functions." + tc.function + "' (Failed, Id=" + tr.InvocationID; !strings.Contains(s.stderr.String(), want) {
					t.Errorf("stderr lacks %q", want)
				}
			}
		})
	}
	if out := s.stdout.String() + s.stderr.String(); strings.Contains(out, "SECRET-LOG-LINE") || strings.Contains(out, "text reply") {
		t.Errorf("Logs of failed invocations were logged:\n%s", out)
	}
	if _, err := s.h.FireTimer(context.Background(), "WeatherHttp", false); err == nil {
		t.Error("FireTimer on an HTTP function succeeded")
	}
}

func TestTimerTimeout(t *testing.T) {
	s := start(t, appSpec{extraTimers: true, timeout: "00:00:00.5"}, "serve", nil)
	tr, err := s.h.FireTimer(context.Background(), "TimerSlow", false)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Failed || !strings.Contains(tr.Reason, "Timeout value of 00:00:00.5 was exceeded by function: Functions.TimerSlow") {
		t.Errorf("result = %+v", tr)
	}
	// functionTimeout is enforced by recycling the handler: killed, started
	// afresh (not counted as a failure), and serving again.
	ready := func(n int) func() bool {
		return func() bool {
			return strings.Count(s.stdout.String(), "Handler ready on port") == n && s.h.handlerReady()
		}
	}
	eventually(t, "the restarted handler", ready(2))
	if !strings.Contains(s.stderr.String(), "A function timeout has occurred. Host is shutting down.") ||
		!strings.Contains(s.stdout.String(), "Restarting the handler after a function timeout") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
	}
	if tr, err := s.h.FireTimer(context.Background(), "CallerTimer", false); err != nil || tr.Failed {
		t.Errorf("after the restart: %+v, %v", tr, err)
	}
	for i := range maxFailures { // timeouts never stop the host
		if tr, err := s.h.FireTimer(context.Background(), "TimerSlow", false); err != nil || !strings.Contains(tr.Reason, "Timeout value") {
			t.Fatalf("TimerSlow = %+v, %v", tr, err)
		}
		eventually(t, "the handler back", ready(3+i))
	}
	select {
	case <-s.h.done:
		t.Errorf("the host gave up after timeouts: %v", s.h.Wait())
	default:
	}
}

func TestTimerSchedule(t *testing.T) {
	results := make(chan TimerResult, 16)
	s := start(t, appSpec{noHTTPRoutes: true}, "serve", func(o *Options) {
		o.TimerEvery = 20 * time.Millisecond
		o.OnTimer = func(r TimerResult) {
			select {
			case results <- r:
			default:
			}
		}
	})
	var got []TimerResult
	for len(got) < 2 {
		select {
		case r := <-results:
			got = append(got, r)
		case <-time.After(10 * time.Second):
			t.Fatal("the timer did not fire twice")
		}
	}
	for _, r := range got {
		if r.Failed || r.Function != "CallerTimer" {
			t.Errorf("result = %+v", r)
		}
	}
	var rv timerReply
	_ = json.Unmarshal(got[1].ReturnValue, &rv)
	inv, err := funcs.DecodeInvocation(bytes.NewReader(rv.Payload))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := inv.Timer("myTimer"); err != nil || info.Status == nil {
		t.Errorf("second scheduled run: %+v, %v", info, err)
	}
	// The admin API fires it too.
	res, _ := do(t, newReq(t, "POST", s.h.URL()+"/admin/functions/CallerTimer", strings.NewReader(`{"input":""}`)))
	if res.StatusCode != http.StatusAccepted {
		t.Errorf("admin status = %d", res.StatusCode)
	}
}

func TestC12_ForwardingVerbatim(t *testing.T) {
	s := start(t, appSpec{forwarding: true}, "serve", nil)
	base := s.h.URL()

	t.Run("request relayed with every header", func(t *testing.T) {
		req := newReq(t, "GET", base+"/api/WeatherHttp?city=London&x=%2Fa%20b", nil)
		req.Header.Set("Authorization", "Bearer abc.def.ghi")
		req.Header["X-Multi"] = []string{"1", "2"}
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		req.Header.Set("User-Agent", "test-client/1")
		req.Header.Set(funcs.HeaderInvocationID, "spoofed")
		res, body := do(t, req)
		var e echoReply
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if e.Method != "GET" || e.Path != "/api/WeatherHttp" || e.RawQuery != "city=London&x=%2Fa%20b" || e.Host != strings.TrimPrefix(base, "http://") {
			t.Errorf("handler saw %+v", e)
		}
		if e.Header.Get("Authorization") != "Bearer abc.def.ghi" || !reflect.DeepEqual(e.Header["X-Multi"], []string{"1", "2"}) || e.Header.Get("X-Forwarded-For") != "203.0.113.9" {
			t.Errorf("headers not copied: %v", e.Header)
		}
		if id := e.Header.Get(funcs.HeaderInvocationID); !guidRE.MatchString(id) {
			t.Errorf("invocation ID = %q, want a new GUID (not the client's)", id)
		}
		if e.Header.Get(funcs.HeaderHostVersion) != HostVersion || e.Header.Get("User-Agent") != "test-client/1 Azure-Functions-Host/"+HostVersion {
			t.Errorf("host headers: %v", e.Header)
		}
		if res.StatusCode != 200 || res.Header.Get("X-Handler") != "echo" || res.Header.Get("Set-Cookie") != "a=1" ||
			res.Header.Get("WWW-Authenticate") != `Bearer realm="weatherfunc", error="invalid_token"` || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("reply not relayed verbatim: %d %v", res.StatusCode, res.Header)
		}
	})
	t.Run("status relayed", func(t *testing.T) {
		res, _ := do(t, newReq(t, "GET", base+"/api/WeatherHttp?status=418", nil))
		if res.StatusCode != 418 {
			t.Errorf("status = %d", res.StatusCode)
		}
	})
	for _, code := range []int{302, 307} {
		t.Run("C12 redirect "+http.StatusText(code)+" not followed", func(t *testing.T) {
			res, body := do(t, newReq(t, "GET", base+"/api/WeatherHttp?redirect="+itoa(code), nil))
			if res.StatusCode != code || res.Header.Get("Location") != "/api/WeatherHttp?city=Elsewhere" || res.Header.Get("X-Handler") != "redirect" {
				t.Errorf("reply = %d %v %s", res.StatusCode, res.Header, body)
			}
		})
	}
	t.Run("body with Content-Length", func(t *testing.T) {
		res, body := do(t, newReq(t, "POST", base+"/api/WeatherHttp", strings.NewReader("hello")))
		var e echoReply
		_ = json.Unmarshal(body, &e)
		if res.StatusCode != 200 || e.Body != "hello" || e.Method != "POST" {
			t.Errorf("reply = %d %+v", res.StatusCode, e)
		}
	})
	t.Run("chunked body is not forwarded", func(t *testing.T) {
		req := newReq(t, "POST", base+"/api/WeatherHttp", io.MultiReader(strings.NewReader("chunked")))
		req.ContentLength = -1
		res, body := do(t, req)
		var e echoReply
		_ = json.Unmarshal(body, &e)
		if res.StatusCode != 200 || e.Body != "" {
			t.Errorf("reply = %d %+v", res.StatusCode, e)
		}
	})
	t.Run("no sniffed Content-Type", func(t *testing.T) {
		res, body := do(t, newReq(t, "GET", base+"/api/WeatherHttp?notype=1", nil))
		if _, ok := res.Header["Content-Type"]; ok || string(body) != "<html>not sniffed</html>" {
			t.Errorf("reply = %v %s", res.Header, body)
		}
	})
	t.Run("route template", func(t *testing.T) {
		res, body := do(t, newReq(t, "GET", base+"/api/weather/Oslo?units=metric", nil))
		var e echoReply
		_ = json.Unmarshal(body, &e)
		if res.StatusCode != 200 || e.City != "Oslo" || e.Path != "/api/weather/Oslo" || e.RawQuery != "units=metric" {
			t.Errorf("reply = %d %+v", res.StatusCode, e)
		}
	})
	for _, tc := range []struct{ name, method, path string }{
		{"method not in function.json", "DELETE", "/api/WeatherHttp"},
		{"unknown function", "GET", "/api/Nope"},
		{"timer is not an HTTP route", "GET", "/api/CallerTimer"},
		{"outside the route prefix", "GET", "/WeatherHttp"},
	} {
		t.Run("404 "+tc.name, func(t *testing.T) {
			res, _ := do(t, newReq(t, tc.method, base+tc.path, nil))
			if res.StatusCode != 404 || res.Header.Get("X-Handler") != "" {
				t.Errorf("status = %d, X-Handler %q; want the host's own 404", res.StatusCode, res.Header.Get("X-Handler"))
			}
		})
	}
	t.Run("function names are case-insensitive; the path is relayed as sent", func(t *testing.T) {
		res, body := do(t, newReq(t, "GET", base+"/API/weatherhttp?city=Oslo", nil))
		var e echoReply
		_ = json.Unmarshal(body, &e)
		if res.StatusCode != 200 || e.Path != "/API/weatherhttp" || e.RawQuery != "city=Oslo" {
			t.Errorf("reply = %d %+v", res.StatusCode, e)
		}
	})
	if !strings.Contains(s.stdout.String(), "Executed 'Functions.WeatherHttp' (Succeeded, Id=") {
		t.Errorf("stdout:\n%s", s.stdout)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestForwardingOff(t *testing.T) {
	s := start(t, appSpec{forwarding: false}, "serve", nil)
	base := s.h.URL()
	t.Run("request and reply translated", func(t *testing.T) {
		req := newReq(t, "GET", base+"/api/WeatherHttp?city=Oslo&units=metric", nil)
		req.Header.Set("Authorization", "Bearer abc.def.ghi")
		res, body := do(t, req)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("X-Handler") != "echo" ||
			res.Header.Get("WWW-Authenticate") != `Bearer realm="weatherfunc", error="invalid_token"` {
			t.Fatalf("reply = %d %v %s\n%s", res.StatusCode, res.Header, body, s.stderr)
		}
		var e echoReply
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		if e.Method != "GET" || e.Path != "/api/WeatherHttp" || e.RawQuery != "city=Oslo&units=metric" || e.Header.Get("Authorization") != "Bearer abc.def.ghi" {
			t.Errorf("handler saw %+v", e)
		}
		if !guidRE.MatchString(e.Header.Get(funcs.HeaderInvocationID)) {
			t.Errorf("invocation ID = %q", e.Header.Get(funcs.HeaderInvocationID))
		}
	})
	t.Run("status relayed", func(t *testing.T) {
		res, _ := do(t, newReq(t, "GET", base+"/api/WeatherHttp?status=401", nil))
		if res.StatusCode != 401 {
			t.Errorf("status = %d", res.StatusCode)
		}
	})
	for _, code := range []int{302, 307} {
		t.Run("C12 redirect "+http.StatusText(code), func(t *testing.T) {
			res, _ := do(t, newReq(t, "GET", base+"/api/WeatherHttp?redirect="+itoa(code), nil))
			if res.StatusCode != code || res.Header.Get("Location") != "/api/WeatherHttp?city=Elsewhere" {
				t.Errorf("reply = %d %v", res.StatusCode, res.Header)
			}
		})
	}
	t.Run("body", func(t *testing.T) {
		req := newReq(t, "POST", base+"/api/WeatherHttp", strings.NewReader(`{"city":"Oslo"}`))
		req.Header.Set("Content-Type", "application/json")
		_, body := do(t, req)
		var e echoReply
		_ = json.Unmarshal(body, &e)
		if e.Body != `{"city":"Oslo"}` || e.Method != "POST" {
			t.Errorf("handler saw %+v", e)
		}
	})
}

func TestRecorded02_HTTPInvocationShape(t *testing.T) {
	recorded, err := os.ReadFile("testdata/02-http-trigger-request.core-tools-trace.json")
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{opts: Options{Now: func() time.Time { return time.Date(2024, 5, 14, 15, 14, 15, 128919000, time.UTC) }}}
	fn := &function{Function: funcs.Function{Name: "SimpleHttpTrigger"}, trigger: funcs.Binding{Name: "req"}}
	r := httptest.NewRequest("GET", "http://localhost:7071/api/SimpleHttpTrigger", nil)
	r.Header = http.Header{
		"Accept": {"*/*"}, "Connection": {"keep-alive"}, "User-Agent": {"PostmanRuntime/7.37.3"},
		"Accept-Encoding": {"gzip, deflate, br"}, "Cache-Control": {"no-cache"}, "Postman-Token": {"f7cc026e-5cb0-4b7a-8f70-ed394a0e97ef"},
	}
	body, err := h.httpInvocationBody(r, fn, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ours, theirs map[string]any
	_ = json.Unmarshal(body, &ours)
	_ = json.Unmarshal(recorded, &theirs)
	// Everything but the per-invocation RandGuid matches the recording.
	ours["Metadata"].(map[string]any)["sys"].(map[string]any)["RandGuid"] = theirs["Metadata"].(map[string]any)["sys"].(map[string]any)["RandGuid"]
	ours["Metadata"].(map[string]any)["sys"].(map[string]any)["UtcNow"] = theirs["Metadata"].(map[string]any)["sys"].(map[string]any)["UtcNow"]
	if !reflect.DeepEqual(ours, theirs) {
		o, _ := json.Marshal(ours)
		t.Errorf("payload differs from the recording:\nours   %s\ntheirs %s", o, recorded)
	}
	// And the handler side reads it back.
	inv, err := funcs.DecodeInvocation(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if sys, err := inv.Sys(); err != nil || sys.MethodName != "SimpleHttpTrigger" {
		t.Errorf("Sys() = %+v, %v", sys, err)
	}
}

func TestRestartPolicy(t *testing.T) {
	t.Run("three failures within 30 minutes stop the host", func(t *testing.T) {
		s := start(t, appSpec{}, "crash", nil)
		done := make(chan error, 1)
		go func() { done <- s.h.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "failed 3 times within 30m0s") || !strings.Contains(err.Error(), "crashing") {
				t.Errorf("Wait() = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the host kept restarting")
		}
		if n := strings.Count(s.stdout.String(), "Starting handler"); n != 3 {
			t.Errorf("started %d times, want 3:\n%s", n, s.stdout)
		}
	})
	t.Run("exit code 0 is not restarted", func(t *testing.T) {
		s := start(t, appSpec{}, "exit0", nil)
		done := make(chan error, 1)
		go func() { done <- s.h.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Wait() = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Wait did not return")
		}
		if n := strings.Count(s.stdout.String(), "Starting handler"); n != 1 || !strings.Contains(s.stdout.String(), "not restarting") {
			t.Errorf("stdout:\n%s", s.stdout)
		}
	})
}

func TestCloseStopsHandler(t *testing.T) {
	s := start(t, appSpec{}, "serve", nil)
	addr := s.h.handlerAddr()
	if err := s.h.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := s.h.Wait(); err != nil {
		t.Errorf("Wait() = %v", err)
	}
	if err := s.h.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if !strings.Contains(s.stdout.String(), "[Information] fake handler stopped") {
		t.Errorf("the handler was not stopped by SIGTERM:\n%s", s.stdout)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the handler still listens")
	}
	if _, err := s.h.FireTimer(context.Background(), "CallerTimer", false); err == nil {
		t.Error("FireTimer after Close succeeded")
	}
}

func TestRouteMatching(t *testing.T) {
	tests := []struct {
		name   string
		tmpl   string
		path   string
		want   map[string]string
		wantOK bool
	}{
		{"literal", "WeatherHttp", "WeatherHttp", map[string]string{}, true},
		{"literal any case", "WeatherHttp", "weatherhttp", map[string]string{}, true},
		{"literal trailing slash", "WeatherHttp", "WeatherHttp/", map[string]string{}, true},
		{"literal extra segment", "WeatherHttp", "WeatherHttp/x", nil, false},
		{"param", "weather/{city}", "weather/Oslo", map[string]string{"city": "Oslo"}, true},
		{"param with constraint", "weather/{city:alpha}", "weather/Oslo", map[string]string{"city": "Oslo"}, true},
		{"param missing", "weather/{city}", "weather", nil, false},
		{"optional param absent", "weather/{city?}", "weather", map[string]string{}, true},
		{"catch-all", "files/{*rest}", "files/a/b/c", map[string]string{"rest": "a/b/c"}, true},
		{"catch-all empty", "files/{*rest}", "files", map[string]string{"rest": ""}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			route, err := parseRoute(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := matchRoute(route, tc.path)
			if ok != tc.wantOK || (ok && !reflect.DeepEqual(got, tc.want)) {
				t.Errorf("match(%q, %q) = %v, %v", tc.tmpl, tc.path, got, ok)
			}
		})
	}
	for _, bad := range []string{"a/{*rest}/b", "a/{x?}/b", "a/{}", "a/b{c}"} {
		if _, err := parseRoute(bad); err == nil {
			t.Errorf("parseRoute(%q) accepted", bad)
		}
	}
}
