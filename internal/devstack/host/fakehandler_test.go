package host

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
)

// The test binary doubles as the handler: Start execs it (through the
// app root's "handler" symlink) with fakeModeEnv set among the app settings.
const fakeModeEnv = "HOSTTEST_FAKE_HANDLER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeModeEnv); mode != "" {
		os.Exit(fakeHandler(mode))
	}
	os.Exit(m.Run())
}

// fakeHandler is a small custom handler speaking the real protocol through
// internal/funcs. Modes:
//
//	serve       listen at once
//	slow-ready  listen after 300 ms (the host must keep polling)
//	exit-early  one line on stderr, exit 3 before listening
//	never-listen  sleep without listening
//	crash       serve, then exit 1 after 100 ms
//	exit0       serve, then exit 0 after 100 ms
func fakeHandler(mode string) int {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	switch mode {
	case "exit-early":
		fmt.Fprintln(os.Stderr, "fatal: WEATHER_API_KEY is not set")
		return 3
	case "slow-ready":
		time.Sleep(300 * time.Millisecond)
	case "never-listen":
		time.Sleep(time.Hour)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 1
	}
	fmt.Println("fake handler listening on", port)
	fmt.Fprintln(os.Stderr, "warning: this is a fake handler")
	fmt.Fprintln(os.Stderr, "an error line")
	switch mode {
	case "crash":
		go func() { time.Sleep(100 * time.Millisecond); fmt.Fprintln(os.Stderr, "crashing"); os.Exit(1) }()
	case "exit0":
		go func() { time.Sleep(100 * time.Millisecond); os.Exit(0) }()
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/api/WeatherHttp", http.HandlerFunc(echo))
	mux.Handle("/", http.HandlerFunc(echo)) // any other path: the host decided to relay it
	mux.Handle("/api/weather/{city}", http.HandlerFunc(echo))
	mux.Handle("POST /WeatherHttp", funcs.WithInvocation(nil, "", funcs.HTTPInvocation("req", "res", http.HandlerFunc(echo))))
	mux.HandleFunc("POST /CallerTimer", timerOK)
	mux.HandleFunc("POST /Timer500", func(w http.ResponseWriter, r *http.Request) {
		funcs.WriteResponse(w, http.StatusInternalServerError, funcs.InvocationResponse{Logs: []string{"SECRET-LOG-LINE must be dropped"}})
	})
	mux.HandleFunc("POST /TimerText", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, `{"Outputs":{},"Logs":["text reply"],"ReturnValue":null}`)
	})
	mux.HandleFunc("POST /TimerNoType", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // C11: a JSON body without the header
		_, _ = io.WriteString(w, `{"Outputs":{},"Logs":["untyped reply"],"ReturnValue":null}`)
	})
	mux.HandleFunc("POST /TimerBadJSON", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"Outputs":`)
	})
	mux.HandleFunc("POST /TimerSlow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // until the host gives up
	})

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	fmt.Println("fake handler stopped")
	return 0
}

// echoReply is what the fake's HTTP function answers: the request it saw.
type echoReply struct {
	Method   string
	Path     string
	RawQuery string
	Host     string
	Header   http.Header
	Body     string
	City     string
}

// echo answers with the request it saw; ?status=N answers N, ?redirect=N
// redirects with N, ?notype=1 sends a body without Content-Type.
func echo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if c := q.Get("redirect"); c != "" {
		code, _ := strconv.Atoi(c)
		w.Header().Set("Location", "/api/WeatherHttp?city=Elsewhere")
		w.Header().Set("X-Handler", "redirect")
		w.WriteHeader(code)
		return
	}
	if q.Get("notype") != "" {
		w.Header()["Content-Type"] = nil
		_, _ = io.WriteString(w, "<html>not sniffed</html>")
		return
	}
	b, _ := io.ReadAll(r.Body)
	rep := echoReply{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header, Body: string(b), City: r.PathValue("city")}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Handler", "echo")
	w.Header().Add("Set-Cookie", "a=1")
	w.Header().Set("WWW-Authenticate", `Bearer realm="weatherfunc", error="invalid_token"`)
	status := http.StatusOK
	if s := q.Get("status"); s != "" {
		status, _ = strconv.Atoi(s)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rep)
}

// timerReply is the fake timer's ReturnValue: what it received.
type timerReply struct {
	Payload json.RawMessage
	Header  http.Header
	Env     map[string]string
}

func timerOK(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	env := map[string]string{}
	for _, k := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT", "FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "FUNCTIONS_APP_ROOT_PATH", "APP_SETTING", "HOSTTEST_PARENT_ONLY", "PATH"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	funcs.WriteResponse(w, http.StatusOK, funcs.InvocationResponse{
		Logs:        []string{"London: 12.3 °C", "Oslo: 4.0 °C"},
		ReturnValue: timerReply{Payload: b, Header: r.Header, Env: env},
	})
}
