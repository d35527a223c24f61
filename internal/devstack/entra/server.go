package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" // x5t is by definition a SHA-1 thumbprint (RFC 7517 §4.8): a label, not a security check
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/tlsca"
)

// Client is a confidential client application registered in the tenant (the
// daemon) and the app roles of the protected API granted to it.
type Client struct {
	// Secret is the client secret the application authenticates with; empty
	// means the application has none (every secret is refused).
	Secret string
	// Certificates are the certificates registered on the application: a
	// client assertion signed by one's key (named by the x5t#S256 or x5t
	// header) authenticates it.
	Certificates []*x509.Certificate
	// FederatedCredentials are the application's federated identity
	// credentials: a token matching one (a managed identity's, minted by
	// MintFederated) authenticates it as a client assertion.
	FederatedCredentials []FederatedCredential
	// Roles are the API's app roles granted to the application; they appear
	// in the roles claim of its tokens (the claim is omitted when empty).
	Roles []string
}

// API is the protected API's app registration.
type API struct {
	// ClientID is the API's application (client) ID: the audience of v2 tokens.
	ClientID string
	// AppIDURI is the API's App ID URI (the v1 audience). Default
	// "api://" + ClientID.
	AppIDURI string
}

// Options configure the stand-in.
type Options struct {
	// TenantID is the one tenant served (required). Other tenants in a path
	// get Entra's AADSTS90002 error.
	TenantID string
	// Clients maps client IDs to their registrations.
	Clients map[string]Client
	// API is the protected API (ClientID required).
	API API
	// Now is the clock for token times and error timestamps. Default time.Now.
	Now func() time.Time
	// TokenLifetime is the lifetime of issued access tokens. Default 1h; the
	// token response's expires_in is one second less (3599), like Entra's.
	TokenLifetime time.Duration
	// Logger receives one line per token request (never a secret or token).
	// Default: discard.
	Logger *slog.Logger
}

// Server is a running stand-in. It is safe for concurrent use.
type Server struct {
	tenant   string
	clients  map[string]Client
	api      API
	now      func() time.Time
	lifetime time.Duration
	log      *slog.Logger

	key     *rsa.PrivateKey
	kid     string
	certDER []byte

	srv *http.Server
	url string

	tokenHits atomic.Int64
	keysHits  atomic.Int64

	jtiMu sync.Mutex
	jtis  map[string]time.Time // certificate assertions' jti, until their exp

	issuedMu sync.Mutex
	issued   []string // access tokens the token endpoint handed out, for leak tests
}

// maxIssued bounds what IssuedTokens remembers (the oldest are dropped).
const maxIssued = 256

func (s *Server) recordIssued(tok string) {
	s.issuedMu.Lock()
	defer s.issuedMu.Unlock()
	if len(s.issued) == maxIssued {
		s.issued = s.issued[1:]
	}
	s.issued = append(s.issued, tok)
}

// IssuedTokens returns the access tokens the token endpoint has issued and
// the federated tokens MintFederated made (the latest 256), so that tests can prove none of them is ever printed.
func (s *Server) IssuedTokens() []string {
	s.issuedMu.Lock()
	defer s.issuedMu.Unlock()
	return append([]string(nil), s.issued...)
}

// Start generates an RSA-2048 signing key (with a self-signed certificate for
// the x5c/x5t members of the keys document, kid = x5t as in Entra) and serves
// the tenant over HTTPS on 127.0.0.1 at a free port, with a certificate from ca.
func Start(ca *tlsca.CA, opts Options) (*Server, error) {
	if ca == nil {
		return nil, errors.New("entra: a CA is required")
	}
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	// The URL (the issuer's base) is set before anything is served, so no
	// request can race with it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("entra: listen: %w", err)
	}
	s.url = "https://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.routes(), TLSConfig: ca.ServerConfig(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	return s, nil
}

// newServer builds everything but the listener.
func newServer(opts Options) (*Server, error) {
	if opts.TenantID == "" || strings.ContainsAny(opts.TenantID, "/?#") {
		return nil, errors.New("entra: TenantID must be a non-empty path segment")
	}
	if opts.API.ClientID == "" {
		return nil, errors.New("entra: API.ClientID is required")
	}
	s := &Server{
		tenant:   opts.TenantID,
		clients:  make(map[string]Client, len(opts.Clients)),
		api:      opts.API,
		now:      opts.Now,
		lifetime: opts.TokenLifetime,
		log:      opts.Logger,
	}
	for id, c := range opts.Clients {
		c.Roles = append([]string(nil), c.Roles...)
		c.Certificates = append([]*x509.Certificate(nil), c.Certificates...)
		c.FederatedCredentials = append([]FederatedCredential(nil), c.FederatedCredentials...)
		s.clients[id] = c
	}
	if s.api.AppIDURI == "" {
		s.api.AppIDURI = "api://" + s.api.ClientID
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime <= 0 {
		s.lifetime = time.Hour
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.generateKey(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) generateKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("entra: signing key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return fmt.Errorf("entra: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "weatherfunc devstack entra token signing"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("entra: signing certificate: %w", err)
	}
	sum := sha1.Sum(der)
	s.key, s.certDER = key, der
	s.kid = base64.RawURLEncoding.EncodeToString(sum[:])
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{tenant}/v2.0/.well-known/openid-configuration", s.tenantOnly(s.handleMetadata(true)))
	mux.Handle("GET /{tenant}/.well-known/openid-configuration", s.tenantOnly(s.handleMetadata(false)))
	mux.Handle("GET /{tenant}/discovery/v2.0/keys", s.tenantOnly(s.handleKeys(true)))
	mux.Handle("GET /{tenant}/discovery/keys", s.tenantOnly(s.handleKeys(false)))
	mux.Handle("POST /{tenant}/oauth2/v2.0/token", s.tenantOnly(s.handleToken()))
	mux.Handle("GET /common/discovery/instance", s.handleInstanceDiscovery())
	return mux
}

// tenantOnly answers AADSTS90002 for any tenant but ours. Tenant IDs are
// GUIDs and compared case-insensitively, as Entra does.
func (s *Server) tenantOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := r.PathValue("tenant"); !strings.EqualFold(t, s.tenant) {
			s.writeError(w, r, errUnknownTenant(t))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// URL returns the server's base URL, "https://127.0.0.1:PORT": the value of
// AZURE_AUTHORITY_HOST.
func (s *Server) URL() string { return s.url }

// Issuer returns the v2 issuer of the tenant's tokens, "{URL}/{tenant}/v2.0".
func (s *Server) Issuer() string { return s.url + "/" + s.tenant + "/v2.0" }

// IssuerV1 returns the v1 issuer of the tenant's tokens,
// "https://sts.windows.net/{tenant}/" (Entra keeps that host in every cloud).
func (s *Server) IssuerV1() string { return "https://sts.windows.net/" + s.tenant + "/" }

// KeyID returns the kid of the stand-in's signing key.
func (s *Server) KeyID() string { return s.kid }

// PublicKey returns the stand-in's token-signing public key.
func (s *Server) PublicKey() *rsa.PublicKey { return &s.key.PublicKey }

// Close stops the server at once.
func (s *Server) Close() error { return s.srv.Close() }

// TokenRequests reports how many requests reached the token endpoint
// (successful or not).
func (s *Server) TokenRequests() int { return int(s.tokenHits.Load()) }

// KeysRequests reports how many requests reached the keys documents (v1 and v2).
func (s *Server) KeysRequests() int { return int(s.keysHits.Load()) }
