package keyvault_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/weatherfunc/handler/internal/devstack/keyvault"
	"github.com/weatherfunc/handler/internal/devstack/tlsca"
)

const goodToken = "good-token"

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keys(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %q", err, raw)
	}
	return slices.Sorted(maps.Keys(m))
}

// recordedChallenge returns the python recording's challenge line (tenant zeroed,
// resource unsanitized).
func recordedChallenge(t *testing.T) string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(read(t, "www-authenticate_challenges.txt")))
	var lines []string
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, `resource="https://vault.azure.net"`) {
			return l
		}
	}
	t.Fatal("no vault.azure.net challenge recorded")
	return ""
}

type fixture struct {
	kv  *keyvault.Server
	url string
}

func newFixture(t *testing.T, secrets map[string]string) *fixture {
	t.Helper()
	kv := keyvault.New(keyvault.Options{
		Secrets:   secrets,
		Authorize: func(tok string) bool { return tok == goodToken },
		Now:       func() time.Time { return time.Unix(1662158164, 0) },
	})
	srv := httptest.NewServer(kv.Handler())
	t.Cleanup(srv.Close)
	return &fixture{kv: kv, url: srv.URL}
}

func (f *fixture) get(t *testing.T, path, auth string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

var guid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkHeaders compares with the headers of the api-7.4 captures.
func checkHeaders(t *testing.T, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Cache-Control":                 "no-cache",
		"Pragma":                        "no-cache",
		"Content-Type":                  "application/json; charset=utf-8",
		"Expires":                       "-1",
		"X-Content-Type-Options":        "nosniff",
		"Strict-Transport-Security":     "max-age=31536000;includeSubDomains",
		"X-Ms-Keyvault-Service-Version": "1.9.3019.1",
	}
	capture := strings.ToLower(string(read(t, "api-7.4_curl_captures_japaneast_2026-02-07.sanitized.txt")))
	for k, v := range want {
		if !strings.Contains(capture, strings.ToLower(k+": "+v)) {
			t.Fatalf("%s: %s is not in the capture", k, v)
		}
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, captured %q", k, got, v)
		}
	}
	if !guid.MatchString(h.Get("x-ms-request-id")) {
		t.Errorf("x-ms-request-id %q", h.Get("x-ms-request-id"))
	}
}

func TestChallengeIsTheRecordedOne(t *testing.T) {
	f := newFixture(t, map[string]string{"s": "v"})
	for _, auth := range []string{"", "Basic abc", "Bearer", "Bearer   "} {
		res, body := f.get(t, "/secrets/s?api-version=7.4", auth)
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("auth %q: status %d", auth, res.StatusCode)
		}
		if !bytes.Equal(body, read(t, "derived_go-TestCRUD_401_challenge.body.json")) {
			t.Errorf("auth %q: body %q differs from the recording", auth, body)
		}
		if got, want := "WWW-Authenticate: "+res.Header.Get("WWW-Authenticate"), "WWW-Authenticate: "+recordedChallenge(t); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		checkHeaders(t, res.Header)
	}
	if n := f.kv.Reads("s"); n != 0 {
		t.Errorf("Reads = %d after challenges only", n)
	}
}

func TestBadTokenIs401WithChallenge(t *testing.T) {
	f := newFixture(t, map[string]string{"s": "v"})
	res, body := f.get(t, "/secrets/s?api-version=7.4", "Bearer wrong")
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("status %d, challenge %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if got, want := keys(t, body), keys(t, read(t, "derived_go-TestCRUD_401_challenge.body.json")); !slices.Equal(got, want) {
		t.Errorf("keys %v, recorded %v", got, want)
	}
	if bytes.Contains(body, []byte(`"v"`)) {
		t.Error("401 body carries the secret")
	}
}

