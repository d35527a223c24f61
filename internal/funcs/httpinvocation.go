package funcs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/weatherfunc/handler/internal/logctx"
)

// MaxHTTPResponseBytes caps the body an HTTP function may return through
// HTTPInvocation; the whole reply is held in memory to be wrapped in JSON.
const MaxHTTPResponseBytes = 4 << 20

// httpRequestData is Data.<reqBinding> as the host sends it with forwarding
// off (see testdata/02-http-trigger-request.core-tools-trace.json). Query and
// Params values are strings, Headers values arrays of strings; both forms are
// accepted for each, since the host has changed them between versions.
// Identities are not read: this API authenticates with its own bearer tokens.
type httpRequestData struct {
	URL     json.RawMessage            `json:"Url"`
	Method  json.RawMessage            `json:"Method"`
	Query   map[string]json.RawMessage `json:"Query"`
	Headers map[string]json.RawMessage `json:"Headers"`
	Params  map[string]json.RawMessage `json:"Params"`
	Body    json.RawMessage            `json:"Body"`
}

// httpResponseData is Outputs.<resBinding>: the host wants the status as a
// string and each header as one string.
type httpResponseData struct {
	StatusCode string            `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

// HTTPInvocation serves an HTTP-trigger function when the host's request
// forwarding is off (customHandler.enableForwardingHttpRequest false): the
// host POSTs an invocation whose Data.<reqBinding> describes the client's
// request ({Url, Method, Query, Headers{k:[…]}, Params, Identities, Body?}).
// HTTPInvocation rebuilds that request, runs next on it with an in-memory
// recorder, and replies 200 with Outputs.<resBinding> =
// {"statusCode":"401","headers":{"Www-Authenticate":"Bearer …"},"body":"…"}:
// the status and every header value as strings, repeated header values joined
// with ", ". A redirect from next is relayed as is (C12). Framing headers
// (Content-Length, Transfer-Encoding, Connection) are left to the host.
//
// The request context (and so the logger put there by WithInvocation) is
// passed on. X-Azure-Functions-InvocationId on the rebuilt request is the
// host's, never one a client put among its own headers.
//
// A malformed invocation gets a 400 reply, a body that is not UTF-8 text or
// exceeds MaxHTTPResponseBytes a 500: the host fails such an invocation.
//
// NOTE: a non-UTF-8 body is refused rather than sent mangled, since JSON
// strings cannot carry arbitrary bytes; this API only answers JSON.
func HTTPInvocation(reqBinding, resBinding string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logctx.From(r.Context(), nil)
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			WriteResponse(w, http.StatusMethodNotAllowed, InvocationResponse{Logs: []string{"invocations are POSTed"}})
			return
		}
		inner, err := buildHTTPRequest(r, reqBinding)
		if err != nil {
			log.Warn("malformed HTTP invocation", "error", err.Error())
			WriteResponse(w, http.StatusBadRequest, InvocationResponse{Logs: []string{err.Error()}})
			return
		}
		rec := newRecorder(MaxHTTPResponseBytes)
		next.ServeHTTP(rec, inner)
		out, err := rec.result()
		if err != nil {
			log.Error("HTTP function reply cannot be relayed", "error", err.Error())
			WriteResponse(w, http.StatusInternalServerError, InvocationResponse{Logs: []string{err.Error()}})
			return
		}
		WriteResponse(w, http.StatusOK, InvocationResponse{Outputs: map[string]any{resBinding: out}})
	})
}

func buildHTTPRequest(r *http.Request, reqBinding string) (*http.Request, error) {
	inv, err := DecodeInvocation(r.Body)
	if err != nil {
		return nil, err
	}
	raw, ok := inv.Data[reqBinding]
	if !ok {
		return nil, fmt.Errorf("funcs: invocation has no Data.%s", reqBinding)
	}
	var d httpRequestData
	if err := json.Unmarshal(DecodeScalar(raw), &d); err != nil {
		return nil, fmt.Errorf("funcs: decode Data.%s as an HTTP request: %w", reqBinding, err)
	}
	method, _ := scalarString(d.Method)
	if !validMethod(method) {
		return nil, fmt.Errorf("funcs: Data.%s.Method is not an HTTP method", reqBinding)
	}
	rawURL, _ := scalarString(d.URL)
	u, err := url.Parse(rawURL)
	if err != nil || rawURL == "" || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("funcs: Data.%s.Url is not an HTTP URL", reqBinding)
	}
	target := &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if target.Path == "" {
		target.Path = "/"
	}
	if target.RawQuery == "" && len(d.Query) > 0 {
		q := url.Values{}
		for k, v := range d.Query {
			vals, ok := stringList(v)
			if !ok {
				return nil, fmt.Errorf("funcs: Data.%s.Query.%s is not a string", reqBinding, k)
			}
			q[k] = vals
		}
		target.RawQuery = q.Encode()
	}

	header := make(http.Header, len(d.Headers))
	for k, v := range d.Headers {
		vals, ok := stringList(v)
		if !ok {
			return nil, fmt.Errorf("funcs: Data.%s.Headers.%s is not a string list", reqBinding, k)
		}
		for _, s := range vals {
			header.Add(k, s)
		}
	}
	host := header.Get("Host")
	header.Del("Host")
	if host == "" {
		host = u.Host
	}
	// Only the host may say which invocation this is.
	header.Del(HeaderInvocationID)
	if id := r.Header.Get(HeaderInvocationID); id != "" {
		header.Set(HeaderInvocationID, id)
	}

	body, err := requestBody(d.Body, header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("funcs: Data.%s.Body: %w", reqBinding, err)
	}
	header.Del("Content-Length")
	inner, err := http.NewRequestWithContext(r.Context(), method, "http://placeholder"+target.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("funcs: Data.%s: %w", reqBinding, err)
	}
	if len(body) == 0 {
		inner.Body = http.NoBody
	}
	inner.URL = target
	inner.RequestURI = target.RequestURI()
	inner.Host = host
	inner.Header = header
	inner.ContentLength = int64(len(body))
	inner.RemoteAddr = r.RemoteAddr
	for k, v := range d.Params {
		if s, ok := scalarString(v); ok {
			inner.SetPathValue(k, s)
		}
	}
	return inner, nil
}

// requestBody reads Data.req.Body: a string (base64 for binary media types, as
// the host sends octet-stream and multipart bodies) or any other JSON value,
// taken as its JSON text.
func requestBody(raw json.RawMessage, contentType string) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	if raw[0] != '"' {
		return []byte(raw), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/") {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return []byte(s), nil
}

// stringList accepts "v", ["v1","v2"] and scalars.
func stringList(raw json.RawMessage) ([]string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, false
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			s, ok := scalarString(it)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	s, ok := scalarString(raw)
	if !ok {
		return nil, false
	}
	return []string{s}, true
}

func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

var errResponseTooLarge = errors.New("funcs: HTTP function reply exceeds the size limit")

// recorder is the in-memory ResponseWriter HTTPInvocation runs next with.
type recorder struct {
	header   http.Header
	sent     http.Header // header snapshot at WriteHeader, as a real server sends it
	status   int
	body     bytes.Buffer
	limit    int
	overflow bool
}

func newRecorder(limit int) *recorder { return &recorder{header: http.Header{}, limit: limit} }

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(code int) {
	if rec.status != 0 || code < 200 { // later calls are ignored; 1xx are not final
		return
	}
	rec.status = code
	rec.sent = rec.header.Clone()
}

func (rec *recorder) Write(b []byte) (int, error) {
	rec.WriteHeader(http.StatusOK)
	if rec.body.Len()+len(b) > rec.limit {
		rec.overflow = true
		return 0, errResponseTooLarge
	}
	return rec.body.Write(b)
}

func (rec *recorder) result() (httpResponseData, error) {
	rec.WriteHeader(http.StatusOK)
	if rec.overflow {
		return httpResponseData{}, errResponseTooLarge
	}
	if !utf8.Valid(rec.body.Bytes()) {
		return httpResponseData{}, errors.New("funcs: HTTP function reply is not UTF-8 text; it cannot travel in Outputs")
	}
	h := rec.sent
	// Like net/http's server, name the type of an untyped body.
	if _, ok := h["Content-Type"]; !ok && rec.body.Len() > 0 {
		h.Set("Content-Type", http.DetectContentType(rec.body.Bytes()))
	}
	out := httpResponseData{StatusCode: strconv.Itoa(rec.status), Headers: make(map[string]string, len(h)), Body: rec.body.String()}
	for k, vs := range h {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Transfer-Encoding", "Connection":
			continue
		}
		if len(vs) > 0 {
			out.Headers[k] = strings.Join(vs, ", ")
		}
	}
	return out, nil
}
