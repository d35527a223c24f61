package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary strings to Verify with keys loaded: it must
// never panic, must refuse with ErrInvalidToken and a short fixed reason, and
// anything it accepts must satisfy every claim rule.
func FuzzVerify(f *testing.F) {
	k0 := testSigner(0)
	p := newIDP(f, k0)
	clk := newClock()
	v := p.started(f, clk, nil)
	v.refetchWait = 10 * time.Millisecond

	valid := mint(f, k0, p.appClaims(clk), nil)
	f.Add(valid)
	f.Add(mint(f, k0, v1Claims(clk), nil))
	f.Add(mint(f, k0, p.userClaims(clk), map[string]any{"crit": []string{"b64"}}))
	f.Add(mint(f, k0, p.appClaims(clk), map[string]any{"kid": nil}))
	f.Add(valid + "==")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJOb05lIn0.e30.c2ln") // {"alg":"NoNe"}
	f.Add(valid + "." + valid)            // 5 segments
	f.Add(strings.ReplaceAll(valid, "_", "/"))
	f.Add("..")
	f.Add("")

	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if err != nil {
			if c != nil {
				t.Fatal("claims with an error")
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			r := Reason(err)
			if r == "" || len(r) > 64 || (len(raw) > 64 && strings.Contains(r, raw)) {
				t.Fatalf("reason %q", r)
			}
			return
		}
		switch c.Version {
		case "2.0":
			if c.Audience != testClient || c.Issuer != p.v2Iss() {
				t.Fatalf("accepted v2 claims %+v", c)
			}
		case "1.0":
			if c.Audience != testAppURI || c.Issuer != v1Issuer {
				t.Fatalf("accepted v1 claims %+v", c)
			}
		default:
			t.Fatalf("accepted ver %q", c.Version)
		}
		if c.TenantID != testTenant || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}

// FuzzBearerToken feeds arbitrary Authorization header values (one per
// line) to BearerToken.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer  abc ", "Bearer", "Bearer a b", "Bearer a\nBearer b", "Basic x", "Bearer a,b", "Bearer\t\tx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		var values []string
		if in != "" {
			values = strings.Split(in, "\n")
		}
		for _, v := range values {
			r.Header.Add("Authorization", v)
		}
		tok, err := BearerToken(r)
		if err != nil {
			if tok != "" || !(errors.Is(err, ErrNoToken) || errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrInvalidToken)) {
				t.Fatalf("BearerToken = %q, %v", tok, err)
			}
			if errors.Is(err, ErrInvalidToken) && (len(values) != 1 || len(values[0]) <= maxAuthorization) {
				t.Fatalf("BearerToken(%d bytes) = %v", len(in), err)
			}
			return
		}
		if len(values) != 1 || tok == "" || len(values[0]) > maxAuthorization || strings.ContainsAny(tok, " \t,") || !strings.Contains(values[0], tok) {
			t.Fatalf("BearerToken(%q) = %q", values, tok)
		}
	})
}

// FuzzClaimsJSON feeds arbitrary bytes to the claims decoder.
func FuzzClaimsJSON(f *testing.F) {
	f.Add([]byte(`{"exp":1,"aud":"a","roles":["r"],"scp":"a b"}`))
	f.Add([]byte(`{"exp":"1"}`))
	f.Add([]byte(`{"aud":["a"],"aud":"b"}`))
	f.Add([]byte(`{"exp":1e400}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var w wireClaims
		if err := json.Unmarshal(b, &w); err != nil {
			return
		}
		if !w.decoded {
			t.Fatalf("decoded %q without the object flag", b)
		}
		for _, d := range []numericDate{w.exp, w.nbf, w.iat} {
			if d.set && (d.t.Before(time.Unix(0, 0)) || d.t.After(time.Unix(maxNumericDate+1, 0))) {
				t.Fatalf("date out of range: %v", d.t)
			}
		}
		_ = w.claims().AppOnly()
	})
}
