package caller

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"golang.org/x/sync/singleflight"

	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/secrets"
)

// TokenSource yields an access token for the API.
type TokenSource interface {
	Token(ctx context.Context) (secrets.Secret, error)
}

// DefaultAuthorityHost is Microsoft Entra ID's global authority host.
const DefaultAuthorityHost = "https://login.microsoftonline.com"

// defaultHTTPTimeout bounds every outbound call the package makes with its
// own client (the design's ceiling is 10 s per upstream call).
const defaultHTTPTimeout = 10 * time.Second

// MSALOptions configure an MSALTokenSource.
type MSALOptions struct {
	// AuthorityHost is the Entra authority host (AZURE_AUTHORITY_HOST), an
	// https URL without path. Default DefaultAuthorityHost.
	AuthorityHost string
	// TenantID is the tenant (AZURE_TENANT_ID); required.
	TenantID string
	// ClientID is the daemon's application ID (CALLER_CLIENT_ID); required.
	ClientID string
	// Scope is the one scope requested (CALLER_SCOPE); it must end in
	// "/.default", as the client-credentials grant requires.
	Scope string
	// The daemon's credential: exactly one of ClientSecret, Certificate and
	// ManagedIdentity is set (CALLER_CREDENTIAL secret, certificate,
	// managed-identity).
	//
	// ClientSecret holds the daemon's client secret (CALLER_CLIENT_SECRET).
	// It may become ready after start; the MSAL client is built on the first
	// Token call that finds it ready, and rebuilt when the value changes.
	ClientSecret *secrets.Cell
	// Certificate holds the daemon's certificate with its RSA private key
	// (CALLER_CLIENT_CERTIFICATE): the PEM text or base64 PFX that Key Vault
	// returns for a certificate (content types application/x-pem-file and
	// application/x-pkcs12). Like ClientSecret it may arrive late and may be
	// rotated; MSAL signs each client assertion with it (PS256, x5t#S256).
	Certificate *secrets.Cell
	// ManagedIdentity gets the managed identity's token for
	// api://AzureADTokenExchange (see NewManagedIdentityCredential), which
	// MSAL presents as a federated client assertion: no secret at all.
	ManagedIdentity azcore.TokenCredential
	// HTTPClient carries MSAL's requests. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// MSALTokenSource gets app-only tokens with MSAL Go's confidential client.
// It is safe for concurrent use.
type MSALTokenSource struct {
	authority string
	discovery bool
	clientID  string
	scope     string
	kind      string        // CredentialSecret, CredentialCertificate or CredentialManagedIdentity
	secret    *secrets.Cell // the secret or the certificate
	mi        azcore.TokenCredential
	http      *http.Client

	mu        sync.Mutex
	client    *confidential.Client
	builtWith secrets.Secret

	flight singleflight.Group
}

// microsoftHosts are the authority hosts of Microsoft's clouds, for which
// MSAL's instance discovery (a call to login.microsoftonline.com) is right.
// The list is MSAL Go v1.10.1's trusted host list.
var microsoftHosts = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoft.com":              true,
	"login.windows.net":                true,
	"sts.windows.net":                  true,
	"login.partner.microsoftonline.cn": true,
	"login.chinacloudapi.cn":           true,
	"login.microsoftonline.de":         true,
	"login-us.microsoftonline.com":     true,
	"login.microsoftonline.us":         true,
	"login.usgovcloudapi.net":          true,
	"login.sovcloud-identity.fr":       true,
	"login.sovcloud-identity.de":       true,
	"login.sovcloud-identity.sg":       true,
}

