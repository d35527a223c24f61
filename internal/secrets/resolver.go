package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// Defaults of ResolverOptions.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 30 * time.Second
	DefaultTimeout    = 10 * time.Second
)

// ResolverOptions configures a Resolver.
type ResolverOptions struct {
	// Credential gets tokens for Key Vault (see NewCredential). Required.
	Credential azcore.TokenCredential
	// HTTPClient carries the requests to the vaults (an *http.Client satisfies
	// azcore's policy.Transporter). Nil means azcore's default transport.
	HTTPClient *http.Client
	// Logger receives one line per failed attempt and per resolution made by
	// Keep, naming the setting and the reference, never a value. Nil discards.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound Keep's exponential backoff between
	// attempts (jittered). Defaults DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds each Resolve call, token acquisition included. Default
	// DefaultTimeout.
	Timeout time.Duration
	// After returns a channel that receives once d has passed: Keep's and
	// Watch's waits (backoff, refresh schedule). Default time.After. Tests
	// inject their own to drive the schedule without waiting.
	After func(d time.Duration) <-chan time.Time
}

// Resolver reads secrets named by Key Vault references with azsecrets. It
// keeps one azsecrets.Client per vault URL, so each vault's authentication
// challenge is answered once and its token reused. It is safe for concurrent
// use.
type Resolver struct {
	cred       azcore.TokenCredential
	httpClient *http.Client
	log        *slog.Logger
	minBackoff time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	after      func(time.Duration) <-chan time.Time

	mu      sync.Mutex
	clients map[string]*azsecrets.Client // by Reference.VaultURL
}

