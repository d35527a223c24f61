package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/weatherfunc/handler/internal/auth"
	"github.com/weatherfunc/handler/internal/caller"
	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/netcheck"
	"github.com/weatherfunc/handler/internal/secrets"
	"github.com/weatherfunc/handler/internal/weather"
)

// settings is the parsed, validated settings contract of DESIGN §3. It is built
// once, in parseSettings, from an injected getenv: nothing else reads the
// environment.
type settings struct {
	Port string

	TenantID      string
	AuthorityHost string
	APIClientID   string
	APIAppIDURI   string
	RequiredRole  string
	RequiredScope string

	WeatherKey     secretSetting
	WeatherBaseURL string
	CacheTTL       time.Duration
	RatePerMinute  int

	CallerClientID    string
	CallerCredential  string        // caller.CredentialManagedIdentity, CredentialCertificate or CredentialSecret
	CallerSecret      secretSetting // when CallerCredential is "secret"
	CallerCertificate secretSetting // when CallerCredential is "certificate"
	CallerScope       string
	CallerTargetURL   string
	CallerCities      []string
	CallerDeadline    time.Duration

	// ManagedIdentity is true when the platform provides a managed-identity
	// endpoint (IDENTITY_ENDPOINT); AzureClientID selects a user-assigned one.
	ManagedIdentity bool
	AzureClientID   string

	// RefreshInterval is how often versionless Key Vault references are
	// read again (KEYVAULT_REFRESH_INTERVAL).
	RefreshInterval time.Duration

	// weatherUpstreamTimeout is never read from the environment: 0 means
	// weather's default (10 s). Tests shorten it so that the upstream-timeout
	// path runs in milliseconds.
	weatherUpstreamTimeout time.Duration
}

// secretSetting is a setting that holds a secret: either the value itself
// (the platform already resolved the Key Vault reference) or an unresolved
// reference that the handler resolves itself (case C18).
type secretSetting struct {
	Name  string
	Value secrets.Secret     // set when the setting holds a plain value
	Ref   *secrets.Reference // set when the setting holds a Key Vault reference
}

// guidRE is a GUID in any case; settings lower-case it, which is the form
// Entra writes in tokens (tid, aud) and auth compares against.
var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// parseSettings reads and checks every setting. It reports all problems at
// once, one per line, each naming the setting and never its value.
func parseSettings(getenv func(string) string) (settings, error) {
	p := &parser{getenv: getenv}
	var s settings

	s.Port = p.port("FUNCTIONS_CUSTOMHANDLER_PORT")
	s.TenantID = p.guid("AZURE_TENANT_ID")
	s.AuthorityHost = strings.TrimSuffix(p.hostURL("AZURE_AUTHORITY_HOST", auth.DefaultAuthorityHost), "/")
	s.APIClientID = p.guid("API_CLIENT_ID")
	s.APIAppIDURI = p.str("API_APP_ID_URI", "api://"+s.APIClientID)
	if s.APIAppIDURI != "" {
		if u, err := url.Parse(s.APIAppIDURI); err != nil || u.Scheme == "" {
			p.fail("API_APP_ID_URI", "must be an absolute URI such as api://<API_CLIENT_ID>")
		}
	}
	s.RequiredRole = p.str("API_REQUIRED_ROLE", auth.DefaultRequiredRole)
	s.RequiredScope = p.str("API_REQUIRED_SCOPE", auth.DefaultRequiredScope)

	s.WeatherKey = p.secret("WEATHER_API_KEY", false)
	s.WeatherBaseURL = strings.TrimSuffix(p.hostURL("WEATHER_API_BASE_URL", weather.DefaultBaseURL), "/")
	s.CacheTTL = p.duration("WEATHER_CACHE_TTL", weather.DefaultCacheTTL, weather.MinCacheTTL, weather.MaxCacheTTL)
	s.RatePerMinute = p.integer("WEATHER_RATE_LIMIT", weather.DefaultRatePerMinute, 1, 1_000_000)

	s.ManagedIdentity = getenv("IDENTITY_ENDPOINT") != ""
	s.CallerClientID = p.guid("CALLER_CLIENT_ID")
	s.CallerCredential = p.str("CALLER_CREDENTIAL", caller.CredentialManagedIdentity)
	switch s.CallerCredential {
	case caller.CredentialSecret:
		s.CallerSecret = p.secret("CALLER_CLIENT_SECRET", false)
	case caller.CredentialCertificate:
		// A value the platform resolved is the PEM text (with line breaks)
		// or base64 PFX text of the certificate.
		s.CallerCertificate = p.secret("CALLER_CLIENT_CERTIFICATE", true)
	case caller.CredentialManagedIdentity:
		if !s.ManagedIdentity {
			// NOTE: without IDENTITY_ENDPOINT azidentity would probe the VM
			// metadata endpoint (169.254.169.254), which a Functions app does
			// not have: refuse at start rather than fail every tick.
			p.fail("CALLER_CREDENTIAL", "is managed-identity (the default), which needs the platform's managed identity, "+
				"but IDENTITY_ENDPOINT is not set (under func start use CALLER_CREDENTIAL=secret or certificate)")
		}
	default:
		p.fail("CALLER_CREDENTIAL", `must be one of managed-identity, certificate, secret`)
	}
	s.CallerScope = p.str("CALLER_SCOPE", s.APIAppIDURI+"/.default")
	if !strings.HasSuffix(s.CallerScope, "/.default") || s.CallerScope == "/.default" {
		// Case C08: a client-credentials request must ask for <resource>/.default.
		p.fail("CALLER_SCOPE", "must end in /.default (for example api://<API_CLIENT_ID>/.default)")
	}
	target := ""
	if h := getenv("WEBSITE_HOSTNAME"); h != "" {
		target = "https://" + h + "/api/WeatherHttp"
	}
	s.CallerTargetURL = p.url("CALLER_TARGET_URL", target)
	if s.CallerTargetURL == "" && getenv("CALLER_TARGET_URL") == "" {
		p.fail("CALLER_TARGET_URL", "is required when WEBSITE_HOSTNAME is not set")
	}
	s.CallerCities = p.list("CALLER_CITIES", "London")
	s.CallerDeadline = p.functionDeadline(getenv("FUNCTIONS_APP_ROOT_PATH"))

	if s.ManagedIdentity {
		p.url("IDENTITY_ENDPOINT", "")
		if getenv("IDENTITY_HEADER") == "" {
			p.fail("IDENTITY_HEADER", "is required when IDENTITY_ENDPOINT is set")
		}
	}
	if v := getenv("AZURE_CLIENT_ID"); v != "" {
		s.AzureClientID = p.guid("AZURE_CLIENT_ID")
	}
	s.RefreshInterval = p.duration("KEYVAULT_REFRESH_INTERVAL", secrets.DefaultRefreshInterval, secrets.MinRefreshInterval, secrets.MaxRefreshInterval)
	return s, errors.Join(p.errs...)
}

