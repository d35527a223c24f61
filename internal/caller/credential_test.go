package caller

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"github.com/weatherfunc/handler/internal/logctx"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/weatherfunc/handler/internal/devstack/entra"
	"github.com/weatherfunc/handler/internal/devstack/identity"
	"github.com/weatherfunc/handler/internal/secrets"
)

const (
	certDaemonID = "22222222-3333-4444-8555-666666666666"
	fedDaemonID  = "33333333-4444-4555-8666-777777777777"
	miClientID   = "44444444-5555-4666-8777-888888888888"
	miPrincipal  = "55555555-6666-4777-8888-999999999999"
	miHeader     = "canary-identity-header-7c1e"
)

// testCertificate is a fresh RSA key and self-signed certificate, and their
// PEM text as Key Vault returns a certificate secret (application/x-pem-file:
// the key first, then the certificate).
type testCertificate struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
	pem  string
}

func newTestCertificate(t *testing.T) testCertificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "daemon"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	text := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return testCertificate{key: key, cert: cert, pem: text}
}

// pfxSecret is the azidentity test PFX as Key Vault returns a certificate
// secret of content type application/x-pkcs12: base64 text.
func pfxSecret(t *testing.T, name string) (string, []*x509.Certificate) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	certs, _, _ := azidentity.ParseCertificates(raw, nil)
	return base64.StdEncoding.EncodeToString(raw), certs
}

type credEnv struct {
	*env
	mi     *identity.Server
	miURL  string
	pemA   testCertificate
	pfxB64 string
}

// newCredEnv is newEnv with a daemon app for each credential: one with a
// registered PEM certificate and the PFX's certificate, one trusting the
// managed identity miPrincipal through a federated credential. The
// managed-identity stand-in signs its api://AzureADTokenExchange tokens with
// the Entra stand-in (as the offline stack wires it), and azidentity is
// pointed at it through the environment (its own convention).
func newCredEnv(t *testing.T) *credEnv {
	t.Helper()
	ce := &credEnv{pemA: newTestCertificate(t)}
	var pfxCerts []*x509.Certificate
	ce.pfxB64, pfxCerts = pfxSecret(t, "azidentity-v1.15.0_certificate.pfx")
	ce.env = newEnvWith(t, map[string]entra.Client{
		daemonID:     {Secret: daemonSecret, Roles: []string{role}},
		certDaemonID: {Certificates: append([]*x509.Certificate{ce.pemA.cert}, pfxCerts...), Roles: []string{role}},
		fedDaemonID:  {FederatedCredentials: []entra.FederatedCredential{{Subject: miPrincipal}}, Roles: []string{role}},
	})
	e := ce.env

	ce.mi = identity.New(identity.Options{
		Header: miHeader, ClientIDs: []string{miClientID}, PrincipalID: miPrincipal,
		Mint: func(r identity.TokenRequest) (string, error) {
			if r.Resource == "api://AzureADTokenExchange" {
				return e.entra.MintFederated(r.PrincipalID, r.ClientID, r.ExpiresOn)
			}
			return identity.RandomToken(), nil
		},
	})
	mis := httptest.NewServer(ce.mi.Handler())
	t.Cleanup(mis.Close)
	ce.miURL = mis.URL + "/msi/token"
	t.Setenv("IDENTITY_ENDPOINT", ce.miURL)
	t.Setenv("IDENTITY_HEADER", miHeader)
	return ce
}