// NewResolver returns a Resolver; it fails when opts.Credential is nil.
func NewResolver(opts ResolverOptions) (*Resolver, error) {
	if opts.Credential == nil {
		return nil, errors.New("secrets: NewResolver: Credential is required")
	}
	r := &Resolver{
		cred:       opts.Credential,
		httpClient: opts.HTTPClient,
		log:        opts.Logger,
		minBackoff: opts.MinBackoff,
		maxBackoff: opts.MaxBackoff,
		timeout:    opts.Timeout,
		after:      opts.After,
		clients:    make(map[string]*azsecrets.Client),
	}
	if r.after == nil {
		r.after = time.After
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.minBackoff <= 0 {
		r.minBackoff = DefaultMinBackoff
	}
	if r.maxBackoff <= 0 {
		r.maxBackoff = DefaultMaxBackoff
	}
	if r.maxBackoff < r.minBackoff {
		r.maxBackoff = r.minBackoff
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	return r, nil
}

// Resolve reads the secret ref names (one GetSecret call, no retries: Keep
// retries). Its errors are *ResolveError values that name the vault host and the
// secret and say what to do; they never contain the secret.
func (r *Resolver) Resolve(ctx context.Context, ref Reference) (Secret, error) {
	s, _, err := r.fetch(ctx, ref)
	return s, err
}

// fetch is Resolve that also returns the version read (from the secret's id;
// "" when the vault did not say), which is safe to log.
func (r *Resolver) fetch(ctx context.Context, ref Reference) (Secret, string, error) {
	u, err := checkVaultURL(ref.VaultURL)
	if err != nil {
		return Secret{}, "", &ResolveError{Vault: hostOf(ref.VaultURL), Name: ref.Name, Reason: err.Error(), invalid: true}
	}
	if !validSecretName(ref.Name) || (ref.Version != "" && !validVersion(ref.Version)) {
		return Secret{}, "", &ResolveError{Vault: u.Host, Name: ref.Name, Reason: "invalid secret name or version", invalid: true}
	}
	client, err := r.client(ref.VaultURL, u)
	if err != nil {
		return Secret{}, "", &ResolveError{Vault: u.Host, Name: ref.Name, Reason: "cannot build the Key Vault client", Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	resp, err := client.GetSecret(ctx, ref.Name, ref.Version, nil)
	if err != nil {
		return Secret{}, "", explain(u.Host, ref.Name, r.timeout, err)
	}
	if resp.Value == nil {
		return Secret{}, "", &ResolveError{Vault: u.Host, Name: ref.Name, StatusCode: http.StatusOK, Reason: "the vault returned the secret without a value"}
	}
	version := ""
	if resp.ID != nil && validVersion(resp.ID.Version()) {
		version = resp.ID.Version()
	}
	return New(*resp.Value), version, nil
}

// checkVaultURL accepts https://host[:port]. An http URL, which ParseReference
// allows for loopback hosts, is refused here: tokens travel only over TLS.
func checkVaultURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, errors.New("the vault URL must be https://<host>[:port] without a path")
	}
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		// Accepted by ParseReference for loopback hosts, but the SDK sends
		// tokens only over TLS, and we do not switch that off.
		return nil, errors.New("the vault URL is http: Key Vault tokens are sent only over https (serve the local vault with TLS)")
	default:
		return nil, errors.New("the vault URL must be https")
	}
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return "(invalid vault URL)"
}

func (r *Resolver) client(vaultURL string, u *url.URL) (*azsecrets.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[vaultURL]; ok {
		return c, nil
	}
	c, err := azsecrets.NewClient(vaultURL, r.cred, vaultClientOptions(u, r.httpClient))
	if err != nil {
		return nil, err
	}
	r.clients[vaultURL] = c
	return c, nil
}

// vaultClientOptions chooses the azsecrets options for one vault.
//
// azsecrets checks that the resource named in the vault's 401 challenge
// belongs to the vault's own domain (resource https://vault.azure.net for
// myvault.vault.azure.net), so a token is never sent to a host that merely
// claims to be a vault. That check cannot pass for a loopback vault (the local
// stand-in), so it is relaxed for loopback hosts and for nothing else: a token
// for a loopback address never leaves the machine.
func vaultClientOptions(u *url.URL, transport *http.Client) *azsecrets.ClientOptions {
	o := &azsecrets.ClientOptions{
		DisableChallengeResourceVerification: isLoopbackHost(u.Hostname()),
	}
	if transport != nil {
		o.Transport = transport
	}
	// One attempt per Resolve: Keep owns retrying, with its own backoff, so
	// that azcore's retries do not multiply with ours.
	o.Retry = policy.RetryOptions{MaxRetries: -1}
	return o
}

// ResolveError says why a Key Vault reference could not be resolved. Its text
// names the vault host and the secret, gives Key Vault's status and error code,
// and says what to do: "key vault myvault.vault.azure.net: secret weather-api-key:
// 403 ForbiddenByRbac: the identity lacks …". It never contains the secret or a
// token; Err (for errors.As/Is) may hold the SDK's own error.
type ResolveError struct {
	Vault      string // the vault's host[:port]
	Name       string // the secret's name
	StatusCode int    // Key Vault's HTTP status; 0 when there was no response
	Code       string // Key Vault's most specific error code (innererror.code), if any
	Reason     string // what failed and what to do
	Err        error  // the underlying error, if any

	invalid bool // the reference itself is unusable: retrying cannot help
}

// Error implements error.
func (e *ResolveError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "key vault %s: secret %s: ", e.Vault, e.Name)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d", e.StatusCode)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ResolveError) Unwrap() error { return e.Err }

// explain turns an azsecrets GetSecret error into a ResolveError.
func explain(vault, name string, timeout time.Duration, err error) *ResolveError {
	e := &ResolveError{Vault: vault, Name: name, Err: err}
	var re *azcore.ResponseError
	var af *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &re):
		e.StatusCode = re.StatusCode
		e.Code = innermostCode(re)
		e.Reason = advice(re.StatusCode, e.Code) + bodyFacts(re)
		// The ResponseError's own text (request line, body) is deliberately
		// left out: Reason says what matters, and Err keeps it for errors.As.
		return e
	case errors.As(err, &af):
		// NOTE: af.Error() quotes the identity endpoint's whole response,
		// and an endpoint may echo request headers (X-IDENTITY-HEADER) in
		// it, so only the status reaches the message.
		e.Reason = "no token for the vault from the managed identity or Azure CLI"
		if af.RawResponse != nil {
			e.Reason += fmt.Sprintf(" (the token endpoint answered HTTP %d)", af.RawResponse.StatusCode)
		}
		e.Reason += ": in Azure check the app's identity and AZURE_CLIENT_ID; locally run az login"
	case strings.Contains(err.Error(), "doesn't match the requested domain"):
		e.Reason = "the vault's authentication challenge names a resource outside the vault's domain, so no token was sent (is the vault URL right?)"
	case errors.Is(err, context.DeadlineExceeded):
		e.Reason = fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, context.Canceled):
		e.Reason = "canceled"
	default:
		e.Reason = oneLine(err.Error())
	}
	return e
}