func TestGetSecret(t *testing.T) {
	f := newFixture(t, map[string]string{"Secret518723441": "value518723441"})
	f.kv.SetVaultURL("https://fakevault.local/")
	version := f.kv.Version("secret518723441")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(version) {
		t.Fatalf("version %q is not 32 hex digits", version)
	}
	recorded := read(t, "derived_go-TestCRUD_GET_secret_200.body.json")
	var rec struct {
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	if err := json.Unmarshal(recorded, &rec); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path string }{
		{"latest", "/secrets/secret518723441?api-version=7.3"},
		{"latest with trailing slash (what azsecrets sends)", "/secrets/secret518723441/?api-version=7.3"},
		{"by version", "/secrets/secret518723441/" + version + "?api-version=7.3"},
		{"name case-insensitive", "/secrets/SECRET518723441?api-version=2026-04-01"},
		{"lower-case bearer scheme", "/secrets/secret518723441?api-version=7.4"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := "Bearer " + goodToken
			if strings.Contains(tt.name, "lower-case") {
				auth = "bearer " + goodToken
			}
			res, body := f.get(t, tt.path, auth)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %s", res.StatusCode, body)
			}
			checkHeaders(t, res.Header)
			var got struct {
				Value      string                     `json:"value"`
				ID         string                     `json:"id"`
				Attributes map[string]json.RawMessage `json:"attributes"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			// Every field we send is one the recording has (contentType, tags
			// and nbf are optional and absent here).
			for _, k := range keys(t, body) {
				if !slices.Contains(keys(t, recorded), k) {
					t.Errorf("field %q is not in the recorded body", k)
				}
			}
			for k := range got.Attributes {
				if _, ok := rec.Attributes[k]; !ok {
					t.Errorf("attribute %q is not in the recorded body", k)
				}
			}
			if got.Value != "value518723441" {
				t.Errorf("value %q", got.Value)
			}
			if want := "https://fakevault.local/secrets/Secret518723441/" + version; got.ID != want {
				t.Errorf("id %q, want %q", got.ID, want)
			}
			if string(got.Attributes["created"]) != "1662158164" || string(got.Attributes["enabled"]) != "true" {
				t.Errorf("attributes %s", body)
			}
			if n := f.kv.Reads("secret518723441"); n != i+1 {
				t.Errorf("Reads = %d, want %d", n, i+1)
			}
		})
	}
}

func TestIDFromHostWithoutSetVaultURL(t *testing.T) {
	f := newFixture(t, map[string]string{"s": "v"})
	_, body := f.get(t, "/secrets/s?api-version=7.4", "Bearer "+goodToken)
	if !bytes.Contains(body, []byte(`"id":"https://`+strings.TrimPrefix(f.url, "http://")+`/secrets/s/`)) {
		t.Errorf("id not built from the request host: %s", body)
	}
}

func TestNotFoundIsTheRecordedBody(t *testing.T) {
	f := newFixture(t, map[string]string{"other": "v"})
	res, body := f.get(t, "/secrets/somesecret/0000000000000000000000000000?api-version=7.4", "Bearer "+goodToken)
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", res.StatusCode)
	}
	if want := read(t, "404_SecretNotFound_get_version.body.json"); !bytes.Equal(body, want) {
		t.Errorf("body\n%s\nrecorded\n%s", body, want)
	}
	checkHeaders(t, res.Header)
	// Wrong version of an existing secret, and no version at all.
	if res, _ := f.get(t, "/secrets/other/0000000000000000000000000000?api-version=7.4", "Bearer "+goodToken); res.StatusCode != http.StatusNotFound {
		t.Errorf("wrong version: status %d", res.StatusCode)
	}
	res, body = f.get(t, "/secrets/somesecret?api-version=7.4", "Bearer "+goodToken)
	if res.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte(`"code":"SecretNotFound","message":"A secret with (name/id) somesecret was not found`)) {
		t.Errorf("status %d body %s", res.StatusCode, body)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, map[string]string{"s": "v"})
	tests := []struct {
		name, path, auth string
		status           int
	}{
		{"no api-version", "/secrets/s", "Bearer " + goodToken, 400},
		{"no api-version, no token (checked before auth)", "/secrets/s", "", 400},
		{"unknown api-version", "/secrets/s?api-version=1.0", "Bearer " + goodToken, 400},
		{"two api-versions", "/secrets/s?api-version=7.4&api-version=7.3", "Bearer " + goodToken, 400},
		{"extra path segment", "/secrets/s/0123/extra?api-version=7.4", "Bearer " + goodToken, 400},
		{"bad name", "/secrets/s_x?api-version=7.4", "Bearer " + goodToken, 400},
		{"preview api-version accepted", "/secrets/s?api-version=7.6-preview.2", "Bearer " + goodToken, 200},
		{"listing is not served", "/secrets?api-version=7.4", "Bearer " + goodToken, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := f.get(t, tt.path, tt.auth)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, body)
			}
			if tt.status == 400 {
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "BadParameter" || e.Error.Message == "" {
					t.Errorf("body %s", body)
				}
			}
		})
	}
	res, err := http.Post(f.url+"/secrets/s?api-version=7.4", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT/POST: status %d", res.StatusCode)
	}
}

func TestNilAuthorizeRefusesAll(t *testing.T) {
	kv := keyvault.New(keyvault.Options{Secrets: map[string]string{"s": "v"}})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/secrets/s?api-version=7.4", nil)
	req.Header.Set("Authorization", "Bearer anything")
	kv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", rec.Code)
	}
}

// staticCredential hands azsecrets a fixed token and records what it was asked for.
type staticCredential struct {
	asked chan policy.TokenRequestOptions
}

