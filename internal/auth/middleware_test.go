package auth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/weatherfunc/handler/internal/logctx"
)

func TestAuthorize(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	v := p.started(t, clk, nil)

	with := func(c map[string]any, changes map[string]any) map[string]any {
		for k, val := range changes {
			if val == nil {
				delete(c, k)
			} else {
				c[k] = val
			}
		}
		return c
	}
	tests := []struct {
		name    string
		claims  map[string]any
		appOnly bool
		wantErr bool
	}{
		{name: "app-only with the role", claims: p.appClaims(clk), appOnly: true},
		{name: "app-only with the role among others", claims: with(p.appClaims(clk), map[string]any{"roles": []string{"Other", DefaultRequiredRole}}), appOnly: true},
		{name: "app-only without idtyp", claims: with(p.appClaims(clk), map[string]any{"idtyp": nil}), appOnly: true},
		{name: "C06 app-only with neither roles nor scp", claims: with(p.appClaims(clk), map[string]any{"roles": nil, "idtyp": nil}), appOnly: true, wantErr: true},
		{name: "app-only with another role", claims: with(p.appClaims(clk), map[string]any{"roles": []string{"Weather.Read"}}), appOnly: true, wantErr: true},
		{name: "app-only with the role in another case", claims: with(p.appClaims(clk), map[string]any{"roles": []string{"Access_As_Application"}}), appOnly: true, wantErr: true},
		{name: "app-only holding the scope name as a role", claims: with(p.appClaims(clk), map[string]any{"roles": []string{DefaultRequiredScope}}), appOnly: true, wantErr: true},
		{name: "delegated with the scope", claims: p.userClaims(clk)},
		{name: "delegated with the scope only", claims: with(p.userClaims(clk), map[string]any{"scp": DefaultRequiredScope})},
		{name: "C07 delegated holding the app role but not the scope", claims: with(p.userClaims(clk), map[string]any{"scp": "User.Read", "roles": []string{DefaultRequiredRole}}), wantErr: true},
		{name: "delegated with an empty scp", claims: with(p.userClaims(clk), map[string]any{"scp": "", "roles": []string{DefaultRequiredRole}}), wantErr: true},
		{name: "idtyp user without scp but with the app role", claims: with(p.userClaims(clk), map[string]any{"scp": nil, "roles": []string{DefaultRequiredRole}}), wantErr: true},
		{name: "scope as a prefix only", claims: with(p.userClaims(clk), map[string]any{"scp": DefaultRequiredScope + "_admin"}), wantErr: true},
		{name: "ID token holding the app role (no azp)", claims: with(p.appClaims(clk), map[string]any{"azp": nil, "idtyp": nil}), appOnly: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), mint(t, k0, tt.claims, nil))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.AppOnly() != tt.appOnly {
				t.Errorf("AppOnly = %v, want %v", c.AppOnly(), tt.appOnly)
			}
			err = v.Authorize(c)
			if tt.wantErr {
				if !errors.Is(err, ErrInsufficientScope) || Reason(err) == "" {
					t.Errorf("Authorize = %v, want ErrInsufficientScope with a reason", err)
				}
				return
			}
			if err != nil {
				t.Errorf("Authorize: %v", err)
			}
		})
	}
	if err := v.Authorize(nil); err == nil {
		t.Error("Authorize(nil) accepted")
	}
}

// gateResult is what a request through Middleware produced.
type gateResult struct {
	status        int
	challenge     string
	retryAfter    string
	contentType   string
	problem       map[string]any
	reached       bool
	claims        *Claims
	principal     string // X-MS-CLIENT-PRINCIPAL-NAME as next saw it
	authorization string // Authorization as next saw it
}

func through(t *testing.T, v *Verifier, r *http.Request) gateResult {
	t.Helper()
	var res gateResult
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res.reached = true
		res.claims, _ = ClaimsFrom(r.Context())
		res.principal = r.Header.Get("X-MS-CLIENT-PRINCIPAL-NAME")
		res.authorization = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusOK)
	})
	rec := httptest.NewRecorder()
	v.Middleware(next).ServeHTTP(rec, r)
	res.status = rec.Code
	res.challenge = rec.Header().Get("WWW-Authenticate")
	res.retryAfter = rec.Header().Get("Retry-After")
	res.contentType = rec.Header().Get("Content-Type")
	if rec.Code != http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.problem); err != nil {
			t.Errorf("body is not JSON: %q", rec.Body.String())
		}
	}
	return res
}

