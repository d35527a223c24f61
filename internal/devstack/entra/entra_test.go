package entra

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/weatherfunc/handler/internal/devstack/tlsca"
	"github.com/weatherfunc/handler/internal/testutil"
)

const (
	tenantID    = "8a7f1e2d-3c4b-4a5e-9f60-718293a4b5c6"
	apiClientID = "0f1e2d3c-4b5a-4697-8877-665544332211"
	daemonID    = "11111111-2222-4333-8444-555555555555"
	noRoleID    = "99999999-8888-4777-8666-555555555555"
	daemonPass  = "s3cret~value.with-chars_0123"
)

// fixedNow is the stand-in's clock in these tests.
var fixedNow = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

type syncBuffer = testutil.SyncBuffer

type fixture struct {
	srv    *Server
	client *http.Client
	logs   *syncBuffer
}

func start(t *testing.T) fixture {
	t.Helper()
	ca, err := tlsca.New()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := Start(ca, Options{
		TenantID: tenantID,
		Clients: map[string]Client{
			daemonID: {Secret: daemonPass, Roles: []string{"access_as_application"}},
			noRoleID: {Secret: "other-secret"},
		},
		API:    API{ClientID: apiClientID},
		Now:    func() time.Time { return fixedNow },
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return fixture{srv: srv, client: ca.Client(), logs: logs}
}

func (f fixture) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := f.client.Get(f.srv.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (f fixture) postForm(t *testing.T, path, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyOrder returns the top-level member names of a JSON object in document order.
func keyOrder(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %v %v", tok, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestMetadata(t *testing.T) {
	f := start(t)
	base := f.srv.URL() + "/" + tenantID
	tests := []struct {
		name     string
		path     string
		recorded string
		want     map[string]string
	}{
		{
			name:     "v2",
			path:     "/" + tenantID + "/v2.0/.well-known/openid-configuration",
			recorded: "openid-configuration-common-v2-2024.json",
			want: map[string]string{
				"issuer":                 base + "/v2.0",
				"jwks_uri":               base + "/discovery/v2.0/keys",
				"token_endpoint":         base + "/oauth2/v2.0/token",
				"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			},
		},
		{
			name:     "v1",
			path:     "/" + tenantID + "/.well-known/openid-configuration",
			recorded: "openid-configuration-common-v1-2024.json",
			want: map[string]string{
				"issuer":   "https://sts.windows.net/" + tenantID + "/",
				"jwks_uri": base + "/discovery/keys",
			},
		},
		{
			name:     "tenant in upper case",
			path:     "/" + strings.ToUpper(tenantID) + "/v2.0/.well-known/openid-configuration",
			recorded: "openid-configuration-common-v2-2024.json",
			want:     map[string]string{"issuer": base + "/v2.0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, tt.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if got, want := keyOrder(t, body), keyOrder(t, readTestdata(t, tt.recorded)); !slices.Equal(got, want) {
				t.Errorf("members\n got %v\nwant %v (recorded)", got, want)
			}
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if doc[k] != v {
					t.Errorf("%s = %v, want %s", k, doc[k], v)
				}
			}
		})
	}
}

func TestUnknownTenant(t *testing.T) {
	f := start(t)
	for _, path := range []string{
		"/common/v2.0/.well-known/openid-configuration",
		"/other-tenant/discovery/v2.0/keys",
	} {
		resp, body := f.get(t, path)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", path, resp.StatusCode)
		}
		checkErrorBody(t, body, "invalid_tenant", 90002)
	}
	resp, body := f.postForm(t, "/other-tenant/oauth2/v2.0/token", "grant_type=client_credentials", nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("token for other tenant: status %d", resp.StatusCode)
	}
	checkErrorBody(t, body, "invalid_tenant", 90002)
}

func TestKeysDocument(t *testing.T) {
	f := start(t)
	tests := []struct {
		name       string
		path       string
		recorded   string
		wantIssuer string
	}{
		{"v2", "/" + tenantID + "/discovery/v2.0/keys", "jwks-common-v2-2024-10-with-issuer.json", f.srv.URL() + "/{tenantid}/v2.0"},
		{"v1", "/" + tenantID + "/discovery/keys", "jwks-common-v1-2024.json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, tt.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var got, rec struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(readTestdata(t, tt.recorded), &rec); err != nil {
				t.Fatal(err)
			}
			if len(got.Keys) != 1 {
				t.Fatalf("%d keys, want 1", len(got.Keys))
			}
			k := got.Keys[0]
			if gotM, wantM := sortedKeys(k), sortedKeys(rec.Keys[0]); !slices.Equal(gotM, wantM) {
				t.Errorf("key members %v, recorded %v", gotM, wantM)
			}
			if k["kty"] != "RSA" || k["use"] != "sig" || k["kid"] != f.srv.KeyID() || k["x5t"] != f.srv.KeyID() || k["e"] != "AQAB" {
				t.Errorf("key = %v", k)
			}
			if iss, _ := k["issuer"].(string); iss != tt.wantIssuer {
				t.Errorf("issuer = %q, want %q", iss, tt.wantIssuer)
			}
		})
	}
	if n := f.srv.KeysRequests(); n != 2 {
		t.Errorf("KeysRequests = %d, want 2", n)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// publishedKeys loads the stand-in's v2 keys document and returns a
// jwt.Keyfunc that picks a key by kid, the way a resource server would. The
// key comes from the x5c certificate (crypto/x509), and the document's n and e
// must be that key's.
//
// (jwkset also accepts the document, x5t check included; it is not used here
// because importing it needs go.mod's go line at 1.25.0.)
func publishedKeys(t *testing.T, f fixture) jwt.Keyfunc {
	t.Helper()
	_, body := f.get(t, "/"+tenantID+"/discovery/v2.0/keys")
	var set struct {
		Keys []struct {
			Kid string   `json:"kid"`
			X5t string   `json:"x5t"`
			N   string   `json:"n"`
			E   string   `json:"e"`
			X5c []string `json:"x5c"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	byKID := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		der, err := base64.StdEncoding.DecodeString(k.X5c[0])
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			t.Fatalf("x5c key is %T", cert.PublicKey)
		}
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil || new(big.Int).SetBytes(n).Cmp(pub.N) != 0 || k.E != "AQAB" || pub.E != 65537 {
			t.Fatalf("n/e do not match the x5c certificate (%v)", err)
		}
		sum := sha1.Sum(der)
		if k.X5t != base64.RawURLEncoding.EncodeToString(sum[:]) {
			t.Errorf("x5t %q is not the certificate's thumbprint", k.X5t)
		}
		if !pub.Equal(f.srv.PublicKey()) {
			t.Error("published key is not the signing key")
		}
		byKID[k.Kid] = pub
	}
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if k, ok := byKID[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
}

func parseStrict(t *testing.T, kf jwt.Keyfunc, tok, iss, aud string) (jwt.MapClaims, error) {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, kf,
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(iss),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return fixedNow.Add(time.Minute) }),
	)
	return claims, err
}

func TestMintVerifiesWithPublishedKeys(t *testing.T) {
	f := start(t)
	kf := publishedKeys(t, f)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		opts     MintOptions
		iss, aud string
		wantErr  bool
		check    func(t *testing.T, c jwt.MapClaims)
	}{
		{
			name: "v2 app-only with role",
			opts: MintOptions{ClientID: daemonID, Roles: []string{"access_as_application"}},
			iss:  f.srv.Issuer(), aud: apiClientID,
			check: func(t *testing.T, c jwt.MapClaims) {
				want := map[string]any{"azp": daemonID, "azpacr": "1", "idtyp": "app", "tid": tenantID, "ver": "2.0"}
				for k, v := range want {
					if c[k] != v {
						t.Errorf("%s = %v, want %v", k, c[k], v)
					}
				}
				if c["sub"] != c["oid"] || c["oid"] == "" {
					t.Errorf("sub %v / oid %v", c["sub"], c["oid"])
				}
				if !reflect.DeepEqual(c["roles"], []any{"access_as_application"}) {
					t.Errorf("roles = %v", c["roles"])
				}
				if c["exp"] != float64(fixedNow.Add(time.Hour).Unix()) {
					t.Errorf("exp = %v", c["exp"])
				}
			},
		},
		{
			name: "v2 without roles omits the claim (C06 shape)",
			opts: MintOptions{ClientID: noRoleID},
			iss:  f.srv.Issuer(), aud: apiClientID,
			check: func(t *testing.T, c jwt.MapClaims) {
				if _, ok := c["roles"]; ok {
					t.Errorf("roles present: %v", c["roles"])
				}
				if _, ok := c["scp"]; ok {
					t.Error("scp present")
				}
			},
		},
		{
			name: "v1 (C01 shape)",
			opts: MintOptions{ClientID: daemonID, Version: "1.0", Roles: []string{"access_as_application"}},
			iss:  "https://sts.windows.net/" + tenantID + "/", aud: "api://" + apiClientID,
			check: func(t *testing.T, c jwt.MapClaims) {
				if c["appid"] != daemonID || c["ver"] != "1.0" {
					t.Errorf("appid %v ver %v", c["appid"], c["ver"])
				}
			},
		},
		{
			name: "delegated",
			opts: MintOptions{ClientID: daemonID, Scopes: []string{"access_as_user", "other"}},
			iss:  f.srv.Issuer(), aud: apiClientID,
			check: func(t *testing.T, c jwt.MapClaims) {
				if c["scp"] != "access_as_user other" {
					t.Errorf("scp = %v", c["scp"])
				}
				if _, ok := c["idtyp"]; ok {
					t.Error("delegated token carries idtyp app")
				}
			},
		},
		{
			name: "extra overrides and removes claims",
			opts: MintOptions{ClientID: daemonID, Extra: map[string]any{"aud": "https://graph.microsoft.com", "exp": nil}},
			iss:  f.srv.Issuer(), aud: "https://graph.microsoft.com",
			wantErr: true, // exp is required
		},
		{
			name: "unpublished key",
			opts: MintOptions{ClientID: daemonID, Key: other, KeyID: f.srv.KeyID()},
			iss:  f.srv.Issuer(), aud: apiClientID,
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := f.srv.Mint(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseStrict(t, kf, tok, tt.iss, tt.aud)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parse error = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestMintHeader(t *testing.T) {
	f := start(t)
	tok, err := f.srv.Mint(MintOptions{ClientID: daemonID})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"typ": "JWT", "alg": "RS256", "kid": f.srv.KeyID()}
	if !reflect.DeepEqual(p.Header, want) {
		t.Errorf("header = %v, want %v", p.Header, want)
	}
	if _, err := f.srv.Mint(MintOptions{}); err == nil {
		t.Error("Mint without ClientID succeeded")
	}
	if _, err := f.srv.Mint(MintOptions{ClientID: daemonID, Version: "3.0"}); err == nil {
		t.Error("Mint with version 3.0 succeeded")
	}
}

// msalBody is the form MSAL Go v1.10.1 sends (testdata/observed.msal-go-v1.10.1.fake-authority.txt).
func msalBody(clientID, secret, scope string) string {
	return url.Values{
		"client_id":     {clientID},
		"client_secret": {secret},
		"grant_type":    {"client_credentials"},
		"scope":         {scope + " openid offline_access profile"},
	}.Encode()
}

func TestTokenClientCredentials(t *testing.T) {
	f := start(t)
	kf := publishedKeys(t, f)
	tests := []struct {
		name      string
		client    string
		secret    string
		scope     string
		wantRoles []any
	}{
		{"app id uri scope", daemonID, daemonPass, "api://" + apiClientID + "/.default", []any{"access_as_application"}},
		{"client id scope", daemonID, daemonPass, apiClientID + "/.default", []any{"access_as_application"}},
		{"client without role", noRoleID, "other-secret", "api://" + apiClientID + "/.default", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.postForm(t, "/"+tenantID+"/oauth2/v2.0/token", msalBody(tt.client, tt.secret, tt.scope), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if got, want := keyOrder(t, body), keyOrder(t, readTestdata(t, "derived_token_200_client_credentials.body.json")); !slices.Equal(got, want) {
				t.Errorf("members %v, recorded %v", got, want)
			}
			var tr struct {
				TokenType    string      `json:"token_type"`
				ExpiresIn    json.Number `json:"expires_in"`
				ExtExpiresIn json.Number `json:"ext_expires_in"`
				AccessToken  string      `json:"access_token"`
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&tr); err != nil {
				t.Fatal(err)
			}
			if tr.TokenType != "Bearer" || tr.ExpiresIn != "3599" || tr.ExtExpiresIn != "3599" {
				t.Errorf("token_type %q expires_in %s ext_expires_in %s", tr.TokenType, tr.ExpiresIn, tr.ExtExpiresIn)
			}
			c, err := parseStrict(t, kf, tr.AccessToken, f.srv.Issuer(), apiClientID)
			if err != nil {
				t.Fatalf("issued token does not verify: %v", err)
			}
			if c["azp"] != tt.client {
				t.Errorf("azp = %v", c["azp"])
			}
			roles, ok := c["roles"]
			if tt.wantRoles == nil && ok {
				t.Errorf("roles = %v, want none", roles)
			}
			if tt.wantRoles != nil && !reflect.DeepEqual(roles, tt.wantRoles) {
				t.Errorf("roles = %v, want %v", roles, tt.wantRoles)
			}
			if strings.Contains(f.logs.String(), tr.AccessToken) {
				t.Error("token in logs")
			}
		})
	}
	if n := f.srv.TokenRequests(); n != len(tests) {
		t.Errorf("TokenRequests = %d, want %d", n, len(tests))
	}
}

var descRE = regexp.MustCompile(`^AADSTS(\d+): (.+)\r\nTrace ID: ([0-9a-f-]{36})\r\nCorrelation ID: ([0-9a-f-]{36})\r\nTimestamp: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)$`)

// checkErrorBody asserts the body has the recorded AADSTS7000215 body's
// members in its order, and that its parts agree with each other.
func checkErrorBody(t *testing.T, body []byte, wantErr string, wantCode int) errorBody {
	t.Helper()
	rec := readTestdata(t, "derived_token_401_AADSTS7000215_invalid_client_secret.body.json")
	if got, want := keyOrder(t, body), keyOrder(t, rec); !slices.Equal(got, want) {
		t.Errorf("members %v, recorded %v", got, want)
	}
	var b errorBody
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Error != wantErr || !slices.Equal(b.ErrorCodes, []int{wantCode}) {
		t.Errorf("error %q codes %v, want %q [%d]", b.Error, b.ErrorCodes, wantErr, wantCode)
	}
	m := descRE.FindStringSubmatch(b.ErrorDescription)
	if m == nil {
		t.Fatalf("error_description shape: %q", b.ErrorDescription)
	}
	if m[1] != itoa(wantCode) || m[3] != b.TraceID || m[4] != b.CorrelationID || m[5] != b.Timestamp {
		t.Errorf("error_description %q disagrees with the body %+v", b.ErrorDescription, b)
	}
	if b.Timestamp != "2025-03-14 09:26:53Z" {
		t.Errorf("timestamp %q (injected clock not used)", b.Timestamp)
	}
	if !strings.HasSuffix(b.ErrorURI, "/error?code="+itoa(wantCode)) {
		t.Errorf("error_uri %q", b.ErrorURI)
	}
	return b
}

func itoa(n int) string { return strconv.Itoa(n) }

func attestedPrefix(t *testing.T, code string) string {
	t.Helper()
	for _, line := range strings.Split(string(readTestdata(t, "aadsts_error_messages_attested.txt")), "\n") {
		if i := strings.Index(line, code+": "); i >= 0 && strings.HasPrefix(line, "{") {
			msg := line[i+len(code)+2:]
			msg, _, _ = strings.Cut(msg, " [...]")
			return msg
		}
	}
	t.Fatalf("no attested message for %s", code)
	return ""
}

func TestTokenErrors(t *testing.T) {
	f := start(t)
	scope := "api://" + apiClientID + "/.default"
	corr := "1c795c6b-15ea-4a37-aece-ce6c069cf7dd"
	placeholders := readTestdata(t, "aadsts700016_app_not_found_400.placeholders.body.json")
	var unknownRec errorBody
	if err := json.Unmarshal(placeholders, &unknownRec); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		err         string
		code        int
		msgPrefix   string
	}{
		{name: "wrong secret", body: msalBody(daemonID, "wrong", scope), status: 401, err: "invalid_client", code: 7000215, msgPrefix: "Invalid client secret is provided."},
		{name: "secret of another client", body: msalBody(daemonID, "other-secret", scope), status: 401, err: "invalid_client", code: 7000215},
		{name: "no credential", body: "grant_type=client_credentials&client_id=" + daemonID + "&scope=" + url.QueryEscape(scope), status: 401, err: "invalid_client", code: 7000218},
		{name: "unknown client", body: msalBody("00000000-0000-4000-8000-000000000000", daemonPass, scope), status: 400, err: "unauthorized_client", code: 700016,
			msgPrefix: strings.ReplaceAll(strings.SplitN(unknownRec.ErrorDescription, "'", 2)[0], "AADSTS700016: ", "")},
		{name: "C08 scope without /.default", body: msalBody(daemonID, daemonPass, "User.Read"), status: 400, err: "invalid_scope", code: 1002012, msgPrefix: attestedPrefix(t, "AADSTS1002012")},
		{name: "C08 bare App ID URI", body: msalBody(daemonID, daemonPass, "api://"+apiClientID), status: 400, err: "invalid_scope", code: 1002012},
		{name: "two resources", body: msalBody(daemonID, daemonPass, scope+" https://graph.microsoft.com/.default"), status: 400, err: "invalid_scope", code: 70011},
		{name: "missing scope", body: "grant_type=client_credentials&client_id=" + daemonID + "&client_secret=" + daemonPass, status: 400, err: "invalid_request", code: 900144},
		{name: "unknown resource", body: msalBody(daemonID, daemonPass, "api://someone-else/.default"), status: 400, err: "invalid_resource", code: 500011, msgPrefix: "The resource principal named api://someone-else was not found"},
		{name: "unsupported grant", body: "grant_type=password&client_id=" + daemonID, status: 400, err: "unsupported_grant_type", code: 70003},
		{name: "missing grant", body: "client_id=" + daemonID, status: 400, err: "invalid_request", code: 900144},
		{name: "missing client id", body: "grant_type=client_credentials", status: 400, err: "invalid_request", code: 900144},
		{name: "duplicated parameter", body: msalBody(daemonID, daemonPass, scope) + "&client_secret=x", status: 400, err: "invalid_request", code: 9000411},
		{name: "json body", contentType: "application/json", body: `{"grant_type":"client_credentials"}`, status: 400, err: "invalid_request", code: 900144},
		{name: "malformed form", body: "grant_type=%zz", status: 400, err: "invalid_request", code: 900144},
		{name: "oversized body", body: "grant_type=client_credentials&x=" + strings.Repeat("a", maxFormBytes), status: 400, err: "invalid_request", code: 900144},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{"Client-Request-Id": corr}
			if tt.contentType != "" {
				hdr["Content-Type"] = tt.contentType
			}
			resp, body := f.postForm(t, "/"+tenantID+"/oauth2/v2.0/token", tt.body, hdr)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			b := checkErrorBody(t, body, tt.err, tt.code)
			if b.CorrelationID != corr {
				t.Errorf("correlation_id %q, want the client-request-id", b.CorrelationID)
			}
			if tt.msgPrefix != "" && !strings.HasPrefix(b.ErrorDescription, "AADSTS"+itoa(tt.code)+": "+tt.msgPrefix) {
				t.Errorf("error_description %q\nwant prefix %q", b.ErrorDescription, tt.msgPrefix)
			}
			for _, s := range []string{daemonPass, "other-secret"} {
				if bytes.Contains(body, []byte(s)) {
					t.Errorf("body echoes a secret: %s", body)
				}
			}
		})
	}
	for _, s := range []string{daemonPass, "other-secret"} {
		if strings.Contains(f.logs.String(), s) {
			t.Error("secret in logs")
		}
	}
}

func TestCorrelationIDNotEchoedUnlessGUID(t *testing.T) {
	f := start(t)
	_, body := f.postForm(t, "/"+tenantID+"/oauth2/v2.0/token", "grant_type=x", map[string]string{"Client-Request-Id": "<script>"})
	b := checkErrorBody(t, body, "unsupported_grant_type", 70003)
	if strings.Contains(string(body), "<script>") || !guidRE.MatchString(b.CorrelationID) {
		t.Errorf("correlation_id %q", b.CorrelationID)
	}
}

func TestInstanceDiscovery(t *testing.T) {
	f := start(t)
	ae := f.srv.URL() + "/" + tenantID + "/oauth2/v2.0/authorize"
	resp, body := f.get(t, "/common/discovery/instance?api-version=1.1&authorization_endpoint="+url.QueryEscape(ae))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var d instanceDiscovery
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.TenantDiscoveryEndpoint != f.srv.URL()+"/"+tenantID+"/v2.0/.well-known/openid-configuration" {
		t.Errorf("tenant_discovery_endpoint %q", d.TenantDiscoveryEndpoint)
	}
	resp, body = f.get(t, "/common/discovery/instance?api-version=1.1&authorization_endpoint="+url.QueryEscape("https://evil.example/t/oauth2/v2.0/authorize"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("foreign host: status %d", resp.StatusCode)
	}
	checkErrorBody(t, body, "invalid_instance", 50049)
}

func TestStartValidates(t *testing.T) {
	ca, err := tlsca.New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ca   *tlsca.CA
		opts Options
	}{
		{"no CA", nil, Options{TenantID: tenantID, API: API{ClientID: apiClientID}}},
		{"no tenant", ca, Options{API: API{ClientID: apiClientID}}},
		{"tenant with slash", ca, Options{TenantID: "a/b", API: API{ClientID: apiClientID}}},
		{"no API", ca, Options{TenantID: tenantID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Start(tt.ca, tt.opts); err == nil {
				_ = s.Close()
				t.Error("Start succeeded")
			}
		})
	}
}

func TestSecretEqual(t *testing.T) {
	tests := []struct {
		name      string
		got, want string
		equal     bool
	}{
		{"same", "abc", "abc", true},
		{"different", "abc", "abd", false},
		{"prefix", "ab", "abc", false},
		{"empty registered secret matches nothing", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if secretEqual(tt.got, tt.want) != tt.equal {
				t.Errorf("secretEqual(%q, %q) = %v", tt.got, tt.want, !tt.equal)
			}
		})
	}
}

// FuzzTokenForm drives the token endpoint's handling of an untrusted body:
// parsing, then the checks and minting. It must never panic, never accept a
// request without the right secret, and never echo the secret.
func FuzzTokenForm(f *testing.F) {
	srv, err := newServer(Options{
		TenantID: tenantID,
		Clients:  map[string]Client{daemonID: {Secret: daemonPass, Roles: []string{"r"}}},
		API:      API{ClientID: apiClientID},
		Now:      func() time.Time { return fixedNow },
	})
	if err != nil {
		f.Fatal(err)
	}
	ct := "application/x-www-form-urlencoded"
	f.Add(ct, msalBody(daemonID, daemonPass, "api://"+apiClientID+"/.default"))
	f.Add(ct, msalBody(daemonID, "nope", "User.Read"))
	f.Add(ct, "grant_type=client_credentials&client_id=a&client_id=b")
	f.Add("text/plain", "grant_type=client_credentials")
	f.Add(ct, "%%%&&&==;;")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "scope=%20%20/.default&grant_type=client_credentials")
	f.Fuzz(func(t *testing.T, contentType, body string) {
		req, aerr := parseTokenForm(contentType, []byte(body))
		if aerr != nil {
			if aerr.status != http.StatusBadRequest {
				t.Errorf("parse error with status %d", aerr.status)
			}
			return
		}
		resp, aerr := srv.issue(req)
		if aerr == nil {
			if req.clientSecret != daemonPass || req.clientID != daemonID {
				t.Errorf("token issued to %q without the right secret", req.clientID)
			}
			if resp.AccessToken == "" {
				t.Error("empty token")
			}
			return
		}
		r := (&http.Request{Header: http.Header{}}).WithContext(context.Background())
		b, err := json.Marshal(srv.body(r, *aerr))
		if err != nil {
			t.Fatal(err)
		}
		if req.clientSecret != "" && len(req.clientSecret) > 3 && bytes.Contains(b, []byte(req.clientSecret)) &&
			!strings.Contains(req.clientID+req.scope+req.grantType, req.clientSecret) {
			t.Errorf("error body echoes the secret: %s", b)
		}
	})
}