// parser collects one error per bad setting.
type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, reason string) {
	p.errs = append(p.errs, fmt.Errorf("setting %s %s", name, reason))
}

// str returns the trimmed value or def when unset.
func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *parser) required(name string) string {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		p.fail(name, "is required")
	}
	return v
}

func (p *parser) port(name string) string {
	v := p.required(name)
	if v == "" {
		return ""
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
		p.fail(name, "must be a TCP port number (1-65535)")
	}
	return v
}

func (p *parser) guid(name string) string {
	v := p.required(name)
	if v != "" && !guidRE.MatchString(v) {
		p.fail(name, "must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
	}
	return strings.ToLower(v)
}

// url checks an absolute https URL (http only for a loopback host).
func (p *parser) url(name, def string) string { return p.checkedURL(name, def, netcheck.Rules{}) }

// hostURL is url without a path: a host that paths are joined onto.
func (p *parser) hostURL(name, def string) string {
	return p.checkedURL(name, def, netcheck.Rules{NoPath: true})
}

func (p *parser) checkedURL(name, def string, rules netcheck.Rules) string {
	v := p.str(name, def)
	if v == "" {
		return ""
	}
	if _, err := netcheck.CheckURL(v, rules); err != nil {
		p.fail(name, err.Error())
	}
	return v
}

func (p *parser) duration(name string, def, lo, hi time.Duration) time.Duration {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		p.fail(name, fmt.Sprintf("must be a Go duration between %s and %s (for example 10m)", lo, hi))
		return def
	}
	return d
}

func (p *parser) integer(name string, def, lo, hi int) int {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

func (p *parser) list(name, def string) []string {
	var out []string
	for _, c := range strings.Split(p.str(name, def), ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		p.fail(name, "must name at least one city")
	}
	return out
}

// secret reads a required setting that holds a secret or a Key Vault
// reference to one. multiline allows line breaks and spaces in a plain value
// (a certificate's PEM text).
func (p *parser) secret(name string, multiline bool) secretSetting {
	s := secretSetting{Name: name}
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		p.fail(name, "is required (a Key Vault reference: @Microsoft.KeyVault(SecretUri=…))")
		return s
	}
	ref, isRef, err := secrets.ParseReference(v)
	switch {
	case err != nil:
		p.fail(name, "is a malformed Key Vault reference: "+err.Error())
	case isRef && !strings.HasPrefix(ref.VaultURL, "https://"):
		// NOTE: stricter than ParseReference, which accepts http for a
		// loopback vault: Key Vault tokens are only ever sent over TLS, so
		// such a reference could never resolve.
		p.fail(name, "is a Key Vault reference to a vault without https (tokens are sent only over TLS)")
	case isRef:
		s.Ref = &ref
	case !multiline && strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		p.fail(name, "must not contain spaces or control characters (is it pasted whole?)")
	default:
		s.Value = secrets.New(v)
	}
	return s
}

// functionDeadline is the daemon's budget for one tick: host.json's
// functionTimeout minus 10 % (and at least 5 s of margin), or 5 minutes when
// there is no host.json to read or it sets no limit.
func (p *parser) functionDeadline(appRoot string) time.Duration {
	const fallback = funcs.DefaultFunctionTimeout
	if appRoot == "" {
		return fallback
	}
	cfg, err := funcs.LoadHostConfig(appRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return fallback
	}
	if err != nil {
		p.fail("FUNCTIONS_APP_ROOT_PATH", "holds a host.json that cannot be read")
		return fallback
	}
	d, err := cfg.Timeout()
	if err != nil {
		p.fail("FUNCTIONS_APP_ROOT_PATH", "holds a host.json whose functionTimeout is not a timespan like 00:05:00")
		return fallback
	}
	if d <= 0 { // "-1": no limit
		return fallback
	}
	margin := max(d/10, 5*time.Second)
	if d-margin < time.Second {
		return d / 2
	}
	return d - margin
}
