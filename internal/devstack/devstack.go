package devstack

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/entra"
	"github.com/weatherfunc/handler/internal/devstack/host"
	"github.com/weatherfunc/handler/internal/devstack/identity"
	"github.com/weatherfunc/handler/internal/devstack/keyvault"
	"github.com/weatherfunc/handler/internal/devstack/owm"
	"github.com/weatherfunc/handler/internal/devstack/standin"
	"github.com/weatherfunc/handler/internal/devstack/tlsca"
	"github.com/weatherfunc/handler/internal/funcs"
	"github.com/weatherfunc/handler/internal/netcheck"
	"github.com/weatherfunc/handler/internal/secrets"
)

// Options configures a Stack.
type Options struct {
	// RepoRoot holds host.json, the function folders, local.settings.json and
	// cmd/handler. Default: the current directory.
	RepoRoot string
	// Addr is where the stand-in Functions host listens. Default
	// "127.0.0.1:7071" (Core Tools' port); "127.0.0.1:0" picks a free port.
	Addr string
	// TimerEvery fires each timer function every d instead of on its
	// function.json schedule (0 = the schedule).
	TimerEvery time.Duration
	// Stdout and Stderr receive the host's log lines and the handler's
	// output. Default: os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// OnTimer is called after every timer invocation.
	OnTimer func(host.TimerResult)
	// Handler is a prebuilt handler binary; empty = build ./cmd/handler.
	Handler string
	// BuildEnv is the environment for `go build` of the handler (the Go
	// toolchain's own GOPATH, GOCACHE, proxy settings …); CGO_ENABLED=0 is
	// added. Nil builds with no environment, which only works with a
	// prebuilt Handler.
	BuildEnv []string
	// ParentEnv looks up this process's environment, of which the host passes
	// only PATH, HOME and TMPDIR on to the handler (as a real host would
	// pass its own). Nil passes nothing on.
	ParentEnv func(string) string
	// Credential is how the daemon authenticates (CALLER_CREDENTIAL):
	// CredentialManagedIdentity (the default: the user-assigned identity's
	// token for api://AzureADTokenExchange, signed by the Entra stand-in, is
	// presented as a federated credential that the daemon app trusts; no
	// secret exists), CredentialCertificate (a fresh certificate registered
	// on the daemon app, its PEM in the vault) or CredentialSecret (a fresh
	// client secret in the vault).
	Credential string
}

// The daemon credentials the offline stack can run (Options.Credential).
const (
	CredentialManagedIdentity = "managed-identity"
	CredentialCertificate     = "certificate"
	CredentialSecret          = "secret"
)

// Stack is a running offline system. Close stops all of it.
type Stack struct {
	Host     *host.Host
	Entra    *entra.Server
	Vault    *keyvault.Server
	Identity *identity.Server
	Weather  *owm.Server
	CA       *tlsca.CA

	TenantID       string
	APIClientID    string
	APIAppIDURI    string
	CallerClientID string

	// Credential is the daemon's credential kind (Options.Credential, with
	// its default applied).
	Credential string
	// IdentityClientID and IdentityPrincipalID are the user-assigned managed
	// identity's client ID (AZURE_CLIENT_ID) and principal (object) ID, the
	// subject of the daemon app's federated credential.
	IdentityClientID    string
	IdentityPrincipalID string

	// SecretValues are the values the stand-in vault holds (the weather key,
	// and the daemon's client secret or certificate PEM when that is the
	// credential) and the managed-identity endpoint's IDENTITY_HEADER, so that
	// tests can prove none of them is ever printed. The weather key is first.
	SecretValues []string
	// WeatherSecretName is the vault's name for the OpenWeatherMap key.
	WeatherSecretName string
	// CallerSecretName is the vault's name for the daemon's client secret or
	// certificate; "" for the managed-identity credential.
	CallerSecretName string

	workDir string
	closers []func() error
}

// The secret names used when local.settings.json has no reference to copy one from.
const (
	defaultWeatherSecret = "weather-api-key"
	defaultCallerSecret  = "caller-client-secret"
	defaultCallerCert    = "caller-certificate"
	requiredRole         = "access_as_application"
)

