package funcs

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/testutil"
)

type lockedBuffer = testutil.SyncBuffer

// outerReply is an invocation reply as the host reads it.
type outerReply struct {
	status      int
	contentType string
	body        []byte
	resp        struct {
		Outputs     map[string]json.RawMessage
		Logs        []string
		ReturnValue json.RawMessage
	}
}

func post(t *testing.T, url string, body []byte, header http.Header) outerReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out outerReply
	out.status = res.StatusCode
	out.contentType = res.Header.Get("Content-Type")
	out.body, _ = io.ReadAll(res.Body)
	if out.contentType == ContentType {
		if err := json.Unmarshal(out.body, &out.resp); err != nil {
			t.Fatalf("reply is not an invocation response: %v\n%s", err, out.body)
		}
	}
	return out
}

func TestC11_WriteResponseContentType(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		resp     InvocationResponse
		wantCode int
		wantBody string
	}{
		{"C11 empty response", 200, InvocationResponse{}, 200, `{"Outputs":{},"Logs":[],"ReturnValue":null}`},
		{"C11 logs and return value", 200, InvocationResponse{Logs: []string{"London: 12.3 °C"}, ReturnValue: map[string]int{"ok": 1}}, 200,
			`{"Outputs":{},"Logs":["London: 12.3 °C"],"ReturnValue":{"ok":1}}`},
		{"C11 failure status", 500, InvocationResponse{Logs: []string{"all cities failed"}}, 500, `{"Outputs":{},"Logs":["all cities failed"],"ReturnValue":null}`},
		{"C11 unencodable value becomes 500", 200, InvocationResponse{ReturnValue: make(chan int)}, 500,
			`{"Outputs":{},"Logs":["funcs: the invocation response could not be encoded"],"ReturnValue":null}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				WriteResponse(w, tc.status, tc.resp)
			}))
			defer srv.Close()
			got := post(t, srv.URL+"/CallerTimer", []byte(`{}`), nil)
			if got.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got.contentType)
			}
			if got.status != tc.wantCode || string(got.body) != tc.wantBody {
				t.Errorf("reply = %d %s, want %d %s", got.status, got.body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestRecorded04_ResponsePayloadShape(t *testing.T) {
	// The documented reply decodes into our type and re-encodes with the same keys.
	var resp InvocationResponse
	if err := json.Unmarshal(readTestdata(t, "04-response-payload.docs.json"), &resp); err != nil {
		t.Fatal(err)
	}
	res, ok := resp.Outputs["res"].(map[string]any)
	if !ok || res["body"] != "Order enqueued" || resp.Logs != nil {
		t.Errorf("decoded = %+v", resp)
	}
}

// apiStub stands for the real API: 401 without a token, echo otherwise.
func apiStub(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="weatherfunc"`)
			w.Header().Add("Vary", "Origin")
			w.Header().Add("Vary", "Authorization")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"type":"about:blank","status":401}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "query": r.URL.RawQuery, "city": r.URL.Query().Get("city")})
	})
}

func TestRecorded02_HTTPInvocation(t *testing.T) {
	body := readTestdata(t, "02-http-trigger-request.core-tools-trace.json")
	var seen *http.Request
	var logged lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Clone(r.Context())
		logctx.From(r.Context(), nil).Info("inner request")
		apiStub(t).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(WithInvocation(logger, "SimpleHttpTrigger", HTTPInvocation("req", "res", next)))
	defer srv.Close()

	got := post(t, srv.URL+"/SimpleHttpTrigger", body, http.Header{HeaderInvocationID: {"fa4fcd1a-a965-431e-8f10-a15c07b4fe2a"}})
	if got.status != 200 || got.contentType != "application/json" {
		t.Fatalf("reply = %d %q %s, want 200 application/json (C11)", got.status, got.contentType, got.body)
	}
	if seen == nil {
		t.Fatal("next was not called")
	}
	if seen.Method != "GET" || seen.URL.Path != "/api/SimpleHttpTrigger" || seen.Host != "localhost:7071" {
		t.Errorf("inner request = %s %s host %s", seen.Method, seen.URL, seen.Host)
	}
	if seen.Header.Get("User-Agent") != "PostmanRuntime/7.37.3" || seen.Header.Get("Postman-Token") != "f7cc026e-5cb0-4b7a-8f70-ed394a0e97ef" {
		t.Errorf("inner headers = %v", seen.Header)
	}
	if seen.Header.Get(HeaderInvocationID) != "fa4fcd1a-a965-431e-8f10-a15c07b4fe2a" {
		t.Errorf("invocation ID not passed on: %v", seen.Header)
	}
	if seen.ContentLength != 0 {
		t.Errorf("ContentLength = %d, want 0 (no Body in the recording)", seen.ContentLength)
	}

	var res map[string]json.RawMessage
	if err := json.Unmarshal(got.resp.Outputs["res"], &res); err != nil {
		t.Fatalf("Outputs.res: %v (%s)", err, got.body)
	}
	// The host wants strings: "statusCode":"401", every header value one string.
	if string(res["statusCode"]) != `"401"` {
		t.Errorf("statusCode = %s, want \"401\"", res["statusCode"])
	}
	var headers map[string]string
	if err := json.Unmarshal(res["headers"], &headers); err != nil {
		t.Fatalf("headers must be string values: %v (%s)", err, res["headers"])
	}
	if v := headerValue(headers, "WWW-Authenticate"); v != `Bearer realm="weatherfunc"` {
		t.Errorf("WWW-Authenticate = %q (headers %v)", v, headers)
	}
	if v := headerValue(headers, "Vary"); v != "Origin, Authorization" {
		t.Errorf("Vary = %q", v)
	}
	if v := headerValue(headers, "Content-Length"); v != "" {
		t.Errorf("framing header relayed: Content-Length %q", v)
	}
	var resBody string
	if err := json.Unmarshal(res["body"], &resBody); err != nil || resBody != `{"type":"about:blank","status":401}` {
		t.Errorf("body = %s", res["body"])
	}
	if !strings.Contains(logged.String(), `"invocation_id":"fa4fcd1a-a965-431e-8f10-a15c07b4fe2a"`) {
		t.Errorf("inner log line lacks the invocation ID: %s", logged.String())
	}
}

