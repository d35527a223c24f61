package host

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"github.com/weatherfunc/handler/internal/devstack/standin"
	"github.com/weatherfunc/handler/internal/funcs"
)

// token is one segment of a route template.
type token struct {
	literal  string // when not a parameter
	param    string // {name} or {name:constraint}
	catchAll bool   // {*name}
	optional bool   // {name?}
}

// parseRoute reads a Functions route template such as "WeatherHttp" or
// "weather/{city}/{*rest}". NOTE: parameter constraints ({id:int}) are
// accepted but not enforced by the stand-in.
func parseRoute(tmpl string) ([]token, error) {
	tmpl = strings.Trim(tmpl, "/")
	if tmpl == "" {
		return nil, nil
	}
	segs := strings.Split(tmpl, "/")
	out := make([]token, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		if !strings.HasPrefix(s, "{") {
			if strings.ContainsAny(s, "{}") || s == "" {
				return nil, fmt.Errorf("route %q: unsupported segment %q", tmpl, s)
			}
			out = append(out, token{literal: s})
			continue
		}
		if !strings.HasSuffix(s, "}") {
			return nil, fmt.Errorf("route %q: unsupported segment %q", tmpl, s)
		}
		name := s[1 : len(s)-1]
		var t token
		if strings.HasPrefix(name, "*") {
			t.catchAll, name = true, name[1:]
		}
		if strings.HasSuffix(name, "?") {
			t.optional, name = true, strings.TrimSuffix(name, "?")
		}
		name, _, _ = strings.Cut(name, ":")
		name, _, _ = strings.Cut(name, "=") // default values are not supported either; the name stays
		if name == "" || strings.ContainsAny(name, "{}*?") {
			return nil, fmt.Errorf("route %q: bad parameter %q", tmpl, s)
		}
		if (t.catchAll || t.optional) && !last {
			return nil, fmt.Errorf("route %q: %q must be the last segment", tmpl, s)
		}
		t.param = name
		out = append(out, t)
	}
	return out, nil
}

// match matches the path below the route prefix; literals compare
// case-insensitively, as ASP.NET routing does.
func matchRoute(route []token, rest string) (map[string]string, bool) {
	rest = strings.Trim(rest, "/")
	var segs []string
	if rest != "" {
		segs = strings.Split(rest, "/")
	}
	params := map[string]string{}
	for i, t := range route {
		if t.catchAll {
			params[t.param] = strings.Join(segs[min(i, len(segs)):], "/")
			return params, true
		}
		if i >= len(segs) {
			return params, t.optional && i == len(route)-1
		}
		switch {
		case t.param != "":
			if segs[i] == "" {
				return nil, false
			}
			params[t.param] = segs[i]
		case !strings.EqualFold(t.literal, segs[i]):
			return nil, false
		}
	}
	return params, len(segs) == len(route)
}

// path is the function's URL path (template form).
func (fn *function) path() string {
	var b strings.Builder
	for _, t := range fn.route {
		b.WriteByte('/')
		switch {
		case t.literal != "":
			b.WriteString(t.literal)
		case t.catchAll:
			b.WriteString("{*" + t.param + "}")
		default:
			b.WriteString("{" + t.param + "}")
		}
	}
	return b.String()
}

// serve is the host's HTTP front door.
func (h *Host) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/admin/functions/") {
		h.serveAdmin(w, r, strings.TrimPrefix(p, "/admin/functions/"))
		return
	}
	prefix := "/"
	if h.cfg.RoutePrefix != "" {
		prefix = "/" + h.cfg.RoutePrefix + "/"
	}
	if p == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && h.cfg.RoutePrefix != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Azure Functions host stand-in "+HostVersion+" is running.\n")
		return
	}
	if len(p) < len(prefix) || !strings.EqualFold(p[:len(prefix)], prefix) {
		http.NotFound(w, r)
		return
	}
	rest := p[len(prefix):]
	for _, fn := range h.fns {
		if fn.kind != kindHTTP {
			continue
		}
		params, ok := matchRoute(fn.route, rest)
		if !ok {
			continue
		}
		// NOTE: like the real host (an HTTP method route constraint), a
		// method the function does not list is a 404, not a 405.
		if !methodAllowed(fn.trigger.Methods, r.Method) {
			continue
		}
		if h.cfg.CustomHandler.EnableForwardingHTTPRequest {
			h.forward(w, r, fn)
		} else {
			h.invokeHTTP(w, r, fn, params)
		}
		return
	}
	http.NotFound(w, r)
}

