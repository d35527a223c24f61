package identity_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/weatherfunc/handler/internal/devstack/identity"
)

const hdr = "853b9a84-5bfa-4b22-a3f3-0b9a43d9ad8a" // the docs example's header value

// clock is an injectable clock safe to read from the server's goroutines.
type clock struct{ unix atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.unix.Store(1586898335) // the docs example's expires_on minus 24 h
	return c
}
func (c *clock) now() time.Time          { return time.Unix(c.unix.Load(), 0) }
func (c *clock) advance(d time.Duration) { c.unix.Add(int64(d / time.Second)) }

// docsBody returns the JSON body of the documented 200 example.
func docsBody(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("testdata/appservice_msi_2019-08-01_docs_example.http")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := bytes.Cut(raw, []byte("\n{"))
	if !ok {
		t.Fatal("no JSON body in the docs example")
	}
	var m map[string]any
	if err := json.Unmarshal(append([]byte("{"), body...), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(raw), "\r\n", "\n")
}

func recorded400(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("testdata/appservice_msi_error_400.body.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func get(t *testing.T, base, query string, header []string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/msi/token?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range header {
		req.Header.Add("X-IDENTITY-HEADER", h)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, raw)
	}
	return res, m
}

func TestTokenMatchesDocumentedShape(t *testing.T) {
	clk := newClock()
	s := identity.New(identity.Options{Header: hdr, ClientIDs: []string{"5E29463D-71DA-4FE0-8E69-999B57DB23B0"}, Now: clk.now})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	// The request of the docs example (system-assigned is not allowed here, so name the identity).
	res, body := get(t, srv.URL, "resource=https://vault.azure.net&api-version=2019-08-01&client_id=5e29463d-71da-4fe0-8e69-999b57db23b0", []string{hdr})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %v", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want the documented application/json", ct)
	}
	want := docsBody(t)
	if got, wantKeys := slices.Sorted(maps.Keys(body)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, wantKeys) {
		t.Errorf("keys %v, documented %v", got, wantKeys)
	}
	for _, k := range []string{"resource", "token_type", "client_id"} {
		if body[k] != want[k] {
			t.Errorf("%s = %v, documented %v", k, body[k], want[k])
		}
	}
	if body["expires_on"] != want["expires_on"] { // clock chosen so that they agree
		t.Errorf("expires_on = %v (%T), documented %v", body["expires_on"], body["expires_on"], want["expires_on"])
	}
	tok, _ := body["access_token"].(string)
	if len(tok) < 32 {
		t.Fatalf("access_token %q too short", tok)
	}
	if !s.Valid(tok, "https://vault.azure.net") {
		t.Error("Valid(issued token) = false")
	}
	if s.Valid(tok, "https://management.azure.com") {
		t.Error("Valid(token, other resource) = true")
	}
	if s.Valid(tok+"x", "https://vault.azure.net") || s.Valid("", "https://vault.azure.net") {
		t.Error("Valid(unknown token) = true")
	}
	clk.advance(24*time.Hour - time.Second)
	if !s.Valid(tok, "https://vault.azure.net") {
		t.Error("token invalid one second before expiry")
	}
	clk.advance(time.Second)
	if s.Valid(tok, "https://vault.azure.net") {
		t.Error("token still valid at expiry")
	}
	if n := s.Requests(); n != 1 {
		t.Errorf("Requests() = %d, want 1", n)
	}
}