// Start builds the handler (unless Options.Handler names one), starts every
// stand-in and the host, and returns once the handler answers the host's
// readiness probe.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	if opts.RepoRoot == "" {
		opts.RepoRoot = "."
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:7071"
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Credential == "" {
		opts.Credential = CredentialManagedIdentity
	}
	switch opts.Credential {
	case CredentialManagedIdentity, CredentialCertificate, CredentialSecret:
	default:
		return nil, fmt.Errorf("devstack: credential %q: want %s, %s or %s", opts.Credential, CredentialManagedIdentity, CredentialCertificate, CredentialSecret)
	}
	if err := requireLoopback(opts.Addr); err != nil {
		return nil, err
	}
	st = &Stack{
		TenantID:            standin.GUID(),
		APIClientID:         standin.GUID(),
		CallerClientID:      standin.GUID(),
		Credential:          opts.Credential,
		IdentityClientID:    standin.GUID(),
		IdentityPrincipalID: standin.GUID(),
	}
	st.APIAppIDURI = "api://" + st.APIClientID
	defer func() {
		if err != nil {
			_ = st.Close()
			st = nil
		}
	}()
	if st.workDir, err = os.MkdirTemp("", "devstack-"); err != nil {
		return st, err
	}
	st.closers = append(st.closers, func() error { return os.RemoveAll(st.workDir) })

	appRoot := filepath.Join(st.workDir, "app")
	if err := copyApp(opts.RepoRoot, appRoot); err != nil {
		return st, fmt.Errorf("devstack: copy app: %w", err)
	}
	if err := buildHandler(ctx, opts, appRoot); err != nil {
		return st, err
	}
	values, err := localSettings(filepath.Join(opts.RepoRoot, "local.settings.json"))
	if err != nil {
		return st, err
	}

	if st.CA, err = tlsca.New(); err != nil {
		return st, err
	}
	caFile := filepath.Join(st.workDir, "devstack-ca.pem")
	if err := st.CA.WriteCertFile(caFile); err != nil {
		return st, err
	}

	weatherKey := randomSecret()
	miHeader := randomSecret()
	st.SecretValues = []string{weatherKey, miHeader}
	weatherName := secretName(values["WEATHER_API_KEY"], defaultWeatherSecret)
	st.WeatherSecretName = weatherName
	vaultSecrets := map[string]string{weatherName: weatherKey}
	vaultTypes := map[string]string{}

	// The daemon app registration holds exactly the credential in use: a
	// federated credential trusting the managed identity (no secret at all),
	// a certificate, or a client secret.
	daemon := entra.Client{Roles: []string{requiredRole}}
	callerSetting := ""
	switch opts.Credential {
	case CredentialManagedIdentity:
		daemon.FederatedCredentials = []entra.FederatedCredential{{Subject: st.IdentityPrincipalID}}
	case CredentialCertificate:
		cert, pemText, err := newDaemonCertificate()
		if err != nil {
			return st, err
		}
		daemon.Certificates = []*x509.Certificate{cert}
		callerSetting = "CALLER_CLIENT_CERTIFICATE"
		st.CallerSecretName = secretName(values[callerSetting], defaultCallerCert)
		vaultSecrets[st.CallerSecretName] = pemText
		vaultTypes[st.CallerSecretName] = "application/x-pem-file" // what Key Vault gives a PEM certificate's secret
		st.SecretValues = append(st.SecretValues, pemText)
	case CredentialSecret:
		secret := randomSecret()
		daemon.Secret = secret
		callerSetting = "CALLER_CLIENT_SECRET"
		st.CallerSecretName = secretName(values[callerSetting], defaultCallerSecret)
		vaultSecrets[st.CallerSecretName] = secret
		st.SecretValues = append(st.SecretValues, secret)
	}

	// Entra ID (HTTPS). Started first: the identity endpoint signs its
	// federated tokens with it.
	st.Entra, err = entra.Start(st.CA, entra.Options{
		TenantID: st.TenantID,
		Clients:  map[string]entra.Client{st.CallerClientID: daemon},
		API:      entra.API{ClientID: st.APIClientID, AppIDURI: st.APIAppIDURI},
	})
	if err != nil {
		return st, err
	}
	st.closers = append(st.closers, st.Entra.Close)

	// Managed identity endpoint (plain HTTP on loopback, like the
	// platform's): one user-assigned identity, as deployed (DESIGN §7). Its
	// token for api://AzureADTokenExchange is a JWT the Entra stand-in signs
	// (subject: the identity's principal ID); for the vault, an opaque token.
	entraSrv := st.Entra
	st.Identity = identity.New(identity.Options{
		Header:      miHeader,
		ClientIDs:   []string{st.IdentityClientID},
		PrincipalID: st.IdentityPrincipalID,
		Mint: func(r identity.TokenRequest) (string, error) {
			if r.Resource == entra.TokenExchangeAudience {
				return entraSrv.MintFederated(r.PrincipalID, r.ClientID, r.ExpiresOn)
			}
			return identity.RandomToken(), nil
		},
	})
	miURL, err := st.serveHTTP(st.Identity.Handler())
	if err != nil {
		return st, err
	}

	// Key Vault (HTTPS), accepting only tokens the identity endpoint issued for it.
	st.Vault = keyvault.New(keyvault.Options{
		TenantID:     st.TenantID,
		Secrets:      vaultSecrets,
		ContentTypes: vaultTypes,
		Authorize: func(bearer string) bool {
			return st.Identity.Valid(bearer, "https://vault.azure.net")
		},
	})
	vaultURL, err := st.serveHTTPS(st.Vault.Handler())
	if err != nil {
		return st, err
	}
	st.Vault.SetVaultURL(vaultURL)

	// OpenWeatherMap (plain HTTP on loopback), accepting only the vault's key.
	st.Weather = owm.New(owm.Options{APIKey: weatherKey})
	owmURL, err := st.serveHTTP(st.Weather.Handler())
	if err != nil {
		return st, err
	}

	hostAddr, err := resolveAddr(opts.Addr)
	if err != nil {
		return st, err
	}
	overrides := map[string]string{
		"AZURE_TENANT_ID":      st.TenantID,
		"AZURE_AUTHORITY_HOST": st.Entra.URL(),
		"API_CLIENT_ID":        st.APIClientID,
		"API_APP_ID_URI":       st.APIAppIDURI,
		"WEATHER_API_KEY":      reference(vaultURL, weatherName),
		"WEATHER_API_BASE_URL": owmURL,
		// The stand-in has no plan limits; the paid "Startup" plan's rate
		// lets a newcomer try many cities by hand without our own limiter
		// answering 503 after the free plan's burst.
		"WEATHER_RATE_LIMIT": "600",
		"CALLER_CLIENT_ID":   st.CallerClientID,
		"CALLER_CREDENTIAL":  opts.Credential,
		"CALLER_TARGET_URL":  "http://" + hostAddr + "/api/WeatherHttp",
		"AZURE_CLIENT_ID":    st.IdentityClientID,
		"IDENTITY_ENDPOINT":  miURL + "/msi/token",
		"IDENTITY_HEADER":    miHeader,
		"SSL_CERT_FILE":      caFile,
	}
	// Only the credential in use is set: a stray reference to a vault that
	// does not exist here would be a setting nobody reads.
	delete(values, "CALLER_CLIENT_SECRET")
	delete(values, "CALLER_CLIENT_CERTIFICATE")
	if callerSetting != "" {
		overrides[callerSetting] = reference(vaultURL, st.CallerSecretName)
	}
	for k, v := range overrides {
		values[k] = v
	}
	delete(values, "CALLER_SCOPE") // derived from API_APP_ID_URI
	env := make([]string, 0, len(values))
	for k, v := range values {
		env = append(env, k+"="+v)
	}

	st.Host, err = host.Start(ctx, host.Options{
		AppRoot:    appRoot,
		Env:        env,
		Addr:       hostAddr,
		TimerEvery: opts.TimerEvery,
		Stdout:     opts.Stdout,
		Stderr:     opts.Stderr,
		OnTimer:    opts.OnTimer,
		ParentEnv:  opts.ParentEnv,
	})
	if err != nil {
		return st, fmt.Errorf("devstack: functions host: %w", err)
	}
	return st, nil
}