func methodAllowed(methods []string, m string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, a := range methods {
		if strings.EqualFold(a, m) {
			return true
		}
	}
	return false
}

// serveAdmin runs a non-HTTP function now, as POST /admin/functions/<Fn>
// does on the real host (Core Tools leaves it open locally): 202 Accepted.
func (h *Host) serveAdmin(w http.ResponseWriter, r *http.Request, name string) {
	fn := h.lookup(name)
	if fn == nil || fn.kind != kindTimer {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.mu.Lock()
	if h.closing { // Close may already be waiting for the group
		h.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		_, _ = h.fireTimer(h.ctx, fn, false, h.opts.Now())
	}()
	w.WriteHeader(http.StatusAccepted)
}

type ctxKey int

const forwardKey ctxKey = 0

// forwardState follows one forwarded request through the proxy.
type forwardState struct {
	id     string
	failed bool
}

// newProxy builds the forwarding proxy: same path and query, every header
// (X-Forwarded-* included), the host's invocation headers, body only when
// Content-Length > 0, the reply relayed as is, redirects not followed (C12).
// As any HTTP/1.1 proxy must, it drops hop-by-hop headers both ways.
func (h *Host) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = h.handlerAddr()
			pr.Out.Host = pr.In.Host
			for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = append([]string(nil), v...)
				}
			}
			if pr.In.ContentLength <= 0 {
				pr.Out.Body = nil
				pr.Out.ContentLength = 0
				pr.Out.Header.Del("Content-Length")
			}
			st, _ := pr.In.Context().Value(forwardKey).(*forwardState)
			if st != nil {
				pr.Out.Header.Set(funcs.HeaderInvocationID, st.id)
			}
			pr.Out.Header.Set(funcs.HeaderHostVersion, HostVersion)
			// NOTE: the real host appends a second User-Agent line; Go's client
			// sends one, so the host's product token joins the client's.
			ua := "Azure-Functions-Host/" + HostVersion
			if in := pr.In.Header.Get("User-Agent"); in != "" {
				ua = in + " " + ua
			}
			pr.Out.Header.Set("User-Agent", ua)
		},
		Transport: h.transport,
		ErrorLog:  h.log.errorLogger(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			st, _ := r.Context().Value(forwardKey).(*forwardState)
			if st != nil {
				st.failed = true
				h.log.errorf("Forwarding to the handler failed (Id=%s): %v", st.id, err)
			}
			w.WriteHeader(http.StatusInternalServerError)
		},
	}
}

// forward relays a request to the handler at the same path and query.
func (h *Host) forward(w http.ResponseWriter, r *http.Request, fn *function) {
	st := &forwardState{id: standin.GUID()}
	ctx := context.WithValue(r.Context(), forwardKey, st)
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	h.log.hostf("Executing 'Functions.%s' (Reason='This function was programmatically called via the host APIs.', Id=%s)", fn.Name, st.id)
	start := h.opts.Now()
	h.proxy.ServeHTTP(&verbatimWriter{ResponseWriter: w}, r.WithContext(ctx))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil {
		st.failed = true
		h.recycle(fn)
	}
	outcome := "Succeeded"
	if st.failed {
		outcome = "Failed"
	}
	h.log.hostf("Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)", fn.Name, outcome, st.id, h.opts.Now().Sub(start).Milliseconds())
}