func TestErrors(t *testing.T) {
	const uami = "11111111-2222-3333-4444-555555555555"
	const principal = "99999999-8888-7777-6666-555555555555"
	rec := recorded400(t)
	tests := []struct {
		name     string
		opts     identity.Options
		query    string
		header   []string
		status   int
		recorded bool // the message is the recorded "Unable to load the proper Managed Identity."
	}{
		{name: "missing header", query: "resource=r&api-version=2019-08-01&client_id=" + uami, status: 400},
		{name: "wrong header", query: "resource=r&api-version=2019-08-01&client_id=" + uami, header: []string{"nope"}, status: 400},
		{name: "two headers", query: "resource=r&api-version=2019-08-01&client_id=" + uami, header: []string{hdr, hdr}, status: 400},
		{name: "server without header refuses all", opts: identity.Options{ClientIDs: []string{uami}}, query: "resource=r&api-version=2019-08-01&client_id=" + uami, header: []string{""}, status: 400},
		{name: "old api-version", query: "resource=r&api-version=2017-09-01&client_id=" + uami, header: []string{hdr}, status: 400},
		{name: "no api-version", query: "resource=r&client_id=" + uami, header: []string{hdr}, status: 400},
		{name: "no resource", query: "api-version=2019-08-01&client_id=" + uami, header: []string{hdr}, status: 400},
		{name: "two resources", query: "resource=a&resource=b&api-version=2019-08-01&client_id=" + uami, header: []string{hdr}, status: 400},
		{name: "unknown client_id", query: "resource=r&api-version=2019-08-01&client_id=uami-client-id", header: []string{hdr}, status: 400, recorded: true},
		{name: "system-assigned not enabled", query: "resource=r&api-version=2019-08-01", header: []string{hdr}, status: 400, recorded: true},
		{name: "client_id and principal_id", query: "resource=r&api-version=2019-08-01&client_id=" + uami + "&principal_id=" + principal, header: []string{hdr}, status: 400, recorded: true},
		{name: "unknown principal_id", query: "resource=r&api-version=2019-08-01&principal_id=" + uami, header: []string{hdr}, status: 400, recorded: true},
		{name: "mi_res_id unsupported", query: "resource=r&api-version=2019-08-01&mi_res_id=/subscriptions/x", header: []string{hdr}, status: 400, recorded: true},
		{name: "ok client_id", query: "resource=r&api-version=2019-08-01&client_id=" + uami, header: []string{hdr}, status: 200},
		{name: "ok principal_id", query: "resource=r&api-version=2019-08-01&principal_id=" + principal, header: []string{hdr}, status: 200},
		{name: "ok object_id", query: "resource=r&api-version=2019-08-01&object_id=" + principal, header: []string{hdr}, status: 200},
		{name: "ok system-assigned", opts: identity.Options{Header: hdr, ClientIDs: []string{""}}, query: "resource=r&api-version=2019-08-01", header: []string{hdr}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if opts.Header == "" && opts.ClientIDs == nil {
				opts = identity.Options{Header: hdr, ClientIDs: []string{uami}, PrincipalID: principal}
			}
			srv := httptest.NewServer(identity.New(opts).Handler())
			defer srv.Close()
			res, body := get(t, srv.URL, tt.query, tt.header)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %v)", res.StatusCode, tt.status, body)
			}
			if tt.status == 200 {
				if body["client_id"] == "" || body["access_token"] == "" {
					t.Errorf("body %v", body)
				}
				return
			}
			if got, want := slices.Sorted(maps.Keys(body)), slices.Sorted(maps.Keys(rec)); !slices.Equal(got, want) {
				t.Errorf("error keys %v, recorded %v", got, want)
			}
			if body["statusCode"] != rec["statusCode"] { // a JSON number, 400
				t.Errorf("statusCode %v (%T), recorded %v", body["statusCode"], body["statusCode"], rec["statusCode"])
			}
			if id, _ := body["correlationId"].(string); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) || res.Header.Get("X-CORRELATION-ID") != id {
				t.Errorf("correlationId %q, header %q", id, res.Header.Get("X-CORRELATION-ID"))
			}
			// The recorded 400's headers.
			recHeaders := readFile(t, "testdata/appservice_msi_error_400_unable_to_load_identity.txt")
			for _, h := range []string{"Content-Type", "Server"} {
				if line := h + ": " + res.Header.Get(h); !strings.Contains(recHeaders, "\n"+line+"\n") {
					t.Errorf("%q is not in the recorded headers", line)
				}
			}
			if tt.recorded && body["message"] != rec["message"] {
				t.Errorf("message %q, recorded %q", body["message"], rec["message"])
			}
		})
	}
}

