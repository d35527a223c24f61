package caller

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/weatherfunc/handler/internal/secrets"
)

// The daemon's credential kinds, the values of CALLER_CREDENTIAL.
const (
	// CredentialManagedIdentity presents the managed identity's token for
	// api://AzureADTokenExchange as a federated client assertion: no secret
	// exists anywhere (DESIGN §9).
	CredentialManagedIdentity = "managed-identity"
	// CredentialCertificate signs a client assertion with a certificate's
	// private key (CALLER_CLIENT_CERTIFICATE, from Key Vault).
	CredentialCertificate = "certificate"
	// CredentialSecret sends a client secret (CALLER_CLIENT_SECRET, from Key
	// Vault).
	CredentialSecret = "secret"
)

// TokenExchangeScope is the scope of the managed-identity token presented as
// a federated credential: resource api://AzureADTokenExchange.
const TokenExchangeScope = "api://AzureADTokenExchange/.default"

// CredentialError says why the daemon's own credential could not be produced
// before any request reached the authority: no managed-identity token, or a
// certificate that cannot be used. It names the setting to fix when there is
// one (errors.Is(err, ErrConfig) is then true) and never quotes a key, a
// token or an endpoint's response.
type CredentialError struct {
	// Setting names the setting to fix; "" when a retry may help.
	Setting string
	// Reason is what went wrong and what to do.
	Reason string

	err       error
	transient bool // no answer: a retry may help
}

// Retryable reports whether a retry may cure the failure: the managed
// identity endpoint gave no answer (refused, reset, timed out).
func (e *CredentialError) Retryable() bool { return e.Setting == "" && e.transient }

// Error implements error.
func (e *CredentialError) Error() string { return "caller: " + e.Reason }

// Unwrap returns the underlying error (for errors.As on network errors).
func (e *CredentialError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrConfig) true when a setting is at fault.
func (e *CredentialError) Is(target error) bool { return target == ErrConfig && e.Setting != "" }

// NewManagedIdentityCredential returns the credential that gets the managed
// identity's token for the federated assertion: the App Service / Functions
// managed identity (azidentity reads IDENTITY_ENDPOINT and IDENTITY_HEADER
// from the process environment, its own convention), user-assigned when
// clientID (AZURE_CLIENT_ID) is set. httpClient carries its requests (nil:
// azcore's default transport). It makes one attempt per call (azcore's retries
// are off): the Daemon retries a failed token request with its own policy, so
// attempts are not multiplied.
func NewManagedIdentityCredential(clientID string, httpClient *http.Client) (azcore.TokenCredential, error) {
	o := &azidentity.ManagedIdentityCredentialOptions{}
	o.Retry = policy.RetryOptions{MaxRetries: -1}
	if httpClient != nil {
		o.Transport = httpClient
	}
	if clientID != "" {
		o.ID = azidentity.ClientID(clientID)
	}
	cred, err := azidentity.NewManagedIdentityCredential(o)
	if err != nil {
		return nil, fmt.Errorf("caller: managed identity credential (IDENTITY_ENDPOINT, AZURE_CLIENT_ID): %s", oneLine(err.Error()))
	}
	return cred, nil
}

// federatedAssertion is MSAL's assertion callback for the managed-identity
// credential: each call gets the identity's token for
// api://AzureADTokenExchange (azidentity caches it until shortly before it
// expires), which MSAL sends as client_assertion with client_assertion_type
// jwt-bearer.
func federatedAssertion(mi azcore.TokenCredential) func(context.Context, confidential.AssertionRequestOptions) (string, error) {
	return func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
		tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{TokenExchangeScope}})
		if err != nil {
			return "", managedIdentityError(err)
		}
		if tok.Token == "" {
			return "", &CredentialError{Reason: "the managed identity endpoint returned an empty token"}
		}
		return tok.Token, nil
	}
}

// managedIdentityError explains a failed managed-identity token request.
// NOTE: azidentity's AuthenticationFailedError quotes the endpoint's whole
// response, and an endpoint may echo request headers (X-IDENTITY-HEADER), so
// only its status is used.
func managedIdentityError(err error) error {
	var af *azidentity.AuthenticationFailedError
	var unavailable interface{ NonRetriable() }
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &CredentialError{Reason: "no managed identity token for api://AzureADTokenExchange before the deadline", err: err, transient: true}
	case errors.Is(err, context.Canceled):
		return &CredentialError{Reason: "managed identity token request canceled", err: err}
	case errors.As(err, &af):
		if af.RawResponse == nil {
			reason := "no answer from the managed identity endpoint"
			if inner := errors.Unwrap(af); inner != nil {
				reason = transportReason(inner)
			}
			return &CredentialError{Reason: "no managed identity token for api://AzureADTokenExchange: " + reason, err: err, transient: true}
		}
		status := af.RawResponse.StatusCode
		ce := &CredentialError{Reason: fmt.Sprintf("the managed identity endpoint refused a token for api://AzureADTokenExchange (HTTP %d)", status),
			transient: status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500}
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout {
			ce.Setting = "AZURE_CLIENT_ID"
			ce.Reason += ": check that the app has this managed identity and that AZURE_CLIENT_ID is its client ID (unset for the system-assigned identity)"
		}
		return ce
	case errors.As(err, &unavailable):
		return &CredentialError{Setting: "CALLER_CREDENTIAL",
			Reason: "no managed identity is available here (IDENTITY_ENDPOINT): use CALLER_CREDENTIAL=secret or certificate outside Azure"}
	}
	// A network error (refused, reset, timeout): retried by the Daemon.
	return &CredentialError{Reason: "no managed identity token for api://AzureADTokenExchange: " + transportReason(err), err: err, transient: transient(err)}
}

// parseCertificate reads the daemon's certificate and private key from the
// secret Key Vault holds for a certificate: PEM text (content type
// application/x-pem-file: CERTIFICATE and PRIVATE KEY blocks) or base64
// PKCS#12 (application/x-pkcs12, no password, as Key Vault exports it). The two
// are told apart by their text: PEM always holds "-----BEGIN", base64 never
// holds a '-'. Parsing is azidentity.ParseCertificates (PEM and PKCS#12).
// Errors say what is wrong and never quote the input.
func parseCertificate(s secrets.Secret) ([]*x509.Certificate, crypto.PrivateKey, error) {
	text := strings.TrimSpace(s.Reveal())
	var data []byte
	if strings.Contains(text, "-----BEGIN") {
		data = []byte(text)
	} else {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
		if err != nil {
			return nil, nil, errors.New("is neither PEM (application/x-pem-file) nor base64 PKCS#12 (application/x-pkcs12)")
		}
		data = b
	}
	certs, key, err := azidentity.ParseCertificates(data, nil)
	if err != nil {
		// NOTE: the parser's own text is left out; it may describe the
		// input's structure, and says nothing an operator can act on.
		return nil, nil, errors.New("holds no certificate with an unencrypted private key (PEM with CERTIFICATE and PRIVATE KEY blocks, or a PFX without password)")
	}
	if len(certs) == 0 || key == nil {
		return nil, nil, errors.New("must hold both the certificate and its private key")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("holds a private key that is not RSA (Entra certificate credentials need RSA)")
	}
	matched := false
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&rk.PublicKey) {
			matched = true
		}
	}
	if !matched {
		return nil, nil, errors.New("holds a private key that belongs to none of its certificates")
	}
	return certs, key, nil
}