// advice is the actionable text for a Key Vault error status and code.
func advice(status int, code string) string {
	switch status {
	case http.StatusUnauthorized:
		return "the vault refused the identity's token (missing, expired, or issued for another tenant than the vault's)"
	case http.StatusForbidden:
		switch code {
		case "ForbiddenByRbac":
			return `the identity lacks the "Key Vault Secrets User" role on the vault; assign it (role assignments take a few minutes to apply)`
		case "AccessDenied":
			return `the vault uses access policies and the identity has no "Get" permission on secrets; grant it, or switch the vault to Azure RBAC and assign "Key Vault Secrets User"`
		case "ForbiddenByFirewall":
			return "the vault's firewall (or network security perimeter) refused this client's network address; allow the app's outbound addresses in the vault's " +
				"Networking settings, or allow public access (Flex Consumption cannot reach a network-restricted vault; RBAC is the gate)"
		case "ForbiddenByConnection":
			return "public network access to the vault is disabled; enable it (Flex Consumption cannot reach a network-restricted vault) or use an approved private link"
		case "SecretDisabled":
			return "the secret (version) is disabled; enable it or reference an enabled version"
		default:
			return "access to the secret denied by the vault"
		}
	case http.StatusNotFound:
		return "secret not found: check the secret name and version in the reference, and that the secret was not deleted"
	case http.StatusTooManyRequests:
		return "throttled by Key Vault (too many requests to the vault from this subscription); the handler retries with backoff, " +
			"and if it persists, spread the load: fewer instances reading at once, or a longer KEYVAULT_REFRESH_INTERVAL"
	case http.StatusBadRequest:
		return "the vault refused the request as malformed"
	}
	if status >= 500 {
		return "Key Vault is unavailable; try again later"
	}
	return "unexpected answer from Key Vault"
}

// The identifying facts Key Vault's 403 messages carry: which identity
// asked (Caller: appid=…;oid=…), from which address, for which vault. Only
// GUIDs, an address of digits, dots, colons and x, and a vault name are ever
// taken from the body.
var (
	callerPattern  = regexp.MustCompile(`Caller: appid=([0-9a-fA-F-]{36,37});oid=([0-9a-fA-F-]{36,37})`)
	addressPattern = regexp.MustCompile(`Client address: ([0-9a-fA-Fx.:]{3,45})`)
	vaultPattern   = regexp.MustCompile(`Vault: ([0-9a-zA-Z-]{3,24});`)
)

// bodyFacts returns " (identity appid … oid …, client address …, vault …)"
// from a 403 body, so the message says which identity lacks access to which
// vault; "" when the body names none of them.
func bodyFacts(re *azcore.ResponseError) string {
	if re.StatusCode != http.StatusForbidden || re.RawResponse == nil {
		return ""
	}
	body, err := runtime.Payload(re.RawResponse)
	if err != nil {
		return ""
	}
	var facts []string
	if m := callerPattern.FindSubmatch(body); m != nil {
		facts = append(facts, fmt.Sprintf("identity appid=%s oid=%s", m[1], m[2]))
	}
	if m := addressPattern.FindSubmatch(body); m != nil {
		facts = append(facts, "client address "+string(m[1]))
	}
	if m := vaultPattern.FindSubmatch(body); m != nil {
		facts = append(facts, "vault "+string(m[1]))
	}
	if len(facts) == 0 {
		return ""
	}
	return " (" + strings.Join(facts, ", ") + ")"
}

