package entra

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/golang-jwt/jwt/v5"

	"github.com/weatherfunc/handler/internal/devstack/tlsca"
)

const (
	certClientID = "22222222-3333-4444-8555-666666666666"
	fedClientID  = "33333333-4444-4555-8666-777777777777"
	miClientID   = "44444444-5555-4666-8777-888888888888"
	miPrincipal  = "55555555-6666-4777-8888-999999999999"
)

// testCert makes an RSA key and a self-signed certificate for it.
func testCert(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "daemon test certificate"},
		NotBefore:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

type assertionFixture struct {
	fixture
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// startAssertions serves a tenant with a certificate client and a client
// trusting the managed identity miPrincipal, on the given clock.
func startAssertions(t *testing.T, now func() time.Time) assertionFixture {
	t.Helper()
	ca, err := tlsca.New()
	if err != nil {
		t.Fatal(err)
	}
	key, cert := testCert(t)
	logs := &syncBuffer{}
	srv, err := Start(ca, Options{
		TenantID: tenantID,
		Clients: map[string]Client{
			certClientID: {Certificates: []*x509.Certificate{cert}, Roles: []string{"access_as_application"}},
			fedClientID: {FederatedCredentials: []FederatedCredential{
				{Subject: miPrincipal},
				{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:octo/weather:ref:refs/heads/main"},
			}, Roles: []string{"access_as_application"}},
		},
		API: API{ClientID: apiClientID},
		Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return assertionFixture{fixture: fixture{srv: srv, client: ca.Client(), logs: logs}, key: key, cert: cert}
}

func (f assertionFixture) tokenEndpoint() string {
	return f.srv.URL() + "/" + tenantID + "/oauth2/v2.0/token"
}

func assertionBody(clientID, assertion string) string {
	return url.Values{
		"client_id":             {clientID},
		"client_assertion":      {assertion},
		"client_assertion_type": {ClientAssertionType},
		"grant_type":            {"client_credentials"},
		"scope":                 {"api://" + apiClientID + "/.default openid offline_access profile"},
	}.Encode()
}

// signAssertion builds a certificate client assertion the way MSAL does
// (accesstokens.Credential.JWT), with overrides.
func signAssertion(t *testing.T, method jwt.SigningMethod, header map[string]any, claims jwt.MapClaims, key *rsa.PrivateKey) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header = map[string]any{"alg": method.Alg(), "typ": "JWT"}
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func s256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func sha1x5t(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// MSAL Go's own certificate credential and assertion callback, against the
// stand-in: what the daemon really sends is accepted, and the token carries
// the client's roles.
func TestMSALClientAssertions(t *testing.T) {
	f := startAssertions(t, time.Now)
	msalCred, err := confidential.NewCredFromCert([]*x509.Certificate{f.cert}, f.key)
	if err != nil {
		t.Fatal(err)
	}
	federated := confidential.NewCredFromAssertionCallback(func(_ context.Context, o confidential.AssertionRequestOptions) (string, error) {
		if o.ClientID != fedClientID || o.TokenEndpoint != f.tokenEndpoint() {
			t.Errorf("assertion request %+v", o)
		}
		return f.srv.MintFederated(miPrincipal, miClientID, time.Now().Add(time.Hour))
	})
	tests := []struct {
		name     string
		clientID string
		cred     confidential.Credential
	}{
		{"certificate (PS256, x5t#S256)", certClientID, msalCred},
		{"federated managed identity", fedClientID, federated},
	}
	kf := publishedKeys(t, f.fixture)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := confidential.New(f.srv.URL()+"/"+tenantID, tt.clientID, tt.cred,
				confidential.WithHTTPClient(f.client), confidential.WithInstanceDiscovery(false))
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.AcquireTokenByCredential(context.Background(), []string{"api://" + apiClientID + "/.default"})
			if err != nil {
				t.Fatalf("AcquireTokenByCredential: %v", err)
			}
			claims := jwt.MapClaims{}
			_, err = jwt.ParseWithClaims(res.AccessToken, claims, kf, jwt.WithValidMethods([]string{"RS256"}),
				jwt.WithIssuer(f.srv.Issuer()), jwt.WithAudience(apiClientID), jwt.WithExpirationRequired())
			if err != nil {
				t.Fatalf("issued token does not verify: %v", err)
			}
			if claims["azp"] != tt.clientID {
				t.Errorf("azp = %v, want %s", claims["azp"], tt.clientID)
			}
			if roles, _ := claims["roles"].([]any); len(roles) != 1 || roles[0] != "access_as_application" {
				t.Errorf("roles = %v", claims["roles"])
			}
		})
	}
}

// The federated token is shaped as DESIGN §9 says a managed identity's
// token for api://AzureADTokenExchange is.
func TestMintFederated(t *testing.T) {
	f := startAssertions(t, func() time.Time { return fixedNow })
	exp := fixedNow.Add(24 * time.Hour)
	tok, err := f.srv.MintFederated(miPrincipal, miClientID, exp)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return fixedNow }), jwt.WithValidMethods([]string{"RS256"})).
		ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return f.srv.PublicKey(), nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iss": f.srv.Issuer(), "sub": miPrincipal, "oid": miPrincipal, "aud": TokenExchangeAudience,
		"azp": miClientID, "tid": tenantID, "exp": float64(exp.Unix())}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("%s = %v, want %v", k, claims[k], v)
		}
	}
	if _, ok := claims["roles"]; ok {
		t.Error("a managed identity token carries roles")
	}
	found := false
	for _, it := range f.srv.IssuedTokens() {
		found = found || it == tok
	}
	if !found {
		t.Error("MintFederated's token is not in IssuedTokens")
	}
	if _, err := f.srv.MintFederated("", miClientID, exp); err == nil {
		t.Error("MintFederated without a principal succeeded")
	}
	if _, err := f.srv.MintFederated(miPrincipal, miClientID, fixedNow.Add(-time.Second)); err == nil {
		t.Error("MintFederated with a past expiry succeeded")
	}
}