// verbatimWriter stops net/http from adding a Content-Type the handler did
// not send (it would sniff one from the body).
type verbatimWriter struct {
	http.ResponseWriter
	wrote bool
}

func (v *verbatimWriter) WriteHeader(code int) {
	if !v.wrote && code >= 200 {
		v.wrote = true
		if _, ok := v.Header()["Content-Type"]; !ok {
			v.Header()["Content-Type"] = nil
		}
	}
	v.ResponseWriter.WriteHeader(code)
}

func (v *verbatimWriter) Write(b []byte) (int, error) {
	if !v.wrote {
		v.WriteHeader(http.StatusOK)
	}
	return v.ResponseWriter.Write(b)
}

func (v *verbatimWriter) Unwrap() http.ResponseWriter { return v.ResponseWriter }

// The forwarding-off wire shapes, as in
// testdata/02-http-trigger-request.core-tools-trace.json.
type httpInvocation struct {
	Data     map[string]httpRequestData `json:"Data"`
	Metadata httpMetadata               `json:"Metadata"`
}

type httpRequestData struct {
	URL        string              `json:"Url"`
	Method     string              `json:"Method"`
	Query      map[string]string   `json:"Query"`
	Headers    map[string][]string `json:"Headers"`
	Params     map[string]string   `json:"Params"`
	Identities []identity          `json:"Identities"`
	Body       *string             `json:"Body,omitempty"`
}

// identity is the anonymous ClaimsIdentity the host sends when no platform
// authentication ran (the recording's one entry).
type identity struct {
	AuthenticationType *string  `json:"AuthenticationType"`
	IsAuthenticated    bool     `json:"IsAuthenticated"`
	Actor              *string  `json:"Actor"`
	BootstrapContext   *string  `json:"BootstrapContext"`
	Claims             []string `json:"Claims"`
	Label              *string  `json:"Label"`
	Name               *string  `json:"Name"`
	NameClaimType      string   `json:"NameClaimType"`
	RoleClaimType      string   `json:"RoleClaimType"`
}

type httpMetadata struct {
	Query   map[string]string `json:"Query"`
	Headers map[string]string `json:"Headers"`
	Sys     sysBlock          `json:"sys"`
}

type sysBlock struct {
	MethodName string `json:"MethodName"`
	UtcNow     string `json:"UtcNow"`
	RandGuid   string `json:"RandGuid"`
}

// maxForwardBody caps a client body turned into JSON (forwarding off).
const maxForwardBody = 1 << 20

// httpInvocationBody builds the JSON invocation for an HTTP request when
// forwarding is off. It reads r.Body only when Content-Length > 0.
func (h *Host) httpInvocationBody(r *http.Request, fn *function, params map[string]string) ([]byte, error) {
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = strings.Join(v, ",")
	}
	headers := map[string][]string{}
	flat := map[string]string{}
	for k, v := range r.Header {
		headers[k] = append([]string(nil), v...)
		flat[k] = strings.Join(v, ",")
	}
	headers["Host"] = []string{r.Host}
	flat["Host"] = r.Host
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if params == nil {
		params = map[string]string{}
	}
	req := httpRequestData{
		URL:     scheme + "://" + r.Host + r.URL.RequestURI(),
		Method:  r.Method,
		Query:   q,
		Headers: headers,
		Params:  params,
		Identities: []identity{{
			Claims:        []string{},
			NameClaimType: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
			RoleClaimType: "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
		}},
	}
	if r.ContentLength > 0 {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxForwardBody+1))
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		if len(b) > maxForwardBody {
			return nil, fmt.Errorf("request body over %d bytes", maxForwardBody)
		}
		s := string(b)
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/") {
			s = base64.StdEncoding.EncodeToString(b)
		}
		req.Body = &s
	}
	reqBinding := fn.trigger.Name
	inv := httpInvocation{
		Data: map[string]httpRequestData{reqBinding: req},
		Metadata: httpMetadata{Query: q, Headers: flat, Sys: sysBlock{
			// The recording shows MethodName plain here (unlike on timer invocations).
			MethodName: fn.Name,
			UtcNow:     formatUtcNow(h.opts.Now()),
			RandGuid:   standin.GUID(),
		}},
	}
	return json.Marshal(inv)
}

