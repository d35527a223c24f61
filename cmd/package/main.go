// Command package builds the deploy package of the function app:
// dist/app.zip with host.json at its root, every function folder's
// function.json and the handler compiled for linux/amd64 (CGO_ENABLED=0,
// -trimpath) with mode 0755. Run it from the repository root:
//
//	go run ./cmd/package            # writes dist/app.zip
//	go run ./cmd/package -o out.zip
//
// infra/deploy.sh and azd's prepackage hook (azure.yaml) run it; the zip is
// what `az functionapp deployment source config-zip` uploads.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/weatherfunc/handler/internal/pack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Environ(), os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

// run parses the flags, builds the package and prints what it holds.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("package", flag.ContinueOnError)
	fset.SetOutput(stderr)
	root := fset.String("root", ".", "the project folder (go.mod, host.json, function folders, .funcignore)")
	out := fset.String("o", pack.DefaultOutput, "the zip to write (relative paths are relative to -root)")
	if len(args) == 0 {
		args = []string{"package"}
	}
	if err := fset.Parse(args[1:]); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		fset.Usage()
		return fmt.Errorf("unexpected arguments: %q", fset.Args())
	}
	res, err := pack.Build(ctx, pack.Options{
		Root:   *root,
		Output: *out,
		Env:    environ,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.Path)
	for _, e := range res.Entries {
		fmt.Fprintf(stdout, "  %v %9d %s\n", e.Mode, e.Size, e.Name)
	}
	return nil
}