func (c staticCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.asked <- o
	return azcore.AccessToken{Token: goodToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestRealAzsecrets drives the stand-in over HTTPS with the real azsecrets
// client: challenge, tenant and scope discovery, then the read.
func TestRealAzsecrets(t *testing.T) {
	ca, err := tlsca.New()
	if err != nil {
		t.Fatal(err)
	}
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	kv := keyvault.New(keyvault.Options{TenantID: tenant, Secrets: map[string]string{"weather-api-key": "k3y"},
		Authorize: func(tok string) bool { return tok == goodToken }})
	srv, base, err := ca.Listen("", kv.Handler())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	kv.SetVaultURL(base)

	for _, verify := range []bool{false, true} {
		cred := staticCredential{asked: make(chan policy.TokenRequestOptions, 4)}
		client, err := azsecrets.NewClient(base, cred, &azsecrets.ClientOptions{
			ClientOptions:                        azcore.ClientOptions{Transport: ca.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
			DisableChallengeResourceVerification: !verify,
		})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.GetSecret(context.Background(), "weather-api-key", "", nil)
		if verify {
			// Why the resolver relaxes the check for loopback vaults only:
			// the real challenge cannot match 127.0.0.1.
			if err == nil || !strings.Contains(err.Error(), "doesn't match the requested domain") {
				t.Errorf("verification on a loopback vault: err = %v, want the challenge mismatch", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if resp.Value == nil || *resp.Value != "k3y" {
			t.Errorf("value %v", resp.Value)
		}
		if resp.ID == nil || resp.ID.Name() != "weather-api-key" || resp.ID.Version() != kv.Version("weather-api-key") {
			t.Errorf("id %v", resp.ID)
		}
		o := <-cred.asked
		if o.TenantID != tenant || !slices.Equal(o.Scopes, []string{"https://vault.azure.net/.default"}) {
			t.Errorf("token asked for tenant %q scopes %v", o.TenantID, o.Scopes)
		}
	}
}

// FuzzHandler: arbitrary paths, queries and Authorization values never panic,
// always get a JSON body, and only the good token reads a secret.
func FuzzHandler(f *testing.F) {
	f.Add("/secrets/s", "api-version=7.4", "Bearer "+goodToken)
	f.Add("/secrets/s/", "api-version=2026-04-01", "bearer "+goodToken)
	f.Add("/secrets/S/abc/def", "api-version=7.4", "")
	f.Add("/secrets/%2e%2e", "api-version=x", "Bearer x y")
	kv := keyvault.New(keyvault.Options{Secrets: map[string]string{"s": "v"}, Authorize: func(tok string) bool { return tok == goodToken }})
	h := kv.Handler()
	f.Fuzz(func(t *testing.T, path, query, auth string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = path
		req.URL.RawQuery = query
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if !strings.HasSuffix(auth, goodToken) {
				t.Fatalf("200 for Authorization %q", auth)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("invalid JSON body %q", rec.Body.Bytes())
		}
	})
}

// A certificate's secret carries its content type, where the recording has
// contentType: between value and id. Rotation keeps it unless told otherwise.
func TestContentType(t *testing.T) {
	kv := keyvault.New(keyvault.Options{
		Secrets:      map[string]string{"caller-certificate": "-----BEGIN CERTIFICATE-----", "plain": "v"},
		ContentTypes: map[string]string{"Caller-Certificate": "application/x-pem-file"},
		Authorize:    func(tok string) bool { return tok == goodToken },
	})
	srv := httptest.NewServer(kv.Handler())
	defer srv.Close()
	f := &fixture{kv: kv, url: srv.URL}
	// Member order as recorded: value, contentType, id.
	inOrder := func(body string) bool {
		v, c, i := strings.Index(body, `"value"`), strings.Index(body, `"contentType"`), strings.Index(body, `"id"`)
		return v >= 0 && v < c && c < i
	}
	if !inOrder(string(read(t, "derived_go-TestCRUD_GET_secret_200.body.json"))) {
		t.Fatal("the recording's order is not value, contentType, id")
	}
	contentType := func(name string) (string, []string) {
		t.Helper()
		res, body := f.get(t, "/secrets/"+name+"/?api-version=2026-04-01", "Bearer "+goodToken)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		var b struct {
			ContentType string `json:"contentType"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
		if b.ContentType != "" && !inOrder(string(body)) {
			t.Errorf("members out of the recorded order: %s", body)
		}
		return b.ContentType, keys(t, body)
	}
	if ct, _ := contentType("caller-certificate"); ct != "application/x-pem-file" {
		t.Errorf("contentType %q", ct)
	}
	if ct, order := contentType("plain"); ct != "" || slices.Contains(order, "contentType") {
		t.Errorf("a secret without content type has contentType %q", ct)
	}
	kv.SetSecret("caller-certificate", "rotated")
	if ct, _ := contentType("caller-certificate"); ct != "application/x-pem-file" {
		t.Errorf("after SetSecret contentType = %q", ct)
	}
	kv.SetSecretWithContentType("caller-certificate", "MIIK", "application/x-pkcs12")
	if ct, _ := contentType("caller-certificate"); ct != "application/x-pkcs12" {
		t.Errorf("after SetSecretWithContentType contentType = %q", ct)
	}
}
