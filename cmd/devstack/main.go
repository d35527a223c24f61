// Command devstack runs the whole system offline (DESIGN §6): it builds
// handler, starts stand-ins for Entra ID, the managed-identity endpoint, Key
// Vault and OpenWeatherMap, and runs handler under a stand-in Functions host on
// http://127.0.0.1:7071, firing CallerTimer and printing what the daemon got.
// Ctrl-C stops everything.
//
//	go run ./cmd/devstack                       # CallerTimer every 15 s (demo pace)
//	go run ./cmd/devstack -every 0              # CallerTimer on its function.json schedule
//	go run ./cmd/devstack -credential secret    # the daemon with a client secret (or: certificate)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/weatherfunc/handler/internal/devstack"
	"github.com/weatherfunc/handler/internal/devstack/host"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, syscall.EADDRINUSE):
		fmt.Fprintf(os.Stderr, "%v\n(is another devstack or func start running? pick another port with -addr 127.0.0.1:7072)\n", err)
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7071", "where the stand-in Functions host listens (loopback only)")
	every := fs.Duration("every", 15*time.Second, "fire CallerTimer this often; 0 = on its function.json schedule")
	repo := fs.String("repo", ".", "the project folder (host.json, function folders, local.settings.json)")
	credential := fs.String("credential", devstack.CredentialManagedIdentity,
		"how the daemon authenticates: managed-identity (federated, no secret), certificate or secret")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *credential {
	case devstack.CredentialManagedIdentity, devstack.CredentialCertificate, devstack.CredentialSecret:
	default:
		return errors.New("devstack: -credential must be managed-identity, certificate or secret")
	}
	if *every < 0 {
		return errors.New("devstack: -every must be 0 (the schedule) or a positive duration")
	}

	fmt.Fprintln(stdout, "devstack: building handler and starting the stand-ins…")
	st, err := devstack.Start(ctx, devstack.Options{
		RepoRoot:   *repo,
		Addr:       *addr,
		TimerEvery: *every,
		Stdout:     stdout,
		Stderr:     stderr,
		OnTimer:    func(r host.TimerResult) { printTick(stdout, r) },
		ParentEnv:  os.Getenv,
		BuildEnv:   os.Environ(),
		Credential: *credential,
	})
	if err != nil {
		return err
	}
	defer st.Close()

	curl, err := st.CurlCommand("London")
	if err != nil {
		return err
	}
	schedule := "on its function.json schedule (UTC)"
	if *every > 0 {
		schedule = "every " + every.String() + ", the first tick " + every.String() + " from now (-every 0: the schedule)"
	}
	fmt.Fprintf(stdout, `
devstack: ready.
  Functions host   %s   (WeatherHttp at %s)
  Entra ID         %s   (tenant %s)
  CallerTimer      fires %s
  daemon signs in  with %s
Call the API by hand with a fresh token (valid for one hour):

  %s

Without the Authorization header you get 401; Ctrl-C stops everything.

`, st.Host.URL(), st.APIURL(), st.Entra.URL(), st.TenantID, schedule, credentialText(st), curl)

	<-ctx.Done()
	fmt.Fprintln(stdout, "devstack: stopping…")
	return nil
}

// credentialText says how the daemon authenticates in this run.
func credentialText(st *devstack.Stack) string {
	switch st.Credential {
	case devstack.CredentialCertificate:
		return "a certificate (its PEM in the vault as " + st.CallerSecretName + ", registered on the daemon app)"
	case devstack.CredentialSecret:
		return "a client secret (in the vault as " + st.CallerSecretName + ")"
	}
	return "its managed identity (federated credential: no secret; -credential certificate|secret for the others)"
}

func printTick(w io.Writer, r host.TimerResult) {
	outcome := "Succeeded"
	if r.Failed {
		outcome = "Failed: " + r.Reason
	}
	fmt.Fprintf(w, "devstack: %s tick %s (%s, %d ms)\n", r.Function, r.InvocationID, outcome, r.Duration.Milliseconds())
	for _, l := range r.Logs {
		fmt.Fprintln(w, "  "+strings.TrimSpace(l))
	}
}