// kvError is Key Vault's error body: {"error":{"code","message","innererror":{"code"}}}.
type kvError struct {
	Error struct {
		Code       string `json:"code"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

// codePattern finds error codes in a body that is not valid JSON (one 403 body
// as published lacks its closing brace); the last match is the innermost code.
var codePattern = regexp.MustCompile(`"code"\s*:\s*"([A-Za-z0-9]{1,64})"`)

// innermostCode returns Key Vault's most specific error code: innererror.code
// when present (ForbiddenByRbac under Forbidden), else error.code.
func innermostCode(re *azcore.ResponseError) string {
	if re.RawResponse != nil {
		if body, err := runtime.Payload(re.RawResponse); err == nil && len(body) > 0 {
			var b kvError
			if json.Unmarshal(body, &b) == nil {
				if b.Error.InnerError != nil && b.Error.InnerError.Code != "" {
					return safeCode(b.Error.InnerError.Code)
				}
				if b.Error.Code != "" {
					return safeCode(b.Error.Code)
				}
			} else if m := codePattern.FindAllSubmatch(body, -1); len(m) > 0 {
				return string(m[len(m)-1][1])
			}
		}
	}
	return safeCode(re.ErrorCode)
}

// safeCode keeps a code only when it looks like one (letters and digits), so
// that no arbitrary body text reaches an error string.
func safeCode(c string) string {
	if len(c) == 0 || len(c) > 64 {
		return ""
	}
	for i := 0; i < len(c); i++ {
		if !isAlnum(c[i]) {
			return ""
		}
	}
	return c
}

// rule matches the separator lines of azcore's and azidentity's messages.
var rule = regexp.MustCompile(`\s*-{8,}\s*`)

// oneLine folds a multi-line SDK message into one line for logs.
func oneLine(s string) string {
	return strings.Join(strings.Fields(rule.ReplaceAllString(s, " | ")), " ")
}

// Keep resolves ref into cell, retrying with exponential backoff and jitter
// (MinBackoff doubling up to MaxBackoff) until it succeeds or ctx is done
// (403 and 404 are retried too: a role assignment or a new secret heals them;
// only a reference that cannot work, such as an http vault, stops it at once). On
// each failure it records the error in cell (cell.Fail) and logs a line naming
// the setting and the reference, never a value. It returns nil once the secret
// is in cell, ctx's error (with the last failure) when ctx ends first, or the
// failure itself, at once, for an unusable reference. Errors start with the
// setting's name. It is
// meant to run in its own goroutine at start-up.
//
// Keep resolves once; Watch keeps a versionless reference current afterwards.
func (r *Resolver) Keep(ctx context.Context, setting string, ref Reference, cell *Cell) error {
	if cell == nil {
		return fmt.Errorf("secrets: Keep %s: nil cell", setting)
	}
	delay := r.minBackoff
	var last error
	for attempt := 1; ; attempt++ {
		s, err := r.Resolve(ctx, ref)
		if err == nil {
			cell.Set(s)
			r.log.Info("key vault reference resolved", "setting", setting, "reference", ref.String(), "attempts", attempt)
			return nil
		}
		if ctx.Err() != nil {
			return keepStopped(setting, ctx.Err(), last)
		}
		last = fmt.Errorf("%s: %w", setting, err)
		cell.Fail(last)
		if re := (*ResolveError)(nil); errors.As(err, &re) && re.invalid {
			r.log.Error("key vault reference unusable", "setting", setting, "reference", ref.String(), "error", err.Error())
			return last
		}
		wait := jitter(delay)
		r.log.Warn("key vault reference not resolved; will retry",
			"setting", setting, "reference", ref.String(), "attempt", attempt,
			"retry_in", wait.String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return keepStopped(setting, ctx.Err(), last)
		case <-r.after(wait):
		}
		delay = min(2*delay, r.maxBackoff)
	}
}

func keepStopped(setting string, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("%s: key vault reference not resolved: %w", setting, ctxErr)
	}
	return fmt.Errorf("%w (stopped: %w)", last, ctxErr)
}

// jitter returns a duration in [d/2, d] ("equal jitter"), so that instances
// that failed together do not retry together.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}
