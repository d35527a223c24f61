package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/weatherfunc/handler/internal/netcheck"
)

// Defaults and limits.
const (
	// DefaultAuthorityHost is Entra ID's public-cloud authority.
	DefaultAuthorityHost = "https://login.microsoftonline.com"
	// DefaultRequiredRole is the app role that admits app-only tokens.
	DefaultRequiredRole = "access_as_application"
	// DefaultRequiredScope is the delegated scope that admits user tokens.
	DefaultRequiredScope = "access_as_user"
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
	DefaultLeeway = time.Minute
	// MaxLeeway is the largest Leeway New accepts.
	MaxLeeway = 5 * time.Minute
	// MaxTokenSize is the longest token Verify looks at; longer ones are
	// refused before any decoding.
	MaxTokenSize = 16 << 10
)

// Options configure a Verifier. TenantID, AuthorityHost and ClientID are
// required; every other field has a documented default. New refuses an
// Options value that could weaken a check rather than guessing.
type Options struct {
	// TenantID is the GUID of the tenant that issues tokens for the API. It
	// is compared exactly with the token's tid (after New lower-cases it;
	// Entra ID writes GUIDs in lower case).
	TenantID string
	// AuthorityHost is the Entra authority, e.g.
	// "https://login.microsoftonline.com" (a trailing slash is ignored).
	// Must be https; http is accepted only for a loopback host.
	AuthorityHost string
	// ClientID is the API app registration's client ID (GUID): the only
	// accepted aud of a "2.0" token.
	ClientID string
	// AppIDURI is the only accepted aud of a "1.0" token. Default
	// "api://"+ClientID.
	AppIDURI string
	// RequiredRole is the app role that admits app-only tokens. Default
	// DefaultRequiredRole.
	RequiredRole string
	// RequiredScope is the delegated scope that admits user tokens. Default
	// DefaultRequiredScope.
	RequiredScope string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultLeeway; negative or more than MaxLeeway is an error.
	Leeway time.Duration
	// HTTPClient fetches the metadata and keys documents. Nil means a client
	// with a 10 s timeout; every request also has its own 10 s deadline.
	HTTPClient *http.Client
	// Logger receives refresh failures and, through Middleware, one line per
	// decision (falling back to the request's logctx logger). Nil discards.
	Logger *slog.Logger
	// Now is the clock for lifetime checks and the unknown-kid rate limit.
	// Nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the verified-token cache: how many distinct tokens
	// that passed every check Verify remembers, so that one presented again
	// costs a SHA-256 and a map lookup instead of parsing and an RSA
	// verification. An entry lasts until the token's exp (without leeway),
	// a reload of the metadata or keys, or eviction (an arbitrary entry
	// when full). Zero means DefaultCacheSize; negative switches the cache
	// off. Each entry holds one Claims value, a few hundred bytes.
	CacheSize int
}

// config is Options after defaults and validation.
type config struct {
	tenantID      string
	authority     string // no trailing slash
	clientID      string
	appIDURI      string
	requiredRole  string
	requiredScope string
	leeway        time.Duration
	cacheSize     int // ≤ 0: no cache
	client        *http.Client
	logger        *slog.Logger
	now           func() time.Time
}

// fetchTimeout bounds every metadata and keys request (DESIGN §9: ≤ 10 s).
const fetchTimeout = 10 * time.Second

func (o Options) config() (config, error) {
	c := config{
		tenantID:      strings.ToLower(strings.TrimSpace(o.TenantID)),
		clientID:      strings.ToLower(strings.TrimSpace(o.ClientID)),
		appIDURI:      o.AppIDURI,
		requiredRole:  o.RequiredRole,
		requiredScope: o.RequiredScope,
		leeway:        o.Leeway,
		client:        o.HTTPClient,
		logger:        o.Logger,
		now:           o.Now,
	}
	var errs []error
	if !isGUID(c.tenantID) {
		errs = append(errs, errors.New("auth: TenantID must be a GUID"))
	}
	if !isGUID(c.clientID) {
		errs = append(errs, errors.New("auth: ClientID must be a GUID"))
	}
	authority, err := checkBaseURL(o.AuthorityHost)
	if err != nil {
		errs = append(errs, fmt.Errorf("auth: AuthorityHost %w", err))
	}
	c.authority = authority
	if c.appIDURI == "" {
		c.appIDURI = "api://" + c.clientID
	}
	if u, err := url.Parse(c.appIDURI); err != nil || u.Scheme == "" || !isScopeToken(c.appIDURI) {
		// The App ID URI is quoted into WWW-Authenticate realm="…": no
		// spaces, quotes or backslashes.
		errs = append(errs, errors.New("auth: AppIDURI must be an absolute URI without spaces or quotes"))
	}
	if c.requiredRole == "" {
		c.requiredRole = DefaultRequiredRole
	}
	if !isScopeToken(c.requiredRole) {
		errs = append(errs, errors.New("auth: RequiredRole must be one scope token (RFC 6749 §3.3)"))
	}
	if c.requiredScope == "" {
		c.requiredScope = DefaultRequiredScope
	}
	if !isScopeToken(c.requiredScope) {
		errs = append(errs, errors.New("auth: RequiredScope must be one scope token (RFC 6749 §3.3)"))
	}
	switch {
	case c.leeway == 0:
		c.leeway = DefaultLeeway
	case c.leeway < 0:
		errs = append(errs, errors.New("auth: Leeway must not be negative"))
	case c.leeway > MaxLeeway:
		errs = append(errs, fmt.Errorf("auth: Leeway must be at most %v", MaxLeeway))
	}
	switch {
	case o.CacheSize == 0:
		c.cacheSize = DefaultCacheSize
	case o.CacheSize > 0:
		c.cacheSize = o.CacheSize
	}
	if c.client == nil {
		c.client = &http.Client{Timeout: fetchTimeout}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, errors.Join(errs...)
}

// isGUID reports whether s is a GUID in 8-4-4-4-12 lower-case hex form.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// isScopeToken reports whether s is a non-empty RFC 6749 §3.3 scope-token:
// printable ASCII except space, '"' and '\'. Such a value can be quoted into
// a WWW-Authenticate parameter as is.
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// checkBaseURL validates an authority base URL and returns it without a
// trailing slash.
func checkBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("is required")
	}
	s := strings.TrimSuffix(raw, "/")
	if err := checkFetchURL(s); err != nil {
		return "", err
	}
	if u, _ := url.Parse(s); u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "", errors.New("must not have a query or fragment")
	}
	return s, nil
}

// checkFetchURL accepts an absolute https URL, or http for a loopback host
// only (the offline stack and tests), without user information.
func checkFetchURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("must use https (http only for a loopback host)")
}

func isLoopback(host string) bool { return netcheck.IsLoopback(host) }