func (ce *credEnv) managedIdentity(t *testing.T, clientID string) *MSALTokenSource {
	t.Helper()
	mi, err := NewManagedIdentityCredential(clientID, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return ce.tokenSource(t, func(o *MSALOptions) { o.ClientID, o.ClientSecret, o.ManagedIdentity = fedDaemonID, nil, mi })
}

func (ce *credEnv) certificate(t *testing.T, cell *secrets.Cell) *MSALTokenSource {
	t.Helper()
	return ce.tokenSource(t, func(o *MSALOptions) { o.ClientID, o.ClientSecret, o.Certificate = certDaemonID, nil, cell })
}

// Each credential kind gets the daemon a token the API accepts, and three
// ticks cost one token request (C10).
func TestCredentialsEndToEnd(t *testing.T) {
	ce := newCredEnv(t)
	pfxCell := secrets.Ready(secrets.New(ce.pfxB64))
	tests := []struct {
		name string
		kind string
		ts   func() *MSALTokenSource
	}{
		{"managed identity (user-assigned, AZURE_CLIENT_ID)", CredentialManagedIdentity, func() *MSALTokenSource { return ce.managedIdentity(t, miClientID) }},
		{"certificate from PEM (application/x-pem-file)", CredentialCertificate, func() *MSALTokenSource { return ce.certificate(t, secrets.Ready(secrets.New(ce.pemA.pem))) }},
		{"certificate from base64 PFX (application/x-pkcs12)", CredentialCertificate, func() *MSALTokenSource { return ce.certificate(t, pfxCell) }},
		{"secret", CredentialSecret, func() *MSALTokenSource { return ce.tokenSource(t, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := tt.ts()
			if ts.Credential() != tt.kind {
				t.Errorf("Credential() = %q, want %q", ts.Credential(), tt.kind)
			}
			d := ce.daemon(t, ts, "London")
			tokensBefore, miBefore := ce.entra.TokenRequests(), ce.mi.Requests()
			for i := range 3 {
				r := d.Tick(context.Background())
				if r.TokenErr != nil || r.Failed() != 0 {
					t.Fatalf("tick %d: token error %v, lines %q", i, r.TokenErr, r.Lines())
				}
			}
			if n := ce.entra.TokenRequests() - tokensBefore; n != 1 {
				t.Errorf("token requests over three ticks = %d, want 1", n)
			}
			if tt.kind == CredentialManagedIdentity {
				if n := ce.mi.Requests() - miBefore; n != 1 {
					t.Errorf("managed identity requests = %d, want 1", n)
				}
			} else if n := ce.mi.Requests() - miBefore; n != 0 {
				t.Errorf("managed identity called %d times for the %s credential", n, tt.kind)
			}
		})
	}
	if r := ce.guard.refusals(); len(r) != 0 {
		t.Errorf("requests off loopback: %v", r)
	}
	logs := ce.logs.String()
	for _, s := range append([]string{daemonSecret, miHeader, ce.pfxB64[:40]}, ce.entra.IssuedTokens()...) {
		if strings.Contains(logs, s) {
			t.Error("a secret or token reached the logs")
		}
	}
}

// A rotated certificate is picked up without a restart: the next token
// request signs with the new key.
func TestCertificateRotation(t *testing.T) {
	ce := newCredEnv(t)
	cell := secrets.Ready(secrets.New(ce.pemA.pem))
	ts := ce.certificate(t, cell)
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Rotated to a certificate the app does not know: the authority says so,
	// naming the setting.
	unknown := newTestCertificate(t)
	cell.Set(secrets.New(unknown.pem))
	_, err := ts.Token(context.Background())
	var te *TokenError
	if !errors.As(err, &te) {
		// A rotation starts a new MSAL client with an empty cache, so the
		// next Token call asks the authority with the new certificate.
		t.Fatalf("after rotation to an unregistered certificate: %v", err)
	}
	if te.AADSTS != 700027 || te.Setting != "CALLER_CLIENT_CERTIFICATE" || !errors.Is(err, ErrConfig) {
		t.Errorf("unregistered certificate: %+v (%v)", te, err)
	}
	cell.Set(secrets.New(ce.pfxB64))
	if _, err := ts.Token(context.Background()); err != nil {
		t.Errorf("after rotation to a registered certificate: %v", err)
	}
}

// A rotation to a value that does not parse keeps the daemon working with the
// previous certificate (the old client is still valid) and says so, naming
// the setting, instead of failing every tick until someone fixes the secret.
func TestCertificateRotationToGarbageKeepsThePreviousOne(t *testing.T) {
	ce := newCredEnv(t)
	cell := secrets.Ready(secrets.New(ce.pemA.pem))
	ts := ce.certificate(t, cell)
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	cell.Set(secrets.New("not a certificate at all"))
	var logs syncBuffer
	ctx := logctx.With(context.Background(), slog.New(slog.NewJSONHandler(&logs, nil)))
	if _, err := ts.Token(ctx); err != nil {
		t.Fatalf("after rotation to garbage: %v, want the previous certificate still in use", err)
	}
	if out := logs.String(); !strings.Contains(out, "CALLER_CLIENT_CERTIFICATE") || strings.Contains(out, "not a certificate at all") {
		t.Errorf("warning = %q, want one naming CALLER_CLIENT_CERTIFICATE and not quoting the value", out)
	}
}

// Every way a certificate secret can be unusable is a configuration error
// naming CALLER_CLIENT_CERTIFICATE, found before anything is sent, and the
// message never quotes the secret.
func TestBadCertificate(t *testing.T) {
	ce := newCredEnv(t)
	other := newTestCertificate(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	ecCert, _ := x509.CreateCertificate(rand.Reader, ecTmpl, ecTmpl, &ecKey.PublicKey, ecKey)
	certOnly := ce.pemA.pem[strings.Index(ce.pemA.pem, "-----BEGIN CERTIFICATE"):]
	keyOnly := ce.pemA.pem[:strings.Index(ce.pemA.pem, "-----BEGIN CERTIFICATE")]
	encrypted, _ := pfxSecret(t, "azidentity-v1.15.0_certificate_encrypted_key.pfx")
	tests := []struct {
		name, value, want string
	}{
		{"not a certificate", "canary-not-a-certificate-93f1", "neither PEM"},
		{"certificate without key", certOnly, "no certificate with an unencrypted private key"},
		{"key without certificate", keyOnly, "no certificate with an unencrypted private key"},
		{"key of another certificate", keyOnly + other.pem[strings.Index(other.pem, "-----BEGIN CERTIFICATE"):], "belongs to none of its certificates"},
		{"EC key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ecCert})), "not RSA"},
		{"PFX with a password", encrypted, "no certificate with an unencrypted private key"},
		{"base64 of garbage", base64.StdEncoding.EncodeToString([]byte("canary-garbage-pfx-5d2a")), "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ce.entra.TokenRequests()
			ts := ce.certificate(t, secrets.Ready(secrets.New(tt.value)))
			_, err := ts.Token(context.Background())
			var cred *CredentialError
			if !errors.As(err, &cred) || cred.Setting != "CALLER_CLIENT_CERTIFICATE" || !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want a CredentialError naming CALLER_CLIENT_CERTIFICATE", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "CALLER_CLIENT_CERTIFICATE") {
				t.Errorf("err = %q, want it to say %q", err, tt.want)
			}
			if ce.entra.TokenRequests() != before {
				t.Error("a request reached the authority with an unusable certificate")
			}
			for _, line := range strings.Split(tt.value, "\n") {
				if len(line) > 16 && strings.Contains(err.Error(), line) {
					t.Errorf("error quotes the secret: %q", err)
				}
			}
			if o := tokenOutcome(err); o.retryable {
				t.Error("an unusable certificate is retried")
			}
		})
	}
}

// The managed identity's failures: the wrong identity, no federated
// credential for it, the endpoint down. Each names what to fix, and only the
// last is retried.
func TestManagedIdentityFailures(t *testing.T) {
	ce := newCredEnv(t)
	// An identity the stand-in knows but the daemon app does not trust.
	stranger := identity.New(identity.Options{Header: miHeader, ClientIDs: []string{"66666666-7777-4888-8999-000000000000"}, PrincipalID: "77777777-8888-4999-8aaa-bbbbbbbbbbbb",
		Mint: func(r identity.TokenRequest) (string, error) {
			return ce.entra.MintFederated(r.PrincipalID, r.ClientID, r.ExpiresOn)
		}})
	strangerSrv := httptest.NewServer(stranger.Handler())
	defer strangerSrv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/msi/token"
	down.Close()

	tests := []struct {
		name      string
		endpoint  string
		clientID  string
		setting   string
		aadsts    int
		retryable bool
	}{
		{"AZURE_CLIENT_ID names no identity of the app", ce.miURL, "00000000-1111-4222-8333-444444444444", "AZURE_CLIENT_ID", 0, false},
		{"system-assigned identity absent", ce.miURL, "", "AZURE_CLIENT_ID", 0, false},
		{"no federated credential for this identity (AADSTS70021)", strangerSrv.URL + "/msi/token", "66666666-7777-4888-8999-000000000000", "AZURE_CLIENT_ID", 70021, false},
		// A client ID no other test uses: azidentity's managed-identity
		// tokens are cached process-wide by client ID and resource.
		{"endpoint down", downURL, "88888888-9999-4aaa-8bbb-cccccccccccc", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("IDENTITY_ENDPOINT", tt.endpoint)
			ts := ce.managedIdentity(t, tt.clientID)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := ts.Token(ctx)
			if err == nil {
				t.Fatal("a token")
			}
			if tt.setting != "" && !strings.Contains(err.Error(), tt.setting) {
				t.Errorf("err %q does not name %s", err, tt.setting)
			}
			var te *TokenError
			if tt.aadsts != 0 && (!errors.As(err, &te) || te.AADSTS != tt.aadsts || te.Setting != tt.setting) {
				t.Errorf("err = %v, want AADSTS%d naming %s", err, tt.aadsts, tt.setting)
			}
			if got := errors.Is(err, ErrConfig); got == tt.retryable {
				t.Errorf("errors.Is(ErrConfig) = %v", got)
			}
			if o := tokenOutcome(err); o.retryable != tt.retryable {
				t.Errorf("retryable = %v, want %v (err %v)", o.retryable, tt.retryable, err)
			}
			if strings.Contains(err.Error(), miHeader) {
				t.Error("error quotes IDENTITY_HEADER")
			}
		})
	}
}

func TestNewMSALTokenSourceOneCredential(t *testing.T) {
	mi, err := NewManagedIdentityCredential("", nil)
	if err != nil {
		t.Fatal(err)
	}
	base := MSALOptions{TenantID: tenantID, ClientID: daemonID, Scope: "api://x/.default"}
	tests := []struct {
		name   string
		mutate func(*MSALOptions)
		ok     bool
	}{
		{"none", func(*MSALOptions) {}, false},
		{"secret", func(o *MSALOptions) { o.ClientSecret = secrets.NewCell() }, true},
		{"certificate", func(o *MSALOptions) { o.Certificate = secrets.NewCell() }, true},
		{"managed identity", func(o *MSALOptions) { o.ManagedIdentity = mi }, true},
		{"two", func(o *MSALOptions) { o.ClientSecret, o.ManagedIdentity = secrets.NewCell(), mi }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mutate(&o)
			_, err := NewMSALTokenSource(o)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "CALLER_") {
				t.Errorf("err %q names no setting", err)
			}
		})
	}
}

func FuzzParseCertificate(f *testing.F) {
	f.Add("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	f.Add("MIIKcQIBAzCCCjcGCSqGSIb3DQEHAaCCCigEggokMIIKIDCCBNcGCSqGSIb3DQEHBqCCBMgwggTEAgEAMIIE")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, _, err := parseCertificate(secrets.New(s))
		if err != nil && len(s) > 24 && strings.Contains(err.Error(), s) {
			t.Errorf("error quotes the input")
		}
	})
}