// Close stops the host (and with it the handler), then every stand-in.
func (st *Stack) Close() error {
	var errs []error
	if st.Host != nil {
		errs = append(errs, st.Host.Close())
	}
	for i := len(st.closers) - 1; i >= 0; i-- {
		errs = append(errs, st.closers[i]())
	}
	st.closers = nil
	return errors.Join(errs...)
}

// APIURL is WeatherHttp's address on the stand-in host.
func (st *Stack) APIURL() string { return st.Host.URL() + "/api/WeatherHttp" }

// CurlCommand returns a ready-to-paste curl line that calls the API through
// the host with a fresh token minted by the Entra stand-in for the daemon app.
func (st *Stack) CurlCommand(city string) (string, error) {
	tok, err := st.Entra.Mint(entra.MintOptions{ClientID: st.CallerClientID, Roles: []string{requiredRole}})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("curl -i -H 'Authorization: Bearer %s' '%s?city=%s'", tok, st.APIURL(), city), nil
}

func (st *Stack) serveHTTP(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	st.closers = append(st.closers, srv.Close)
	return "http://" + ln.Addr().String(), nil
}

func (st *Stack) serveHTTPS(h http.Handler) (string, error) {
	srv, u, err := st.CA.Listen("", h)
	if err != nil {
		return "", err
	}
	st.closers = append(st.closers, srv.Close)
	return u, nil
}

