package pack

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/weatherfunc/handler/internal/funcs"
)

// Defaults for Options.
const (
	DefaultOutput              = "dist/app.zip"  // relative to Root
	DefaultMain                = "./cmd/handler" // the handler's main package, relative to Root
	DefaultGo                  = "go"            // the go command, looked up in PATH
	ExecutableMode fs.FileMode = 0o755           // the mode the handler's zip entry carries
)

// Target platform of the deploy package: Flex Consumption runs Linux on
// x86-64. GOAMD64=v1 keeps the binary runnable on every x86-64 host, whatever
// the building machine's environment asks for.
var targetEnv = []string{"GOOS=linux", "GOARCH=amd64", "GOAMD64=v1", "CGO_ENABLED=0", "GOFLAGS="}

// modTime is the modification time written for every entry, so that the
// same inputs give the same zip (the DOS epoch: the earliest a zip can say).
var modTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Options configures Build. The zero value builds ./cmd/handler in the
// current directory into dist/app.zip.
type Options struct {
	// Root is the project folder: go.mod, host.json, the function folders
	// and .funcignore. Default ".".
	Root string
	// Output is where the zip is written; relative paths are relative to
	// Root. Default DefaultOutput. Its folder is created when missing.
	Output string
	// Main is the handler's main package as go build names it, relative to
	// Root. Default DefaultMain.
	Main string
	// Go is the go command. Default DefaultGo.
	Go string
	// Env is the base environment of go build; nil means this process's
	// environment. The target platform's variables are always set on top.
	Env []string
	// Executable, when set, is an already-built handler binary to package
	// instead of building one (it is packaged as is: nothing checks its
	// platform).
	Executable string
	// Logger receives one line per step; nil discards.
	Logger *slog.Logger
}

// Entry is one file in the deploy package.
type Entry struct {
	Name string      // slash-separated path inside the zip
	Mode fs.FileMode // permission bits recorded in the zip
	Size int64       // uncompressed size in bytes
}

// Result says what Build wrote.
type Result struct {
	Path    string  // the zip file
	Entries []Entry // in zip order
}

// Build validates the app (host.json and every function.json), compiles the
// handler for linux/amd64 (unless Options.Executable is set) and writes the
// zip atomically: a failed build never leaves a half-written package behind.
func Build(ctx context.Context, o Options) (Result, error) {
	o = o.withDefaults()
	log := o.Logger

	files, exe, err := Contents(o.Root)
	if err != nil {
		return Result{}, err
	}

	binary := o.Executable
	if binary == "" {
		tmp, err := os.MkdirTemp("", "weatherfunc-pack-")
		if err != nil {
			return Result{}, fmt.Errorf("pack: %w", err)
		}
		defer os.RemoveAll(tmp)
		binary = filepath.Join(tmp, "handler")
		log.Info("building handler", "main", o.Main, "target", "linux/amd64")
		if err := goBuild(ctx, o, binary); err != nil {
			return Result{}, err
		}
	}

	out := o.Output
	if !filepath.IsAbs(out) {
		out = filepath.Join(o.Root, out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return Result{}, fmt.Errorf("pack: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".app-*.zip")
	if err != nil {
		return Result{}, fmt.Errorf("pack: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	entries, err := WriteZip(f, o.Root, files, exe, binary)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("pack: %w", cerr)
	}
	if err != nil {
		return Result{}, err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return Result{}, fmt.Errorf("pack: %w", err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return Result{}, fmt.Errorf("pack: %w", err)
	}
	log.Info("wrote deploy package", "path", out, "entries", len(entries))
	return Result{Path: out, Entries: entries}, nil
}

func (o Options) withDefaults() Options {
	if o.Root == "" {
		o.Root = "."
	}
	if o.Output == "" {
		o.Output = DefaultOutput
	}
	if o.Main == "" {
		o.Main = DefaultMain
	}
	if o.Go == "" {
		o.Go = DefaultGo
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// goBuild compiles the handler statically for the target platform.
func goBuild(ctx context.Context, o Options, dst string) error {
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-ldflags=-s -w", "-o", dst, o.Main)
	cmd.Dir = o.Root
	if o.Env != nil {
		cmd.Env = o.Env
	}
	// Later entries win in os/exec, so the target always overrides.
	cmd.Env = append(cmd.Environ(), targetEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pack: go build %s for linux/amd64: %w\n%s", o.Main, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Contents lists the files of root that belong in the deploy package:
// host.json and each function folder's function.json (slash-separated, in
// zip order), and the executable's name as host.json's
// customHandler.description.defaultExecutablePath gives it. It loads the app
// with funcs.LoadApp, so a malformed host.json or function.json fails here,
// and it refuses an allow-listed file that .funcignore excludes.
func Contents(root string) (files []string, executable string, err error) {
	cfg, fns, err := funcs.LoadApp(root)
	if err != nil {
		return nil, "", fmt.Errorf("pack: %w", err)
	}
	if len(fns) == 0 {
		return nil, "", errors.New("pack: no function folders (a direct subfolder with function.json) under the app root")
	}
	executable = path.Clean(filepath.ToSlash(cfg.CustomHandler.DefaultExecutablePath))
	if cfg.CustomHandler.DefaultExecutablePath == "" || path.IsAbs(executable) || strings.HasPrefix(executable, "../") || executable == ".." {
		return nil, "", errors.New("pack: host.json customHandler.description.defaultExecutablePath must name a file inside the app (for example \"handler\")")
	}
	ig, err := loadIgnore(root)
	if err != nil {
		return nil, "", err
	}
	files = []string{"host.json"}
	for _, fn := range fns {
		files = append(files, fn.Name+"/function.json")
	}
	var refused []error
	for _, name := range append(append([]string(nil), files...), executable) {
		if ig.Excludes(name, false) {
			refused = append(refused, fmt.Errorf("pack: .funcignore excludes %s, which the app needs", name))
		}
	}
	if err := errors.Join(refused...); err != nil {
		return nil, "", err
	}
	return files, executable, nil
}

func loadIgnore(root string) (*Ignore, error) {
	f, err := os.Open(filepath.Join(root, ".funcignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return &Ignore{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	defer f.Close()
	return ParseIgnore(f)
}

// WriteZip writes the deploy package to w: each of files (slash-separated,
// relative to root) with mode 0644, then the file at binary under the name
// executable with mode 0755. Modes are set in the entries' Unix external
// attributes, so they hold whatever the building OS; every entry carries the
// same fixed time, so equal inputs give equal bytes.
func WriteZip(w io.Writer, root string, files []string, executable, binary string) ([]Entry, error) {
	zw := zip.NewWriter(w)
	var entries []Entry
	add := func(name, src string, mode fs.FileMode) error {
		in, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("pack: %w", err)
		}
		defer in.Close()
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modTime}
		hdr.SetMode(mode)
		dst, err := zw.CreateHeader(hdr)
		if err != nil {
			return fmt.Errorf("pack: zip %s: %w", name, err)
		}
		n, err := io.Copy(dst, in)
		if err != nil {
			return fmt.Errorf("pack: zip %s: %w", name, err)
		}
		entries = append(entries, Entry{Name: name, Mode: mode, Size: n})
		return nil
	}
	for _, name := range files {
		if err := add(name, filepath.Join(root, filepath.FromSlash(name)), 0o644); err != nil {
			return nil, err
		}
	}
	if err := add(executable, binary, ExecutableMode); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("pack: zip: %w", err)
	}
	return entries, nil
}
