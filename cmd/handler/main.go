// Command handler is the Azure Functions custom handler: it serves the
// Entra-protected WeatherHttp API and the CallerTimer daemon. The Functions
// host starts it with FUNCTIONS_CUSTOMHANDLER_PORT and the app settings; see
// DESIGN.md §3 for the settings and §4 for the host protocol.
//
// main only wires: settings are parsed once from the environment, every
// package gets explicit options, and run returns errors instead of printing.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/weatherfunc/handler/internal/auth"
	"github.com/weatherfunc/handler/internal/caller"
	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/secrets"
	"github.com/weatherfunc/handler/internal/tracing"
	"github.com/weatherfunc/handler/internal/weather"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// One line per problem on stderr (the host logs stderr at Error),
		// then a non-zero exit so the host restarts or reports us.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "handler: "+line)
		}
		os.Exit(1)
	}
}

// shutdownGrace is how long in-flight requests may take after SIGTERM.
const shutdownGrace = 10 * time.Second

// run is the whole process: it returns when ctx is cancelled (after a
// graceful shutdown) or when start-up fails.
func run(ctx context.Context, _ []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parseSettings(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(logctx.NewHostHandler(stdout, stderr, slog.LevelInfo))

	// Listen before anything else: the host polls GET / from the moment it
	// starts us and kills us after 30 s (case C13). Slow work (Key Vault,
	// JWKS) happens in the background once we serve.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", s.Port))
	if err != nil {
		return fmt.Errorf("listen on FUNCTIONS_CUSTOMHANDLER_PORT: %w", err)
	}
	defer ln.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h, err := wire(ctx, s, logger)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// In-flight requests must outlive the signal: Shutdown drains them
		// within shutdownGrace, so their contexts do not inherit the
		// cancellation that SIGTERM brings.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("handler listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("handler shutting down")
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// wire builds every part from the settings and only then starts their
// background work (key loading, secret resolution), so a part that refuses
// its options stops start-up before anything touches the network. Nothing
// here blocks on the network.
func wire(ctx context.Context, s settings, logger *slog.Logger) (http.Handler, error) {
	client := tracing.WrapClient(newOutboundClient())

	verifier, err := auth.New(auth.Options{
		TenantID:      s.TenantID,
		AuthorityHost: s.AuthorityHost,
		ClientID:      s.APIClientID,
		AppIDURI:      s.APIAppIDURI,
		RequiredRole:  s.RequiredRole,
		RequiredScope: s.RequiredScope,
		HTTPClient:    client,
		Logger:        logger.With("dependency", "entra", "settings", "AZURE_AUTHORITY_HOST, AZURE_TENANT_ID"),
	})
	if err != nil {
		return nil, fmt.Errorf("settings AZURE_TENANT_ID, AZURE_AUTHORITY_HOST, API_*: %w", err)
	}

	var resolver *secrets.Resolver
	if s.WeatherKey.Ref != nil || s.CallerSecret.Ref != nil || s.CallerCertificate.Ref != nil {
		cred, err := secrets.NewCredential(secrets.CredentialOptions{
			ManagedIdentity: s.ManagedIdentity,
			ClientID:        s.AzureClientID,
			HTTPClient:      client,
		})
		if err != nil {
			return nil, fmt.Errorf("settings IDENTITY_ENDPOINT, AZURE_CLIENT_ID: key vault credential: %w", err)
		}
		if resolver, err = secrets.NewResolver(secrets.ResolverOptions{
			Credential: cred,
			HTTPClient: client,
			Logger:     logger.With("dependency", "keyvault"),
		}); err != nil {
			return nil, fmt.Errorf("key vault: %w", err)
		}
	}
	var watchers []*secrets.Watcher
	// cell is ready at once for a plain value (the platform resolved the
	// reference, and re-resolves it itself); for a reference it is filled in
	// the background by a Watcher, which also re-reads a versionless reference
	// every KEYVAULT_REFRESH_INTERVAL (C18: the literal reference is never
	// used as the secret). watcher is nil for a plain value.
	cell := func(set secretSetting) (*secrets.Cell, *secrets.Watcher) {
		if set.Ref == nil {
			return secrets.Ready(set.Value), nil
		}
		c := secrets.NewCell()
		w := resolver.Watch(set.Name, *set.Ref, c, s.RefreshInterval)
		watchers = append(watchers, w)
		return c, w
	}
	weatherKey, weatherWatch := cell(s.WeatherKey)
	// OpenWeatherMap answering 401 means the key was rotated (or revoked):
	// the watcher reads the reference again at once, through the same code
	// path as its schedule, so a rotated key heals without a restart. weather
	// calls this at most once a minute.
	var rereadWeatherKey func()
	if weatherWatch != nil {
		rereadWeatherKey = weatherWatch.Refresh
	}

	svc, err := weather.New(weather.Options{
		BaseURL:               s.WeatherBaseURL,
		APIKey:                weatherKey,
		HTTPClient:            client,
		CacheTTL:              s.CacheTTL,
		RatePerMinute:         s.RatePerMinute,
		OnCredentialsRejected: rereadWeatherKey,
		UpstreamTimeout:       s.weatherUpstreamTimeout,
		Logger:                logger.With("dependency", "openweathermap", "settings", "WEATHER_API_BASE_URL, WEATHER_API_KEY"),
	})
	if err != nil {
		return nil, fmt.Errorf("settings WEATHER_*: %w", err)
	}

	mo := caller.MSALOptions{
		AuthorityHost: s.AuthorityHost,
		TenantID:      s.TenantID,
		ClientID:      s.CallerClientID,
		Scope:         s.CallerScope,
		HTTPClient:    client,
	}
	switch s.CallerCredential {
	case caller.CredentialSecret:
		mo.ClientSecret, _ = cell(s.CallerSecret)
	case caller.CredentialCertificate:
		mo.Certificate, _ = cell(s.CallerCertificate)
	case caller.CredentialManagedIdentity:
		if mo.ManagedIdentity, err = caller.NewManagedIdentityCredential(s.AzureClientID, client); err != nil {
			return nil, fmt.Errorf("settings CALLER_CREDENTIAL, AZURE_CLIENT_ID: %w", err)
		}
	}
	tokens, err := caller.NewMSALTokenSource(mo)
	if err != nil {
		return nil, fmt.Errorf("settings CALLER_*: %w", err)
	}
	daemon, err := caller.New(caller.Options{
		TargetURL:  s.CallerTargetURL,
		Cities:     s.CallerCities,
		Tokens:     tokens,
		HTTPClient: client,
		Logger:     logger,
	})
	if err != nil {
		return nil, fmt.Errorf("settings CALLER_*: %w", err)
	}

	// Everything is built: start the background work.
	verifier.Start(ctx)
	for _, w := range watchers {
		go func() { _ = w.Run(ctx) }()
	}
	logger.Info("handler wired", "caller_credential", s.CallerCredential, "keyvault_references", len(watchers),
		"keyvault_refresh_interval", s.RefreshInterval.String())
	return routes(logger, verifier, svc, daemon, s.CallerDeadline), nil
}

// newOutboundClient is the one client for every dependency: connection
// reuse, and no upstream call may take longer than 10 s (DESIGN §9). It
// trusts the system roots, which honour SSL_CERT_FILE (how the offline
// stack's local CA is trusted: no TLS check is ever switched off).
//
// It never follows redirects. Go keeps the Authorization header on a redirect
// to the same host name, even to another port or to plain http, so a 3xx from
// the API (or any dependency) could carry the daemon's token elsewhere. None
// of our dependencies redirects; a 3xx is answered as such and treated as a
// failure by its caller.
func newOutboundClient() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