func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func TestHTTPInvocationRequestShapes(t *testing.T) {
	var mu sync.Mutex
	var seen *http.Request
	var seenBody string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen, seenBody = r, string(b)
		mu.Unlock()
		_, _ = io.WriteString(w, "<html>hi</html>")
	})
	srv := httptest.NewServer(HTTPInvocation("req", "res", next))
	defer srv.Close()

	tests := []struct {
		name      string
		req       string
		wantQuery string
		wantBody  string
		wantCT    string
		wantParam string
		wantID    string
	}{
		{name: "query from Url", req: `{"Url":"http://localhost:7071/api/WeatherHttp?city=London&units=metric","Method":"GET","Query":{"city":"London","units":"metric"},"Headers":{},"Params":{}}`,
			wantQuery: "city=London&units=metric"},
		{name: "query from Query map", req: `{"Url":"http://localhost:7071/api/WeatherHttp","Method":"GET","Query":{"city":"Oslo"},"Headers":{}}`,
			wantQuery: "city=Oslo"},
		{name: "string body and header strings", req: `{"Url":"http://localhost/api/x","Method":"POST","Headers":{"Content-Type":"text/plain"},"Body":"hello"}`,
			wantBody: "hello", wantCT: "text/plain"},
		{name: "object body", req: `{"Url":"http://localhost/api/x","Method":"POST","Headers":{"Content-Type":["application/json"]},"Body":{"a":1}}`,
			wantBody: `{"a":1}`, wantCT: "application/json"},
		{name: "binary body is base64", req: `{"Url":"http://localhost/api/x","Method":"POST","Headers":{"Content-Type":["application/octet-stream"]},"Body":"AAEC"}`,
			wantBody: "\x00\x01\x02", wantCT: "application/octet-stream"},
		{name: "route params", req: `{"Url":"http://localhost/api/weather/Oslo","Method":"GET","Params":{"city":"Oslo"}}`, wantParam: "Oslo"},
		{name: "client cannot spoof the invocation ID", req: `{"Url":"http://localhost/api/x","Method":"GET","Headers":{"X-Azure-Functions-InvocationId":["spoofed"]}}`, wantID: ""},
		{name: "double-encoded req", req: `"{\"Url\":\"http://localhost/api/x?a=1\",\"Method\":\"\\\"GET\\\"\"}"`, wantQuery: "a=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, srv.URL+"/WeatherHttp", []byte(`{"Data":{"req":`+tc.req+`},"Metadata":{}}`), nil)
			if got.status != 200 || got.contentType != "application/json" {
				t.Fatalf("reply = %d %q %s", got.status, got.contentType, got.body)
			}
			mu.Lock()
			defer mu.Unlock()
			if seen.URL.RawQuery != tc.wantQuery {
				t.Errorf("query = %q, want %q", seen.URL.RawQuery, tc.wantQuery)
			}
			if seenBody != tc.wantBody || seen.ContentLength != int64(len(tc.wantBody)) {
				t.Errorf("body = %q (len %d), want %q", seenBody, seen.ContentLength, tc.wantBody)
			}
			if ct := seen.Header.Get("Content-Type"); ct != tc.wantCT {
				t.Errorf("Content-Type = %q, want %q", ct, tc.wantCT)
			}
			if p := seen.PathValue("city"); p != tc.wantParam {
				t.Errorf("PathValue(city) = %q, want %q", p, tc.wantParam)
			}
			if id := seen.Header.Get(HeaderInvocationID); id != tc.wantID {
				t.Errorf("invocation ID = %q, want %q", id, tc.wantID)
			}
			var res httpResponseData
			_ = json.Unmarshal(got.resp.Outputs["res"], &res)
			if res.StatusCode != "200" || res.Headers["Content-Type"] != "text/html; charset=utf-8" || res.Body != "<html>hi</html>" {
				t.Errorf("res = %+v (an untyped body is sniffed as net/http would)", res)
			}
		})
	}
}

