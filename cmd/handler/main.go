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
		BaseContext:       func(net.Listener) context.Context { return ctx },
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

// wire builds every part from the settings and starts their background work
// (key loading, secret resolution). Nothing here blocks on the network.
func wire(ctx context.Context, s settings, logger *slog.Logger) (http.Handler, error) {
	// One outbound client for every dependency: connection reuse, and no
	// upstream call may take longer than 10 s (DESIGN §9). It trusts the
	// system roots, which honour SSL_CERT_FILE (how the offline stack's local
	// CA is trusted: no TLS check is ever switched off).
	client := &http.Client{Timeout: 10 * time.Second}

	verifier, err := auth.New(auth.Options{
		TenantID:      s.TenantID,
		AuthorityHost: s.AuthorityHost,
		ClientID:      s.APIClientID,
		AppIDURI:      s.APIAppIDURI,
		RequiredRole:  s.RequiredRole,
		RequiredScope: s.RequiredScope,
		HTTPClient:    client,
		Logger:        logger.With("dependency", "entra"),
	})
	if err != nil {
		return nil, fmt.Errorf("token validation: %w", err)
	}
	verifier.Start(ctx)

	resolve, err := secretResolver(s, client, logger)
	if err != nil {
		return nil, err
	}
	weatherKey := resolve(ctx, s.WeatherKey)
	callerSecret := resolve(ctx, s.CallerSecret)

	svc, err := weather.New(weather.Options{
		BaseURL:    s.WeatherBaseURL,
		APIKey:     weatherKey,
		HTTPClient: client,
		CacheTTL:   s.CacheTTL,
		Logger:     logger.With("dependency", "openweathermap"),
	})
	if err != nil {
		return nil, fmt.Errorf("weather: %w", err)
	}

	tokens, err := caller.NewMSALTokenSource(caller.MSALOptions{
		AuthorityHost: s.AuthorityHost,
		TenantID:      s.TenantID,
		ClientID:      s.CallerClientID,
		Scope:         s.CallerScope,
		ClientSecret:  callerSecret,
		HTTPClient:    client,
	})
	if err != nil {
		return nil, fmt.Errorf("caller token source: %w", err)
	}
	daemon, err := caller.New(caller.Options{
		TargetURL:  s.CallerTargetURL,
		Cities:     s.CallerCities,
		Tokens:     tokens,
		HTTPClient: client,
		Logger:     logger,
	})
	if err != nil {
		return nil, fmt.Errorf("caller: %w", err)
	}
	return routes(logger, verifier, svc, daemon, s.CallerDeadline), nil
}

// secretResolver returns a function that turns a secret setting into a Cell:
// ready at once for a plain value, filled in the background from Key Vault for
// a reference. The Key Vault client and credential are built only when some
// setting is a reference.
func secretResolver(s settings, client *http.Client, logger *slog.Logger) (func(context.Context, secretSetting) *secrets.Cell, error) {
	var resolver *secrets.Resolver
	if s.WeatherKey.Ref != nil || s.CallerSecret.Ref != nil {
		cred, err := secrets.NewCredential(secrets.CredentialOptions{
			ManagedIdentity: s.ManagedIdentity,
			ClientID:        s.AzureClientID,
			HTTPClient:      client,
		})
		if err != nil {
			return nil, fmt.Errorf("key vault credential: %w", err)
		}
		resolver, err = secrets.NewResolver(secrets.ResolverOptions{
			Credential: cred,
			HTTPClient: client,
			Logger:     logger.With("dependency", "keyvault"),
		})
		if err != nil {
			return nil, fmt.Errorf("key vault: %w", err)
		}
	}
	return func(ctx context.Context, set secretSetting) *secrets.Cell {
		if set.Ref == nil {
			return secrets.Ready(set.Value)
		}
		cell := secrets.NewCell()
		go func() { _ = resolver.Keep(ctx, set.Name, *set.Ref, cell) }()
		return cell
	}, nil
}