// buildHandler compiles cmd/handler into the app folder, statically, as the
// deploy package would hold it.
func buildHandler(ctx context.Context, opts Options, appRoot string) error {
	dst := filepath.Join(appRoot, "handler")
	if opts.Handler != "" {
		b, err := os.ReadFile(opts.Handler)
		if err != nil {
			return fmt.Errorf("devstack: handler binary: %w", err)
		}
		return os.WriteFile(dst, b, 0o755)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dst, "./cmd/handler")
	cmd.Dir = opts.RepoRoot
	// Only CGO_ENABLED is ours: a static binary, as deployed.
	cmd.Env = append(append([]string(nil), opts.BuildEnv...), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("devstack: go build ./cmd/handler: %w\n%s", err, out)
	}
	return nil
}

// copyApp lays out what the host needs, as a deploy package would: host.json
// and every folder that holds a function.json.
func copyApp(repo, appRoot string) error {
	if err := os.MkdirAll(appRoot, 0o755); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(repo, "host.json"), filepath.Join(appRoot, "host.json")); err != nil {
		return err
	}
	entries, err := os.ReadDir(repo)
	if err != nil {
		return err
	}
	for _, e := range entries {
		fj := filepath.Join(repo, e.Name(), "function.json")
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(fj); err != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Join(appRoot, e.Name()), 0o755); err != nil {
			return err
		}
		if err := copyFile(fj, filepath.Join(appRoot, e.Name(), "function.json")); err != nil {
			return err
		}
	}
	_, _, err = funcs.LoadApp(appRoot)
	return err
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// localSettings reads the Values of local.settings.json: the same settings
// `func start` would give the handler.
func localSettings(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	var f struct {
		Values map[string]string `json:"Values"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("devstack: %s: %w", path, err)
	}
	if f.Values == nil {
		f.Values = map[string]string{}
	}
	return f.Values, nil
}

// secretName takes the secret name from a Key Vault reference in
// local.settings.json, so the stand-in vault holds what the real one would.
func secretName(value, def string) string {
	if ref, isRef, err := secrets.ParseReference(value); isRef && err == nil && ref.Name != "" {
		return ref.Name
	}
	return def
}

// reference is a versionless Key Vault reference to the stand-in vault.
func reference(vaultURL, name string) string {
	return "@Microsoft.KeyVault(SecretUri=" + vaultURL + "/secrets/" + name + "/)"
}

func requireLoopback(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("devstack: address %q: %w", addr, err)
	}
	if !netcheck.IsLoopback(h) {
		return fmt.Errorf("devstack: address %q is not a loopback address", addr)
	}
	return nil
}

// resolveAddr turns a ":0" address into a concrete free port, because the
// daemon's CALLER_TARGET_URL must name the host's address before it starts.
func resolveAddr(addr string) (string, error) {
	if !strings.HasSuffix(addr, ":0") {
		return addr, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// newDaemonCertificate makes the daemon's certificate for a run: an RSA-2048
// key and a self-signed certificate valid for a year, and their PEM text as
// Key Vault returns a PEM certificate's secret (key, then certificate).
func newDaemonCertificate() (*x509.Certificate, string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", fmt.Errorf("devstack: certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "weatherfunc devstack daemon"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", fmt.Errorf("devstack: certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", err
	}
	text := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return cert, text, nil
}

// randomSecret makes a fresh value per run: nothing the stack uses is a
// committed secret.
func randomSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