func TestMint(t *testing.T) {
	var got []identity.TokenRequest
	var mu sync.Mutex
	s := identity.New(identity.Options{
		Header: hdr, ClientIDs: []string{"cid"}, PrincipalID: "pid",
		Mint: func(r identity.TokenRequest) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, r)
			if r.Resource == "fail" {
				return "", errors.New("boom")
			}
			return "minted-" + strconv.Itoa(len(got)), nil
		},
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	res, body := get(t, srv.URL, "resource=api://AzureADTokenExchange&api-version=2019-08-01&client_id=cid", []string{hdr})
	if res.StatusCode != 200 || body["access_token"] != "minted-1" {
		t.Fatalf("status %d body %v", res.StatusCode, body)
	}
	if !s.Valid("minted-1", "api://AzureADTokenExchange") {
		t.Error("a minted token is not Valid")
	}
	if len(got) != 1 || got[0].ClientID != "cid" || got[0].PrincipalID != "pid" || got[0].Resource != "api://AzureADTokenExchange" || got[0].ExpiresOn.IsZero() {
		t.Errorf("Mint saw %+v", got)
	}
	if res, _ := get(t, srv.URL, "resource=fail&api-version=2019-08-01&client_id=cid", []string{hdr}); res.StatusCode != http.StatusInternalServerError {
		t.Errorf("Mint failure: status %d, want 500", res.StatusCode)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv := httptest.NewServer(identity.New(identity.Options{Header: hdr, ClientIDs: []string{""}}).Handler())
	defer srv.Close()
	res, err := http.Post(srv.URL+"/msi/token?resource=r&api-version=2019-08-01", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET" {
		t.Errorf("status %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

func randomID(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// observedLine is the first request line of the azidentity probe recording:
// "GET /msi/token query: <query> X-IDENTITY-HEADER: <value> Metadata: ".
func observedQuery(t *testing.T) url.Values {
	t.Helper()
	f, err := os.Open("testdata/observed.azidentity-v1.15.0.appservice-mi-fake-endpoint.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	fields := strings.Fields(sc.Text())
	if len(fields) < 4 || fields[0] != "GET" || fields[1] != "/msi/token" {
		t.Fatalf("unexpected observed line %q", sc.Text())
	}
	q, err := url.ParseQuery(fields[3])
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestAzidentityManagedIdentityCredential runs the real azidentity credential
// (which reads IDENTITY_ENDPOINT/IDENTITY_HEADER itself) against the stand-in.
func TestAzidentityManagedIdentityCredential(t *testing.T) {
	// A fresh client ID per run: MSAL's managed-identity token cache is process-wide.
	cid := randomID(t)
	s := identity.New(identity.Options{Header: hdr, ClientIDs: []string{cid}})
	var seen url.Values
	var seenMu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenMu.Lock()
		seen = r.URL.Query()
		seenMu.Unlock()
		s.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	t.Setenv("IDENTITY_ENDPOINT", srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", hdr)

	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(cid)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Valid(tok.Token, "https://vault.azure.net") {
		t.Error("the token azidentity got is not Valid for the vault")
	}
	if d := time.Until(tok.ExpiresOn); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("ExpiresOn in %s, want about 24h", d)
	}
	// The request has the shape the probe observed (client_id's value aside).
	seenMu.Lock()
	got := seen
	seenMu.Unlock()
	want := observedQuery(t)
	if got.Get("client_id") != cid {
		t.Errorf("client_id %q, want %q", got.Get("client_id"), cid)
	}
	got.Del("client_id")
	want.Del("client_id")
	if got.Encode() != want.Encode() {
		t.Errorf("query %q, observed %q", got.Encode(), want.Encode())
	}

	// An identity the endpoint does not know: the recorded message reaches the caller.
	other, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(randomID(t))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err == nil || !strings.Contains(err.Error(), "Unable to load the proper Managed Identity.") {
		t.Errorf("unknown identity: err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), hdr) {
		t.Error("the error carries the X-IDENTITY-HEADER value")
	}
}

// FuzzToken feeds arbitrary queries and headers to the handler: it must answer
// 200 or 4xx with a JSON body, never panic, and issue only Valid tokens.
func FuzzToken(f *testing.F) {
	f.Add("resource=https://vault.azure.net&api-version=2019-08-01&client_id=cid", hdr)
	f.Add("resource=&api-version=2019-08-01", hdr)
	f.Add("resource=r&api-version=2019-08-01&principal_id=pid&object_id=pid", "x")
	f.Add("%zz", "")
	s := identity.New(identity.Options{Header: hdr, ClientIDs: []string{"cid", ""}, PrincipalID: "pid"})
	h := s.Handler()
	f.Fuzz(func(t *testing.T, query, header string) {
		req := httptest.NewRequest(http.MethodGet, "/msi/token", nil)
		req.URL.RawQuery = query
		req.Header.Set("X-IDENTITY-HEADER", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("status %d, body not JSON: %q", rec.Code, rec.Body.Bytes())
		}
		switch rec.Code {
		case http.StatusOK:
			if header != hdr {
				t.Fatalf("200 with header %q", header)
			}
			tok, _ := body["access_token"].(string)
			res, _ := body["resource"].(string)
			if !s.Valid(tok, res) {
				t.Fatal("issued token not Valid")
			}
		case http.StatusBadRequest:
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// Mint learns the principal ID of whichever identity the request names: the
// system-assigned one's (SystemPrincipalID), the user-assigned one's
// (PrincipalID), a stable one for any further user-assigned identity.
func TestMintPrincipalIDs(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // client ID → principal ID
	s := identity.New(identity.Options{
		Header: hdr, ClientIDs: []string{"", "uami-1", "uami-2"}, PrincipalID: "pid-1", SystemPrincipalID: "pid-system",
		Mint: func(r identity.TokenRequest) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			seen[r.ClientID] = r.PrincipalID
			return identity.RandomToken(), nil
		},
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, q := range []string{"", "&client_id=uami-1", "&client_id=uami-2", "&client_id=UAMI-2"} {
		if res, body := get(t, srv.URL, "resource=api://AzureADTokenExchange&api-version=2019-08-01"+q, []string{hdr}); res.StatusCode != 200 {
			t.Fatalf("%s: status %d %v", q, res.StatusCode, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen["uami-1"] != "pid-1" || seen["uami-2"] == "" || seen["uami-2"] == "pid-1" {
		t.Errorf("principal IDs seen: %v", seen)
	}
	for cid, pid := range seen {
		if cid != "uami-1" && cid != "uami-2" && pid != "pid-system" {
			t.Errorf("system-assigned identity %s has principal %q, want pid-system", cid, pid)
		}
	}
	if a, b := identity.RandomToken(), identity.RandomToken(); a == b || len(a) != 43 {
		t.Errorf("RandomToken: %q %q", a, b)
	}
}