func TestClientAssertionErrors(t *testing.T) {
	f := startAssertions(t, func() time.Time { return fixedNow })
	otherKey, otherCert := testCert(t)
	jtis := 0
	good := func() jwt.MapClaims { // a fresh jti each time: each is accepted once
		jtis++
		return jwt.MapClaims{"aud": f.tokenEndpoint(), "iss": certClientID, "sub": certClientID, "jti": fmt.Sprintf("8a5f0c2e-1d2b-4c3a-9e8f-%012d", jtis),
			"nbf": fixedNow.Unix(), "exp": fixedNow.Add(10 * time.Minute).Unix()}
	}
	with := func(m jwt.MapClaims, k string, v any) jwt.MapClaims {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	ps := jwt.SigningMethodPS256
	h256 := map[string]any{"x5t#S256": s256(f.cert)}
	replayed := signAssertion(t, ps, h256, good(), f.key)
	fedGood, err := f.srv.MintFederated(miPrincipal, miClientID, fixedNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	mint := func(o MintOptions) string {
		tok, err := f.srv.Mint(o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	fedExtra := func(sub string, extra map[string]any) map[string]any {
		m := map[string]any{"sub": sub, "roles": nil}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	thumbOther := strings.ToUpper(CertificateThumbprint(otherCert))
	tests := []struct {
		name      string
		clientID  string
		assertion string
		status    int
		err       string
		code      int
		msgPrefix string
	}{
		{name: "certificate PS256 x5t#S256", clientID: certClientID, assertion: signAssertion(t, ps, h256, good(), f.key), status: 200},
		{name: "certificate RS256 x5t", clientID: certClientID, assertion: signAssertion(t, jwt.SigningMethodRS256, map[string]any{"x5t": sha1x5t(f.cert)}, good(), f.key), status: 200},
		{name: "audience is the issuer", clientID: certClientID, assertion: signAssertion(t, ps, h256, with(good(), "aud", f.srv.Issuer()), f.key), status: 200},
		{name: "unregistered certificate", clientID: certClientID, assertion: signAssertion(t, ps, map[string]any{"x5t#S256": s256(otherCert)}, good(), otherKey),
			status: 401, err: "invalid_client", code: 700027, msgPrefix: "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '"},
		{name: "unregistered certificate by SHA-1", clientID: certClientID, assertion: signAssertion(t, jwt.SigningMethodRS256, map[string]any{"x5t": sha1x5t(otherCert)}, good(), otherKey),
			status: 401, err: "invalid_client", code: 700027, msgPrefix: "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '" + thumbOther + "'"},
		{name: "registered thumbprint, another key", clientID: certClientID, assertion: signAssertion(t, ps, h256, good(), otherKey),
			status: 401, err: "invalid_client", code: 700027, msgPrefix: "Client assertion contains an invalid signature. [Reason - The provided signature value did not match"},
		{name: "no thumbprint", clientID: certClientID, assertion: signAssertion(t, ps, nil, good(), f.key), status: 401, err: "invalid_client", code: 50027},
		{name: "expired", clientID: certClientID, assertion: signAssertion(t, ps, h256, with(good(), "exp", fixedNow.Add(-time.Hour).Unix()), f.key),
			status: 401, err: "invalid_client", code: 700024,
			msgPrefix: "Client assertion is not within its valid time range. Current time: 2025-03-14T09:26:53.0000000Z, assertion valid from 2025-03-14T09:26:53.0000000Z, expiry time of assertion 2025-03-14T08:26:53.0000000Z."},
		{name: "not yet valid", clientID: certClientID, assertion: signAssertion(t, ps, h256, with(with(good(), "nbf", fixedNow.Add(time.Hour).Unix()), "exp", fixedNow.Add(2*time.Hour).Unix()), f.key),
			status: 401, err: "invalid_client", code: 700024},
		{name: "no exp", clientID: certClientID, assertion: signAssertion(t, ps, h256, with(good(), "exp", nil), f.key), status: 401, err: "invalid_client", code: 50027},
		{name: "wrong audience", clientID: certClientID, assertion: signAssertion(t, ps, h256, with(good(), "aud", "https://login.microsoftonline.com/"+tenantID+"/oauth2/v2.0/token"), f.key),
			status: 401, err: "invalid_client", code: 700212},
		{name: "subject not the client", clientID: certClientID, assertion: signAssertion(t, ps, h256, with(good(), "sub", daemonID), f.key), status: 401, err: "invalid_client", code: 700021},
		{name: "replayed assertion, first use", clientID: certClientID, assertion: replayed, status: 200},
		{name: "replayed assertion, second use", clientID: certClientID, assertion: replayed, status: 401, err: "invalid_client", code: 50027},
		{name: "assertion valid for a day", clientID: certClientID, assertion: signAssertion(t, ps, h256, with(good(), "exp", fixedNow.Add(24*time.Hour).Unix()), f.key), status: 401, err: "invalid_client", code: 700024},
		{name: "no jti", clientID: certClientID, assertion: signAssertion(t, ps, h256, with(good(), "jti", nil), f.key), status: 401, err: "invalid_client", code: 50027},
		{name: "not a JWT", clientID: certClientID, assertion: "not.a.jwt", status: 401, err: "invalid_client", code: 50027},
		{name: "federated managed identity", clientID: fedClientID, assertion: fedGood, status: 200},
		{name: "federated: another identity", clientID: fedClientID,
			assertion: mint(MintOptions{ClientID: miClientID, Audience: TokenExchangeAudience, Extra: fedExtra("66666666-7777-4888-8999-000000000000", nil)}),
			status:    400, err: "invalid_request", code: 70021,
			msgPrefix: "No matching federated identity record found for presented assertion. Assertion Issuer: '" + f.srv.Issuer() + "'. Assertion Subject: '66666666-7777-4888-8999-000000000000'. Assertion Audience: 'api://AzureADTokenExchange'."},
		{name: "federated: the identity's token for another audience", clientID: fedClientID,
			assertion: mint(MintOptions{ClientID: miClientID, Audience: "https://vault.azure.net", Extra: fedExtra(miPrincipal, nil)}),
			status:    400, err: "invalid_request", code: 70021},
		{name: "federated: v1 issuer", clientID: fedClientID,
			assertion: mint(MintOptions{ClientID: miClientID, Version: "1.0", Audience: TokenExchangeAudience, Extra: fedExtra(miPrincipal, nil)}),
			status:    400, err: "invalid_request", code: 70021},
		{name: "federated: signed by a key not the issuer's", clientID: fedClientID,
			assertion: mint(MintOptions{ClientID: miClientID, Audience: TokenExchangeAudience, Key: otherKey, KeyID: f.srv.KeyID(), Extra: fedExtra(miPrincipal, nil)}),
			status:    401, err: "invalid_client", code: 700027},
		{name: "federated: foreign issuer", clientID: fedClientID,
			assertion: mint(MintOptions{ClientID: miClientID, Audience: TokenExchangeAudience, Key: otherKey,
				Extra: fedExtra("repo:octo/weather:ref:refs/heads/main", map[string]any{"iss": "https://token.actions.githubusercontent.com"})}),
			status: 401, err: "invalid_client", code: 700027},
		{name: "federated: expired", clientID: fedClientID,
			assertion: mint(MintOptions{ClientID: miClientID, Audience: TokenExchangeAudience, Extra: fedExtra(miPrincipal, map[string]any{"exp": fixedNow.Add(-time.Hour).Unix()})}),
			status:    401, err: "invalid_client", code: 700024},
		{name: "certificate client presenting a federated token", clientID: certClientID, assertion: fedGood, status: 400, err: "invalid_request", code: 70021},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.postForm(t, "/"+tenantID+"/oauth2/v2.0/token", assertionBody(tt.clientID, tt.assertion), nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusOK {
				return
			}
			b := checkErrorBody(t, body, tt.err, tt.code)
			if tt.msgPrefix != "" && !strings.HasPrefix(b.ErrorDescription, "AADSTS"+itoa(tt.code)+": "+tt.msgPrefix) {
				t.Errorf("error_description %q\nwant prefix %q", b.ErrorDescription, tt.msgPrefix)
			}
			if sig := tt.assertion[strings.LastIndexByte(tt.assertion, '.')+1:]; len(sig) > 8 && strings.Contains(string(body), sig) {
				t.Error("error body echoes the assertion")
			}
		})
	}
}

// The attested texts are what the stand-in says (up to the identifiers).
func TestAssertionMessagesAttested(t *testing.T) {
	attested := string(readTestdata(t, "aadsts_assertion_messages_attested.txt"))
	_, cert := testCert(t)
	tests := []struct {
		name string
		e    aadError
		cut  string // the attested text up to the first identifier
	}{
		{"700027", errAssertionKeyNotFound("X", "Y"), "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '"},
		{"70021", errNoFederatedMatch("I", "S", "A"), "No matching federated identity record found for presented assertion. Assertion Issuer: '"},
		{"700024", errAssertionTime(fixedNow, fixedNow, fixedNow), "Client assertion is not within its valid time range. Current time: "},
		{"50013 reason", errAssertionBadSignature("X", cert), "[Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '"},
		{"50027", errAssertionNoThumbprint(), "Invalid JWT token. No certificate thumbprint specified in token header."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(attested, tt.cut) {
				t.Fatalf("the attested file lacks %q", tt.cut)
			}
			if !strings.Contains(tt.e.msg, tt.cut) {
				t.Errorf("message %q lacks the attested %q", tt.e.msg, tt.cut)
			}
		})
	}
	// The whole 70021 sentence structure, identifiers replaced.
	e := errNoFederatedMatch("https://kubernetes.default.svc.cluster.local", "system:serviceaccount:default:workload-identity-sa", "api://AzureADTokenExchange")
	if !strings.Contains(attested, "AADSTS70021: "+e.msg) {
		t.Errorf("70021 text differs from the attested one: %q", e.msg)
	}
}

func TestClientAssertionRequestErrors(t *testing.T) {
	f := startAssertions(t, func() time.Time { return fixedNow })
	scope := url.QueryEscape("api://" + apiClientID + "/.default")
	tests := []struct {
		name string
		body string
		code int
	}{
		{"no assertion type", "grant_type=client_credentials&client_id=" + certClientID + "&client_assertion=a.b.c&scope=" + scope, 900144},
		{"wrong assertion type", "grant_type=client_credentials&client_id=" + certClientID + "&client_assertion=a.b.c&client_assertion_type=urn:x&scope=" + scope, 50027},
		{"secret and assertion", "grant_type=client_credentials&client_id=" + certClientID + "&client_secret=x&client_assertion=a.b.c&client_assertion_type=" +
			url.QueryEscape(ClientAssertionType) + "&scope=" + scope, 90023},
		{"secret for a client without one", msalBody(certClientID, "guess", "api://"+apiClientID+"/.default"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.postForm(t, "/"+tenantID+"/oauth2/v2.0/token", tt.body, nil)
			if tt.code == 0 {
				if resp.StatusCode == http.StatusOK {
					t.Errorf("accepted: %s", body)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d: %s", resp.StatusCode, body)
			}
			checkErrorBody(t, body, "invalid_request", tt.code)
		})
	}
}

// FuzzClientAssertion feeds arbitrary assertions to the verifier: it must
// never panic and never accept one it did not see signed.
func FuzzClientAssertion(f *testing.F) {
	srv, err := newServer(Options{
		TenantID: tenantID,
		API:      API{ClientID: apiClientID},
		Clients:  map[string]Client{fedClientID: {FederatedCredentials: []FederatedCredential{{Subject: miPrincipal}}}},
		Now:      func() time.Time { return fixedNow },
	})
	if err != nil {
		f.Fatal(err)
	}
	srv.url = "https://127.0.0.1:1"
	good, err := srv.MintFederated(miPrincipal, miClientID, fixedNow.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, fedClientID)
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "x")
	f.Add("a.b.c", certClientID)
	f.Fuzz(func(t *testing.T, assertion, clientID string) {
		e := srv.checkAssertion(assertion, clientID, srv.clients[clientID])
		if e == nil && assertion != good {
			t.Errorf("accepted an assertion it did not sign: %q", assertion)
		}
	})
}

// An expired certificate is no key credential any more: a correctly signed
// assertion naming it is refused as Entra refuses it (AADSTS700027).
func TestClientAssertionExpiredCertificate(t *testing.T) {
	after := time.Date(2035, 6, 1, 0, 0, 0, 0, time.UTC) // the test certificate ended 2035-01-01
	f := startAssertions(t, func() time.Time { return after })
	claims := jwt.MapClaims{"aud": f.tokenEndpoint(), "iss": certClientID, "sub": certClientID, "jti": "8a5f0c2e-1d2b-4c3a-9e8f-000000000001",
		"nbf": after.Unix(), "exp": after.Add(10 * time.Minute).Unix()}
	a := signAssertion(t, jwt.SigningMethodPS256, map[string]any{"x5t#S256": s256(f.cert)}, claims, f.key)
	resp, body := f.postForm(t, "/"+tenantID+"/oauth2/v2.0/token", assertionBody(certClientID, a), nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
	}
	var e struct {
		Error      string `json:"error"`
		ErrorCodes []int  `json:"error_codes"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "invalid_client" || len(e.ErrorCodes) != 1 || e.ErrorCodes[0] != 700027 {
		t.Errorf("body = %s, want invalid_client AADSTS700027", body)
	}
}
