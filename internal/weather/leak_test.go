package weather

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/logctx"
)

// TestKeyNeverLeaks drives every failure path with one recognizable key and
// greps everything the package produced: replies (headers and bodies), error
// strings and every log line.
func TestKeyNeverLeaks(t *testing.T) {
	key := testKey(t)
	var logs syncBuffer
	log := debugLogger(&logs)
	var captured []string
	capture := func(name string, rec *httptest.ResponseRecorder) {
		captured = append(captured, name+" "+fmt.Sprint(rec.Code, rec.Header(), rec.Body.String()))
	}
	captureErr := func(name string, err error) {
		if err != nil {
			captured = append(captured, name+" "+err.Error(), fmt.Sprintf("%v %+v %#v %q", err, err, err, err))
			var werr *Error
			if errors.As(err, &werr) {
				captured = append(captured, fmt.Sprintf("%+v", werr.Problem()))
			}
		}
	}

	// Upstreams: the stand-in with another key (401), scripted failures, a
	// redirect that would carry the key, a hang, a dropped connection, an
	// untrusted certificate, a closed port.
	_, wrongKeyBase := standIn(t, "another-key")
	okStand, okBase := standIn(t, key)
	_ = okStand
	scriptedBases := map[string]reply{
		"404": {status: 404, body: readOWM(t, "404_city_not_found.body.json")},
		"400": {status: 400, body: readOWM(t, "400_wrong_latitude.body.json")},
		"429": {status: 429, body: readOWM(t, "429_account_blocked.RECONSTRUCTED.body.json")},
		"500": {status: 500, body: []byte("internal error")},
		"bad": {status: 200, body: []byte(`{"cod":"200","dt":"x"}`)},
	}
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://evil.example/?"+r.URL.RawQuery, http.StatusFound)
	}))
	defer echo.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer drop.Close()
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	bases := map[string]string{
		"ok": okBase, "401": wrongKeyBase, "redirect": echo.URL, "hang": hang.URL,
		"drop": drop.URL, "tls": strings.Replace(tlsSrv.URL, "127.0.0.1", "localhost", 1), "closed": closed,
	}
	for name, rep := range scriptedBases {
		bases[name] = newScripted(t, rep).srv.URL
	}
	for name, base := range bases {
		s := newTestService(t, base, key, newClock(), Options{Logger: log, UpstreamTimeout: 100 * time.Millisecond})
		capture(name, do(s, "city=London"))
		capture(name+" lat/lon", do(s, "lat=1&lon=2"))
		ctx := logctx.With(context.Background(), log.With("invocation_id", "inv-1"))
		_, _, err := s.Current(ctx, Query{City: "Paris"})
		captureErr(name, err)
		if name != "ok" && err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
	// And the redaction itself, against the worst error we can construct.
	s := newTestService(t, okBase, key, newClock(), Options{})
	raw := &url.Error{Op: "Get", URL: s.endpoint.String() + "?q=London&appid=" + key,
		Err: fmt.Errorf("dial tcp: lookup host?appid=%s&x=1: %s %s", url.QueryEscape(key), key, "no such host")}
	red := s.redact(raw, key)
	captureErr("redact", red)
	if !strings.Contains(red.Error(), "no such host") {
		t.Errorf("redaction lost the cause: %v", red)
	}

	all := strings.Join(captured, "\n") + "\n" + logs.String()
	if !strings.Contains(logs.String(), "upstream call failed") || !strings.Contains(logs.String(), "inv-1") {
		t.Fatalf("logs were not captured; the grep would prove nothing:\n%s", logs.String())
	}
	for _, form := range []string{key, url.QueryEscape(key), strings.TrimPrefix(key, "owmkey-")} {
		if i := strings.Index(all, form); i >= 0 {
			lo, hi := max(0, i-200), min(len(all), i+len(form)+50)
			t.Errorf("key leaked: …%s…", all[lo:hi])
		}
	}
	if strings.Contains(all, "appid=") && !strings.Contains(all, "appid=[REDACTED]") {
		t.Errorf("an appid parameter appears unredacted")
	}
}
