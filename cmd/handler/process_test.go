package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/entra"
	"github.com/weatherfunc/handler/internal/tracing"
)

// TestProcess builds the handler binary and runs it as the Functions host
// does, against loopback stand-ins only (the Entra stand-in for
// AZURE_AUTHORITY_HOST, a loopback weather API for CALLER_TARGET_URL, plain
// secret values: no Key Vault, nothing off this machine).
func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the handler binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the handler with")
	}
	bin := filepath.Join(t.TempDir(), "handler")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	const (
		tenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		apiID    = "11111111-2222-3333-4444-555555555555"
		callerID = "66666666-7777-8888-9999-000000000000"
		secret   = "process-test-client-secret"
	)
	idp, err := entra.Start(testCA, entra.Options{
		TenantID: tenant,
		Clients:  map[string]entra.Client{callerID: {Secret: secret, Roles: []string{"access_as_application"}}},
		API:      entra.API{ClientID: apiID},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	// One request from this process first: the stand-in sets its URL after
	// it starts serving, and requests from another process give the race
	// detector no happens-before edge to that write (an entra issue, see
	// the report); this one does.
	if res, err := testCA.Client().Get(idp.URL() + "/" + tenant + "/v2.0/.well-known/openid-configuration"); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}

	env := func(port string, overrides map[string]string) []string {
		m := goodEnv()
		m["FUNCTIONS_CUSTOMHANDLER_PORT"] = port
		m["AZURE_TENANT_ID"] = tenant
		m["API_CLIENT_ID"] = apiID
		m["CALLER_CLIENT_ID"] = callerID
		m["AZURE_AUTHORITY_HOST"] = idp.URL()
		m["WEATHER_API_KEY"] = "plain-process-test-key"
		m["CALLER_CLIENT_SECRET"] = secret
		m["CALLER_CITIES"] = "London"
		for k, v := range overrides {
			m[k] = v
		}
		out := []string{"PATH=" + os.Getenv("PATH"), "SSL_CERT_FILE=" + os.Getenv("SSL_CERT_FILE")}
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		return out
	}

	t.Run("SIGTERM stops accepting, finishes the in-flight tick, exits 0", func(t *testing.T) {
		held := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		var apiTrace string
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { apiTrace = r.Header.Get("traceparent"); close(held) })
			<-release
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"city":"London","country":"GB","units":"metric","temperature":{"current":11.6},"conditions":[{"description":"light rain"}]}`))
		}))
		defer api.Close()
		defer func() {
			select {
			case <-release:
			default:
				close(release)
			}
		}()

		port := freePort(t)
		var stdout, stderr syncBuffer
		cmd := exec.Command(bin)
		cmd.Env = env(port, map[string]string{"CALLER_TARGET_URL": api.URL + "/api/WeatherHttp"})
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer func() { _ = cmd.Process.Kill() }()
		base := "http://127.0.0.1:" + port
		if _, err := pollReady(base + "/"); err != nil {
			t.Fatalf("not ready: %v\n%s", err, stderr.String())
		}

		const hostTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		type reply struct {
			status int
			body   []byte
			err    error
		}
		replied := make(chan reply, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, base+"/CallerTimer", strings.NewReader(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Azure-Functions-InvocationId", "6a1b0f6e-5c43-4d1e-9a2b-3c4d5e6f7a8b")
			req.Header.Set("traceparent", hostTrace)
			res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				replied <- reply{err: err}
				return
			}
			defer res.Body.Close()
			var buf bytes.Buffer
			_, err = buf.ReadFrom(res.Body)
			replied <- reply{status: res.StatusCode, body: buf.Bytes(), err: err}
		}()
		select {
		case <-held: // the tick got its token and is waiting for the API
		case r := <-replied:
			t.Fatalf("the tick ended before reaching the API: %+v\n%s", r, stderr.String())
		case <-time.After(20 * time.Second):
			t.Fatalf("the tick never reached the API\n%s", stderr.String())
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// New connections are refused once the listener is closed.
		refused := false
		for range 400 {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
			if err != nil {
				refused = true
				break
			}
			c.Close()
			time.Sleep(5 * time.Millisecond)
		}
		if !refused {
			t.Error("the handler still accepts connections after SIGTERM")
		}
		select {
		case err := <-exited:
			t.Fatalf("exited (%v) with a request in flight\n%s", err, stderr.String())
		default:
		}
		close(release)
		r := <-replied
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("in-flight tick: %+v\nstderr:\n%s", r, stderr.String())
		}
		var body struct {
			Logs        []string
			ReturnValue map[string]any
		}
		if err := json.Unmarshal(r.body, &body); err != nil || len(body.Logs) != 1 || !strings.Contains(body.Logs[0], "London, GB: 11.6 °C") {
			t.Errorf("reply %s (%v)", r.body, err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit after SIGTERM = %v, want status 0\nstderr:\n%s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the handler did not exit after SIGTERM")
		}
		if sc, ok := tracing.Parse(apiTrace, ""); !ok || sc.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" || apiTrace == hostTrace {
			t.Errorf("the API call's traceparent = %q, want the host's trace with a new span", apiTrace)
		}
		if !strings.Contains(stdout.String(), `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`) || !strings.Contains(stdout.String(), "handler shutting down") {
			t.Errorf("stdout:\n%s", stdout.String())
		}
		if idp.TokenRequests() != 1 {
			t.Errorf("token requests = %d", idp.TokenRequests())
		}
		if strings.Contains(stdout.String()+stderr.String(), secret) {
			t.Error("the client secret was logged")
		}
	})

	t.Run("misconfiguration exits non-zero, one stderr line per setting", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin)
		cmd.Env = env(freePort(t), map[string]string{"AZURE_TENANT_ID": "not-a-guid-value", "CALLER_SCOPE": "User.Read"})
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			t.Fatal("the handler kept running with a bad configuration")
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("exit = %v, want a non-zero code", err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 2 || !strings.Contains(stderr.String(), "AZURE_TENANT_ID") || !strings.Contains(stderr.String(), "CALLER_SCOPE") {
			t.Errorf("stderr lines = %q", lines)
		}
		for _, v := range []string{"not-a-guid-value", "User.Read", secret} {
			if strings.Contains(stderr.String()+stdout.String(), v) {
				t.Errorf("output shows the value %q", v)
			}
		}
	})
}