func TestMiddleware(t *testing.T) {
	k0 := testSigner(0)
	p := newIDP(t, k0)
	clk := newClock()
	logs := &syncBuffer{}
	v := p.started(t, clk, func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })

	app := mint(t, k0, p.appClaims(clk), nil)
	user := mint(t, k0, p.userClaims(clk), nil)
	noRole := func() string {
		c := p.appClaims(clk)
		delete(c, "roles")
		return mint(t, k0, c, nil)
	}()
	c7 := func() string {
		c := p.userClaims(clk)
		c["scp"] = "User.Read"
		c["roles"] = []string{DefaultRequiredRole}
		return mint(t, k0, c, nil)
	}()
	expired := func() string {
		c := p.appClaims(clk)
		c["exp"] = clk.Now().Unix() - 3600
		return mint(t, k0, c, nil)
	}()
	realm := `Bearer realm="` + testAppURI + `"`

	get := func(hdr ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/api/WeatherHttp?city=London", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Add(hdr[i], hdr[i+1])
		}
		return r
	}
	tests := []struct {
		name      string
		req       *http.Request
		status    int
		challenge string // exact WWW-Authenticate; "" means none
	}{
		{name: "valid app-only token", req: get("Authorization", "Bearer "+app), status: 200},
		{name: "valid delegated token", req: get("Authorization", "Bearer "+user), status: 200},
		{name: "scheme lower case", req: get("Authorization", "bearer "+app), status: 200},
		{name: "scheme upper case, extra spaces", req: get("Authorization", "BEARER   "+app+" "), status: 200},
		{name: "no Authorization header", req: get(), status: 401, challenge: realm},
		{name: "token only in the query", req: httptest.NewRequest(http.MethodGet, "/api/WeatherHttp?access_token="+url.QueryEscape(app), nil), status: 401, challenge: realm},
		{name: "token only in the body", req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/api/WeatherHttp", strings.NewReader("access_token="+app))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(), status: 401, challenge: realm},
		{name: "another scheme", req: get("Authorization", "Basic dXNlcjpwYXNz"), status: 401, challenge: realm},
		{name: "Bearer with nothing after it", req: get("Authorization", "Bearer"), status: 400, challenge: realm + `, error="invalid_request", error_description="bearer token missing"`},
		{name: "Bearer and spaces", req: get("Authorization", "Bearer   "), status: 400, challenge: realm + `, error="invalid_request", error_description="bearer token missing"`},
		{name: "two tokens", req: get("Authorization", "Bearer "+app+" "+app), status: 400, challenge: realm + `, error="invalid_request", error_description="more than one token"`},
		{name: "two credentials joined by a comma", req: get("Authorization", "Bearer "+app+", Bearer "+app), status: 400, challenge: realm + `, error="invalid_request", error_description="more than one token"`},
		{name: "two Authorization headers", req: get("Authorization", "Bearer "+app, "Authorization", "Bearer "+app), status: 400, challenge: realm + `, error="invalid_request", error_description="more than one Authorization header"`},
		{name: "expired token", req: get("Authorization", "Bearer "+expired), status: 401, challenge: realm + `, error="invalid_token", error_description="token expired"`},
		{name: "garbage token", req: get("Authorization", "Bearer abc"), status: 401, challenge: realm + `, error="invalid_token", error_description="malformed token"`},
		{name: "token longer than 16 KiB", req: get("Authorization", "Bearer "+strings.Repeat("A", MaxTokenSize+1)), status: 401, challenge: realm + `, error="invalid_token", error_description="token too large"`},
		{name: "C06 app-only token without roles", req: get("Authorization", "Bearer "+noRole), status: 403, challenge: realm + `, error="insufficient_scope", error_description="app role missing", scope="access_as_application"`},
		{name: "C07 delegated token with the app role", req: get("Authorization", "Bearer "+c7), status: 403, challenge: realm + `, error="insufficient_scope", error_description="delegated scope missing", scope="access_as_user"`},
		{name: "App Service principal headers without a token", req: get("X-MS-CLIENT-PRINCIPAL-NAME", "admin", "X-MS-CLIENT-PRINCIPAL", "e30", "X-MS-CLIENT-PRINCIPAL-ID", "x"), status: 401, challenge: realm},
		{name: "App Service principal headers with a token lacking the role", req: get("Authorization", "Bearer "+noRole, "X-MS-CLIENT-PRINCIPAL-NAME", "admin"), status: 403, challenge: realm + `, error="insufficient_scope", error_description="app role missing", scope="access_as_application"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := through(t, v, tt.req)
			if res.status != tt.status {
				t.Fatalf("status = %d, want %d (problem %v)", res.status, tt.status, res.problem)
			}
			if res.challenge != tt.challenge {
				t.Errorf("WWW-Authenticate = %q\n                   want %q", res.challenge, tt.challenge)
			}
			if tt.status == 200 {
				if !res.reached || res.claims == nil || res.claims.TenantID != testTenant {
					t.Errorf("next not reached with claims: %+v", res)
				}
				return
			}
			if res.reached {
				t.Error("next reached on a refusal")
			}
			if res.contentType != "application/problem+json" {
				t.Errorf("Content-Type = %q", res.contentType)
			}
			if st, _ := res.problem["status"].(float64); int(st) != tt.status {
				t.Errorf("problem status = %v", res.problem["status"])
			}
			if ty, _ := res.problem["type"].(string); !strings.HasPrefix(ty, "https://") {
				t.Errorf("problem type = %q", ty)
			}
		})
	}

	t.Run("principal headers are removed before next", func(t *testing.T) {
		res := through(t, v, get("Authorization", "Bearer "+app, "X-MS-CLIENT-PRINCIPAL-NAME", "admin"))
		if res.status != 200 || res.principal != "" {
			t.Errorf("status %d, next saw X-MS-CLIENT-PRINCIPAL-NAME %q", res.status, res.principal)
		}
	})

	t.Run("the token does not travel past the gate", func(t *testing.T) {
		res := through(t, v, get("Authorization", "Bearer "+app))
		if res.status != 200 || res.authorization != "" {
			t.Errorf("status %d, next saw an Authorization header", res.status)
		}
	})

	t.Run("logs carry the decision, never the token", func(t *testing.T) {
		out := logs.String()
		for _, tok := range []string{app, user, noRole, expired, c7} {
			_, payload, sig := segments(tok)
			if strings.Contains(out, payload) || strings.Contains(out, sig) {
				t.Fatal("a token reached the log")
			}
		}
		for _, want := range []string{`"outcome":"allow"`, `"outcome":"deny"`, `"azp":"` + testCaller + `"`, `"tid":"` + testTenant + `"`, `"reason":"token expired"`, `"roles":["access_as_application"]`} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %s", want)
			}
		}
	})
}

// TestMiddlewareUsesRequestLogger checks that decisions go to the logger the
// request context carries (invocation_id and all), not only Options.Logger.
func TestMiddlewareUsesRequestLogger(t *testing.T) {
	p := newIDP(t, testSigner(0))
	v := p.started(t, newClock(), nil)
	buf := &syncBuffer{}
	l := slog.New(slog.NewJSONHandler(buf, nil)).With("invocation_id", "inv-1")
	r := httptest.NewRequest(http.MethodGet, "/api/WeatherHttp", nil)
	r = r.WithContext(logctx.With(r.Context(), l))
	through(t, v, r)
	if !strings.Contains(buf.String(), `"invocation_id":"inv-1"`) || !strings.Contains(buf.String(), `"outcome":"deny"`) {
		t.Errorf("request logger got %q", buf.String())
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
		err    error
	}{
		{name: "none", err: ErrNoToken},
		{name: "bearer", values: []string{"Bearer abc.def.ghi"}, want: "abc.def.ghi"},
		{name: "mixed case", values: []string{"bEaReR abc"}, want: "abc"},
		{name: "tab separator", values: []string{"Bearer\tabc"}, want: "abc"},
		{name: "b64token characters", values: []string{"Bearer a-._~+/b=="}, want: "a-._~+/b=="},
		{name: "basic", values: []string{"Basic abc"}, err: ErrNoToken},
		{name: "scheme prefix only", values: []string{"Bearerabc"}, err: ErrNoToken},
		{name: "empty header", values: []string{""}, err: ErrInvalidRequest},
		{name: "bearer alone", values: []string{"Bearer"}, err: ErrInvalidRequest},
		{name: "two tokens", values: []string{"Bearer a b"}, err: ErrInvalidRequest},
		{name: "two headers", values: []string{"Bearer a", "Bearer b"}, err: ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tt.values {
				r.Header.Add("Authorization", v)
			}
			got, err := BearerToken(r)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("BearerToken = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestClaimsFromWithoutMiddleware(t *testing.T) {
	if c, ok := ClaimsFrom(context.Background()); ok || c != nil {
		t.Error("claims found in a bare context")
	}
}