// NewMSALTokenSource checks opts and returns a token source. It makes no
// network call; each problem is reported naming its setting.
func NewMSALTokenSource(opts MSALOptions) (*MSALTokenSource, error) {
	var errs []error
	host := strings.TrimSuffix(opts.AuthorityHost, "/")
	if host == "" {
		host = DefaultAuthorityHost
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		errs = append(errs, errors.New("caller: AZURE_AUTHORITY_HOST must be an https URL without path (MSAL requires https)"))
	}
	if opts.TenantID == "" || strings.ContainsAny(opts.TenantID, "/?#% ") {
		errs = append(errs, errors.New("caller: AZURE_TENANT_ID is required and must be a tenant ID"))
	}
	if opts.ClientID == "" {
		errs = append(errs, errors.New("caller: CALLER_CLIENT_ID is required"))
	}
	if s := opts.Scope; s == "" || strings.ContainsAny(s, " \t\r\n") || !strings.HasSuffix(s, "/.default") || s == "/.default" {
		errs = append(errs, errors.New(`caller: CALLER_SCOPE must be one scope ending in "/.default" (the client-credentials grant accepts no other)`))
	}
	kind, cell := "", (*secrets.Cell)(nil)
	n := 0
	if opts.ClientSecret != nil {
		kind, cell, n = CredentialSecret, opts.ClientSecret, n+1
	}
	if opts.Certificate != nil {
		kind, cell, n = CredentialCertificate, opts.Certificate, n+1
	}
	if opts.ManagedIdentity != nil {
		kind, n = CredentialManagedIdentity, n+1
	}
	switch {
	case n == 0:
		errs = append(errs, errors.New("caller: a credential is required: CALLER_CLIENT_SECRET for the secret credential, CALLER_CLIENT_CERTIFICATE for the certificate, or a managed identity (CALLER_CREDENTIAL)"))
	case n > 1:
		errs = append(errs, errors.New("caller: CALLER_CREDENTIAL: only one of a client secret, a certificate and a managed identity may be given"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: defaultHTTPTimeout}
	}
	return &MSALTokenSource{
		authority: host + "/" + opts.TenantID,
		discovery: microsoftHosts[strings.ToLower(u.Hostname())],
		clientID:  opts.ClientID,
		scope:     opts.Scope,
		kind:      kind,
		secret:    cell,
		mi:        opts.ManagedIdentity,
		http:      hc,
	}, nil
}

// Credential reports the credential kind: CredentialSecret,
// CredentialCertificate or CredentialManagedIdentity.
func (m *MSALTokenSource) Credential() string { return m.kind }

// InstanceDiscovery reports whether MSAL's instance discovery is on: only for
// Microsoft cloud hosts (case C09).
func (m *MSALTokenSource) InstanceDiscovery() bool { return m.discovery }

// Token returns an access token for the scope. AcquireTokenByCredential
// consults MSAL's in-memory cache first, so a token is reused until shortly
// before it expires and the authority sees one request per token lifetime
// (case C10; AcquireTokenSilent is not used: without an account it fails for
// confidential clients).
//
// Concurrent calls share one acquisition (MSAL's cache does not stop
// concurrent misses from each asking the authority). The shared request
// runs with the first caller's context values (its trace) and deadline, but
// is not cancelled when that caller gives up; each caller waits only as
// long as its own ctx allows. Token makes one attempt: MSAL's confidential
// client does not retry by itself (only its managed-identity client does),
// and the Daemon retries transient failures.
func (m *MSALTokenSource) Token(ctx context.Context) (secrets.Secret, error) {
	ch := m.flight.DoChan("token", func() (any, error) {
		sctx := context.WithoutCancel(ctx)
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			sctx, cancel = context.WithDeadline(sctx, dl)
			defer cancel()
		}
		return m.acquire(sctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return secrets.Secret{}, r.Err
		}
		return r.Val.(secrets.Secret), nil
	case <-ctx.Done():
		return secrets.Secret{}, fmt.Errorf("caller: token request: %w", ctx.Err())
	}
}

// acquire makes one token acquisition through MSAL.
func (m *MSALTokenSource) acquire(ctx context.Context) (secrets.Secret, error) {
	c, err := m.msalClient(ctx)
	if err != nil {
		return secrets.Secret{}, err
	}
	res, err := c.AcquireTokenByCredential(ctx, []string{m.scope})
	if err != nil {
		return secrets.Secret{}, m.classify(err)
	}
	if res.AccessToken == "" {
		return secrets.Secret{}, errors.New("caller: the authority returned an empty access token")
	}
	return secrets.New(res.AccessToken), nil
}

// msalClient returns the confidential client, building it on first use once
// the credential is ready, and again when the secret or certificate has
// rotated (the new client starts with an empty cache, so a rotation costs one
// token request). The managed-identity client is built once: its assertion
// callback asks for a fresh managed-identity token each time.
//
// A rotated value that cannot be used (a certificate that does not parse)
// does not take the daemon down while the client built from the previous
// value still works: that client keeps serving, and each tick logs a warning
// naming the setting until the value is fixed.
func (m *MSALTokenSource) msalClient(ctx context.Context) (*confidential.Client, error) {
	if m.kind == CredentialManagedIdentity {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.client == nil {
			c, err := m.newClient(confidential.NewCredFromAssertionCallback(federatedAssertion(m.mi)))
			if err != nil {
				return nil, err
			}
			m.client = c
		}
		return m.client, nil
	}
	setting := credentialSetting[m.kind]
	sec, err := m.secret.Get()
	if err != nil {
		return nil, fmt.Errorf("caller: %s is not available: %w", setting, err)
	}
	if sec.IsZero() {
		return nil, fmt.Errorf("caller: %s is empty", setting)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.client != nil && subtle.ConstantTimeCompare([]byte(sec.Reveal()), []byte(m.builtWith.Reveal())) == 1 {
		return m.client, nil
	}
	var cred confidential.Credential
	if m.kind == CredentialCertificate {
		certs, key, err := parseCertificate(sec)
		if err == nil {
			cred, err = confidential.NewCredFromCert(certs, key)
		}
		if err != nil {
			cerr := &CredentialError{Setting: setting, Reason: setting + " " + err.Error()}
			if m.client != nil {
				logctx.From(ctx, nil).Warn("caller: the rotated "+setting+" is not usable; still using the previous one", "setting", setting, "error", cerr.Error())
				return m.client, nil
			}
			return nil, cerr
		}
	} else {
		cred, err = confidential.NewCredFromSecret(sec.Reveal())
		if err != nil {
			if m.client != nil {
				logctx.From(ctx, nil).Warn("caller: the rotated "+setting+" is not usable; still using the previous one", "setting", setting)
				return m.client, nil
			}
			return nil, errors.New("caller: CALLER_CLIENT_SECRET is not usable")
		}
	}
	c, err := m.newClient(cred)
	if err != nil {
		return nil, err
	}
	m.client, m.builtWith = c, sec
	return m.client, nil
}

// credentialSetting is the setting that holds each kind's credential.
var credentialSetting = map[string]string{
	CredentialSecret:          "CALLER_CLIENT_SECRET",
	CredentialCertificate:     "CALLER_CLIENT_CERTIFICATE",
	CredentialManagedIdentity: "AZURE_CLIENT_ID",
}

func (m *MSALTokenSource) newClient(cred confidential.Credential) (*confidential.Client, error) {
	opts := []confidential.Option{confidential.WithHTTPClient(m.http)}
	if !m.discovery {
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	c, err := confidential.New(m.authority, m.clientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("caller: MSAL client for the authority (AZURE_AUTHORITY_HOST, AZURE_TENANT_ID): %s", oneLine(err.Error()))
	}
	return &c, nil
}

// ErrConfig is matched (errors.Is) by token errors that a retry cannot fix:
// the authority refused a setting, which the error names.
var ErrConfig = errors.New("caller: configuration error")

// TokenError is a token request that the authority answered with an error.
// Its message carries the HTTP status, the OAuth error code and the AADSTS
// number, and names the setting to fix when there is one; never the
// authority's error_description (kept out to keep messages short and free of
// anything the authority might echo).
type TokenError struct {
	// Status is the authority's HTTP status.
	Status int
	// Code is the OAuth error ("invalid_client"), empty when the body had none.
	Code string
	// AADSTS is the first of the body's error_codes (7000215), 0 when absent.
	AADSTS int
	// Setting names the setting to fix (CALLER_CLIENT_SECRET,
	// CALLER_CLIENT_CERTIFICATE, AZURE_CLIENT_ID for the managed identity's
	// federated credential, CALLER_CLIENT_ID, CALLER_SCOPE, AZURE_TENANT_ID)
	// for configuration errors; "" otherwise.
	Setting string

	retryAfter string // the reply's Retry-After header
}

// Error implements error.
func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "caller: the authority refused the token request (HTTP %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.AADSTS != 0 {
		fmt.Fprintf(&b, ", AADSTS%d", e.AADSTS)
	}
	b.WriteString(")")
	if hint := settingHint[e.Setting]; hint != "" {
		b.WriteString(": " + hint)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrConfig) true for configuration errors.
func (e *TokenError) Is(target error) bool { return target == ErrConfig && e.Setting != "" }

// Permanent reports whether retrying the same request cannot succeed: every
// 4xx but 408 and 429.
func (e *TokenError) Permanent() bool {
	return e.Setting != "" || (e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests)
}

var settingHint = map[string]string{
	"CALLER_CLIENT_SECRET":      "check CALLER_CLIENT_SECRET (wrong, expired or not the daemon app's secret)",
	"CALLER_CLIENT_CERTIFICATE": "check CALLER_CLIENT_CERTIFICATE (its certificate must be registered on the daemon app, unexpired, and the clock right)",
	"AZURE_CLIENT_ID": "the managed identity's token was refused as the daemon's credential: the daemon app (CALLER_CLIENT_ID) needs a federated credential " +
		"with issuer <AZURE_AUTHORITY_HOST>/<AZURE_TENANT_ID>/v2.0, subject the identity's principal (object) ID and audience api://AzureADTokenExchange; " +
		"AZURE_CLIENT_ID selects the user-assigned identity",
	"CALLER_CLIENT_ID": "check CALLER_CLIENT_ID (no such application in the tenant; also check AZURE_TENANT_ID)",
	"CALLER_SCOPE":     `check CALLER_SCOPE (must be "<API App ID URI or client ID>/.default" of an API in the tenant)`,
	"AZURE_TENANT_ID":  "check AZURE_TENANT_ID (the authority does not know the tenant)",
}

// settingFor maps an OAuth error to the setting that causes it, for the
// secret credential.
func settingFor(code string, aadsts int) string {
	return settingForKind(CredentialSecret, code, aadsts)
}

// federatedErrors are the AADSTS numbers of a federated credential that does
// not match: no record (70021), none for the issuer, audience or subject
// (700211, 700212, 700213), subject case mismatch (7002138).
var federatedErrors = map[int]bool{70021: true, 700211: true, 700212: true, 700213: true, 7002138: true}

// settingForKind maps an OAuth error to the setting that causes it, for a
// credential kind: a refused credential is the setting that holds it.
func settingForKind(kind, code string, aadsts int) string {
	switch {
	case code == "invalid_client" || (kind == CredentialManagedIdentity && federatedErrors[aadsts]):
		return credentialSetting[kind]
	case code == "unauthorized_client" || aadsts == 700016:
		return "CALLER_CLIENT_ID"
	case code == "invalid_scope" || code == "invalid_resource" || aadsts == 1002012 || aadsts == 500011:
		return "CALLER_SCOPE"
	case code == "invalid_tenant" || aadsts == 90002:
		return "AZURE_TENANT_ID"
	}
	return ""
}

// maxErrorBody caps how much of an authority error body is read.
const maxErrorBody = 64 << 10

// classify turns an MSAL error into a TokenError when the authority answered
// (MSAL's CallErr carries the response), the CredentialError of a
// credential that could not be produced, or a one-line error otherwise. The
// response body is read for its error and error_codes only.
func (m *MSALTokenSource) classify(err error) error {
	var cred *CredentialError
	if errors.As(err, &cred) {
		return cred
	}
	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		te := &TokenError{Status: ce.Resp.StatusCode, retryAfter: ce.Resp.Header.Get("Retry-After")}
		if ce.Resp.Body != nil {
			raw, _ := io.ReadAll(io.LimitReader(ce.Resp.Body, maxErrorBody))
			ce.Resp.Body = io.NopCloser(bytes.NewReader(raw))
			te.Code, te.AADSTS = parseAuthorityError(raw)
		}
		te.Setting = settingForKind(m.kind, te.Code, te.AADSTS)
		return te
	}
	// Not an answer from the authority: network, TLS, deadline, a malformed
	// reply.
	return &transportError{msg: "caller: token request failed: " + transportReason(err), err: err}
}

// transportReason says what went wrong without quoting MSAL's own text.
// NOTE: MSAL's messages may quote the authority's whole reply — for a 200
// whose JSON does not decode, that is a token response, access token and
// all (comm.go: "json message bytes were: …") — so none of its text is used.
func transportReason(err error) string {
	var (
		badJSON msalerrors.InvalidJsonErr
		urlErr  *url.Error
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		host    x509.HostnameError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer before the deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &badJSON):
		return "the authority's reply is not a valid token response"
	case errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &host):
		return "the authority's TLS certificate is not trusted (check AZURE_AUTHORITY_HOST, or SSL_CERT_FILE for a local authority)"
	case errors.As(err, &urlErr):
		// Go's own network error (dial, reset, EOF): no body in it. The
		// URL is left out all the same.
		return "network error: " + oneLine(urlErr.Err.Error())
	}
	return fmt.Sprintf("unexpected error (%T)", err)
}

// parseAuthorityError reads the error code and the first AADSTS number from
// an Entra error body; anything else in it is ignored.
func parseAuthorityError(body []byte) (code string, aadsts int) {
	var b struct {
		Error      string `json:"error"`
		ErrorCodes []int  `json:"error_codes"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "", 0
	}
	if len(b.ErrorCodes) > 0 {
		aadsts = b.ErrorCodes[0]
	}
	return safeToken(b.Error, 64), aadsts
}

// transportError is a token request that got no answer from the authority.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

// oneLine collapses whitespace runs (MSAL's messages span lines) and caps the length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 300
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// safeToken keeps a short code-like value printable: letters, digits and _-.
func safeToken(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			return r
		}
		return -1
	}, s)
}