// invokeHTTP serves an HTTP function with forwarding off: the JSON
// invocation goes to POST /<Fn>, Outputs.<res> comes back as the reply. A
// failed invocation is a bare 500, as on the real host.
func (h *Host) invokeHTTP(w http.ResponseWriter, r *http.Request, fn *function, params map[string]string) {
	id := standin.GUID()
	body, err := h.httpInvocationBody(r, fn, params)
	if err != nil {
		h.log.errorf("Functions.%s (Id=%s): %v", fn.Name, id, err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h.log.hostf("Executing 'Functions.%s' (Reason='This function was programmatically called via the host APIs.', Id=%s)", fn.Name, id)
	start := h.opts.Now()
	reply := h.invoke(r.Context(), fn, id, body)
	var status int
	var header http.Header
	var out []byte
	if !reply.failed {
		raw, ok := reply.outputs[fn.httpOut]
		if fn.httpOut == "$return" {
			raw, ok = reply.ret, len(reply.ret) > 0
		}
		if !ok || fn.httpOut == "" {
			reply.failed, reply.reason = true, fmt.Sprintf("the reply has no Outputs.%s", fn.httpOut)
		} else if status, header, out, err = decodeHTTPOutput(raw); err != nil {
			reply.failed, reply.reason = true, fmt.Sprintf("Outputs.%s: %v", fn.httpOut, err)
		}
	}
	h.logOutcome(fn, id, reply, h.opts.Now().Sub(start))
	if reply.failed {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	for k, vs := range header {
		w.Header()[k] = vs
	}
	if _, ok := w.Header()["Content-Type"]; !ok {
		w.Header()["Content-Type"] = nil // relay as is: no sniffed type
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// decodeHTTPOutput reads {"statusCode":"401"|401,"headers":{k:"v"|["v"]},"body":"…"|{…}}.
func decodeHTTPOutput(raw json.RawMessage) (int, http.Header, []byte, error) {
	var res struct {
		StatusCode json.RawMessage            `json:"statusCode"`
		Headers    map[string]json.RawMessage `json:"headers"`
		Body       json.RawMessage            `json:"body"`
	}
	if err := json.Unmarshal(funcs.DecodeScalar(raw), &res); err != nil {
		return 0, nil, nil, fmt.Errorf("not an HTTP response object: %w", err)
	}
	status := http.StatusOK
	if len(res.StatusCode) > 0 && string(res.StatusCode) != "null" {
		s := strings.Trim(string(bytes.TrimSpace(res.StatusCode)), `"`)
		n, err := strconv.Atoi(s)
		if err != nil || n < 200 || n > 599 {
			return 0, nil, nil, fmt.Errorf("statusCode %s is not an HTTP status", res.StatusCode)
		}
		status = n
	}
	header := http.Header{}
	for k, v := range res.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Transfer-Encoding", "Connection":
			continue
		}
		var list []json.RawMessage
		if bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
			if err := json.Unmarshal(v, &list); err != nil {
				return 0, nil, nil, fmt.Errorf("header %s: %w", k, err)
			}
		} else {
			list = []json.RawMessage{v}
		}
		for _, item := range list {
			var s string
			if err := json.Unmarshal(item, &s); err != nil {
				s = string(bytes.TrimSpace(item)) // numbers and booleans as written
			}
			header.Add(k, s)
		}
	}
	var body []byte
	if b := bytes.TrimSpace(res.Body); len(b) > 0 && string(b) != "null" {
		var s string
		if b[0] == '"' {
			if err := json.Unmarshal(b, &s); err != nil {
				return 0, nil, nil, fmt.Errorf("body: %w", err)
			}
			body = []byte(s)
		} else {
			body = b
		}
	}
	return status, header, body, nil
}