func TestHTTPInvocationMalformed(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("next called for a malformed invocation") })
	srv := httptest.NewServer(HTTPInvocation("req", "res", next))
	defer srv.Close()
	tests := []struct{ name, body string }{
		{"C11 not JSON", `nope`},
		{"C11 no req binding", `{"Data":{}}`},
		{"C11 bad method", `{"Data":{"req":{"Url":"http://x/api/a","Method":"G ET"}}}`},
		{"C11 bad url scheme", `{"Data":{"req":{"Url":"ftp://x/api/a","Method":"GET"}}}`},
		{"C11 headers not strings", `{"Data":{"req":{"Url":"http://x/api/a","Method":"GET","Headers":{"A":[{"x":1}]}}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, srv.URL+"/WeatherHttp", []byte(tc.body), nil)
			if got.status != 400 || got.contentType != "application/json" || len(got.resp.Logs) != 1 {
				t.Errorf("reply = %d %q %s, want a 400 JSON invocation reply", got.status, got.contentType, got.body)
			}
		})
	}
	t.Run("C11 wrong method", func(t *testing.T) {
		res, err := http.Get(srv.URL + "/WeatherHttp")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 405 || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET = %d %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
	})
	t.Run("C11 binary reply cannot be relayed", func(t *testing.T) {
		srv := httptest.NewServer(HTTPInvocation("req", "res", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte{0xff, 0xfe})
		})))
		defer srv.Close()
		got := post(t, srv.URL+"/WeatherHttp", []byte(`{"Data":{"req":{"Url":"http://x/api/a","Method":"GET"}}}`), nil)
		if got.status != 500 || got.contentType != "application/json" {
			t.Errorf("reply = %d %q %s", got.status, got.contentType, got.body)
		}
	})
}

func TestC12_HTTPInvocationRelaysRedirects(t *testing.T) {
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		t.Run("C12 "+http.StatusText(code), func(t *testing.T) {
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://elsewhere.example/api/WeatherHttp?city=Oslo", code)
			})
			srv := httptest.NewServer(HTTPInvocation("req", "res", next))
			defer srv.Close()
			got := post(t, srv.URL+"/WeatherHttp", []byte(`{"Data":{"req":{"Url":"http://localhost:7071/api/WeatherHttp","Method":"GET","Headers":{}}}}`), nil)
			if got.status != 200 || got.contentType != "application/json" {
				t.Fatalf("reply = %d %q", got.status, got.contentType)
			}
			var res httpResponseData
			if err := json.Unmarshal(got.resp.Outputs["res"], &res); err != nil {
				t.Fatal(err)
			}
			if want := http.StatusText(code); res.StatusCode != itoa(code) {
				t.Errorf("statusCode = %q, want %d (%s)", res.StatusCode, code, want)
			}
			if res.Headers["Location"] != "https://elsewhere.example/api/WeatherHttp?city=Oslo" {
				t.Errorf("Location = %q", res.Headers["Location"])
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestWithInvocation(t *testing.T) {
	var logged lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	mux := http.NewServeMux()
	mux.Handle("POST /CallerTimer", WithInvocation(logger, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logctx.From(r.Context(), nil).Info("tick")
		WriteResponse(w, 200, InvocationResponse{})
	})))
	boom := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux.Handle("POST /Boom", WithInvocation(logger, "Boom", boom))
	mux.Handle("GET /api/Boom", WithInvocation(logger, "", boom))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	got := post(t, srv.URL+"/CallerTimer", []byte(`{}`), http.Header{HeaderInvocationID: {"11111111-2222-3333-4444-555555555555"}})
	if got.status != 200 {
		t.Fatalf("status = %d", got.status)
	}
	line := logged.String()
	if !strings.Contains(line, `"invocation_id":"11111111-2222-3333-4444-555555555555"`) || !strings.Contains(line, `"function":"CallerTimer"`) {
		t.Errorf("log line lacks invocation attributes: %s", line)
	}

	t.Run("C11 panic in an invocation gives a JSON 500", func(t *testing.T) {
		got := post(t, srv.URL+"/Boom", []byte(`{}`), http.Header{HeaderInvocationID: {"abc"}})
		if got.status != 500 || got.contentType != "application/json" {
			t.Errorf("reply = %d %q %s", got.status, got.contentType, got.body)
		}
		if !strings.Contains(logged.String(), `"panic":"boom"`) || !strings.Contains(logged.String(), "goroutine") {
			t.Errorf("panic and stack not logged: %s", logged.String())
		}
	})
	t.Run("panic in the API gives problem+json", func(t *testing.T) {
		res, err := http.Get(srv.URL + "/api/Boom")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 500 || res.Header.Get("Content-Type") != "application/problem+json" || strings.Contains(string(b), "boom") {
			t.Errorf("reply = %d %q %s", res.StatusCode, res.Header.Get("Content-Type"), b)
		}
	})
}
