package pack

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weatherfunc/handler/internal/funcs"
)

// repoRoot is the project this package lives in: its own host.json, function
// folders and .funcignore are what the real package is built from.
const repoRoot = "../.."

// TestC16_DeployZip builds the real deploy package through the same code path
// as `go run ./cmd/package` and checks what the platform needs from it: the
// handler is an ELF x86-64 executable (static, linux/amd64, built with
// CGO_ENABLED=0 and -trimpath) with mode 0755 in the zip's Unix attributes
// (so it holds when the zip is built on Windows or macOS), host.json is at
// the zip root, every function folder's function.json is there, and nothing
// else is — in particular nothing .funcignore excludes.
func TestC16_DeployZip(t *testing.T) {
	if testing.Short() {
		t.Skip("C16 compiles the handler for linux/amd64; skipped with -short")
	}
	out := filepath.Join(t.TempDir(), "app.zip")
	res, err := Build(context.Background(), Options{Root: repoRoot, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != out {
		t.Errorf("Result.Path = %q, want %q", res.Path, out)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()

	_, fns, err := funcs.LoadApp(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"host.json"}
	for _, fn := range fns {
		want = append(want, fn.Name+"/function.json")
	}
	want = append(want, "handler")
	var got []string
	for _, f := range zr.File {
		got = append(got, f.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("zip entries = %q, want exactly %q", got, want)
	}
	if len(fns) < 2 {
		t.Errorf("found %d function folders, want WeatherHttp and CallerTimer at least", len(fns))
	}

	ig := repoIgnore(t)
	for _, f := range zr.File {
		if ig.Excludes(f.Name, false) {
			t.Errorf("zip holds %s, which .funcignore excludes", f.Name)
		}
		if strings.HasSuffix(f.Name, ".go") || strings.Contains(f.Name, "local.settings") || strings.HasPrefix(f.Name, "infra/") {
			t.Errorf("zip holds %s: sources, local settings and infra never ship", f.Name)
		}
	}

	for _, f := range zr.File {
		switch f.Name {
		case "host.json":
			if !bytes.Equal(readEntry(t, f), readFile(t, filepath.Join(repoRoot, "host.json"))) {
				t.Error("host.json in the zip differs from the project's")
			}
		case "handler":
			checkExecutable(t, f)
		}
	}
}

// checkExecutable asserts mode 0755 as a Unix zip entry and a static
// linux/amd64 ELF built the way DESIGN §7 says.
func checkExecutable(t *testing.T, f *zip.File) {
	t.Helper()
	if creator := f.CreatorVersion >> 8; creator != 3 {
		t.Errorf("handler entry made by host %d, want 3 (Unix), or the mode bits are not read", creator)
	}
	if perm := (f.ExternalAttrs >> 16) & 0o777; perm != 0o755 {
		t.Errorf("handler Unix mode = %#o, want 0755", perm)
	}
	if m := f.Mode(); !m.IsRegular() || m.Perm() != 0o755 {
		t.Errorf("handler FileInfo mode = %v, want -rwxr-xr-x", m)
	}
	b := readEntry(t, f)
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("handler is not an ELF file: %v", err)
	}
	defer ef.Close()
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 || ef.Data != elf.ELFDATA2LSB {
		t.Errorf("handler is %v %v %v, want ELFCLASS64 EM_X86_64 ELFDATA2LSB", ef.Class, ef.Machine, ef.Data)
	}
	if ef.Type != elf.ET_EXEC {
		t.Errorf("handler ELF type = %v, want ET_EXEC (a static executable)", ef.Type)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("handler has a %v program header: it is dynamically linked (cgo?)", p.Type)
		}
	}
	bi, err := buildinfo.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("handler carries no Go build info: %v", err)
	}
	if bi.Path != "github.com/weatherfunc/handler/cmd/handler" {
		t.Errorf("handler main package = %q, want github.com/weatherfunc/handler/cmd/handler", bi.Path)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"GOOS": "linux", "GOARCH": "amd64", "GOAMD64": "v1", "CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != v {
			t.Errorf("handler build setting %s = %q, want %q", k, settings[k], v)
		}
	}
}

func TestWriteZipModesAndReproducible(t *testing.T) {
	root := fakeApp(t, "")
	bin := filepath.Join(t.TempDir(), "built")
	if err := os.WriteFile(bin, []byte("\x7fELF not really"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, exe, err := Contents(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"host.json", "Alpha/function.json", "Beta/function.json"}; !slices.Equal(files, want) {
		t.Errorf("Contents files = %q, want %q", files, want)
	}
	if exe != "handler" {
		t.Errorf("Contents executable = %q, want handler", exe)
	}
	var a, b bytes.Buffer
	if _, err := WriteZip(&a, root, files, exe, bin); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteZip(&b, root, files, exe, bin); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two zips of the same inputs differ: the package is not reproducible")
	}
	zr, err := zip.NewReader(bytes.NewReader(a.Bytes()), int64(a.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		want := os.FileMode(0o644)
		if f.Name == "handler" {
			want = 0o755 // whatever the source file's own mode (0600 here)
		}
		if got := f.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", f.Name, got, want)
		}
	}
}

func TestBuildWithPrebuiltExecutable(t *testing.T) {
	root := fakeApp(t, "")
	bin := filepath.Join(t.TempDir(), "handler")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := Build(context.Background(), Options{Root: root, Executable: bin})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "dist", "app.zip"); res.Path != want {
		t.Errorf("Path = %q, want the default %q", res.Path, want)
	}
	if len(res.Entries) != 4 || res.Entries[3] != (Entry{Name: "handler", Mode: 0o755, Size: 6}) {
		t.Errorf("Entries = %+v", res.Entries)
	}
	left, _ := filepath.Glob(filepath.Join(root, "dist", ".app-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

func TestContentsRefuses(t *testing.T) {
	tests := []struct {
		name       string
		funcignore string
		host       string
		wantErr    string
	}{
		{name: "function folder excluded", funcignore: "Beta/\n", wantErr: "excludes Beta/function.json"},
		{name: "executable excluded", funcignore: "handler\n", wantErr: "excludes handler"},
		{name: "host.json excluded", funcignore: "*.json\n", wantErr: "excludes host.json"},
		{name: "no executable path", host: `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":""}}}`, wantErr: "defaultExecutablePath"},
		{name: "executable outside the app", host: `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"../handler"}}}`, wantErr: "defaultExecutablePath"},
		{name: "malformed host.json", host: `{"version":`, wantErr: "host.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeApp(t, tc.funcignore)
			if tc.host != "" {
				writeFile(t, filepath.Join(root, "host.json"), tc.host)
			}
			_, _, err := Contents(root)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Contents error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestIgnoreRepoFile(t *testing.T) {
	ig := repoIgnore(t)
	tests := []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"local.settings.json", false, true},
		{"cmd/handler/main.go", false, true},
		{"internal", true, true},
		{"internal/pack/pack.go", false, true},
		{"infra/main.bicep", false, true},
		{"README.md", false, true},
		{"WeatherHttp/README.md", false, true},
		{"go.mod", false, true},
		{".git/HEAD", false, true},
		{".github/workflows/ci.yml", false, true},
		{"host.json", false, false},
		{"WeatherHttp/function.json", false, false},
		{"handler", false, false},
	}
	for _, tc := range tests {
		if got := ig.Excludes(tc.path, tc.isDir); got != tc.want {
			t.Errorf("repo .funcignore Excludes(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestIgnoreRules(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		path    string
		isDir   bool
		want    bool
	}{
		{"name at any depth", "*.log", "a/b/c.log", false, true},
		{"anchored", "/build", "build", true, true},
		{"anchored not deeper", "/build", "x/build", true, false},
		{"dir only skips files", "out/", "out", false, false},
		{"dir only matches dirs", "out/", "out", true, true},
		{"inside excluded dir", "out/", "out/x/y.txt", false, true},
		{"negation", "*.json\n!host.json", "host.json", false, false},
		{"negation cannot reopen a dir", "cfg/\n!cfg/a.json", "cfg/a.json", false, true},
		{"double star", "a/**/z", "a/b/c/z", false, true},
		{"double star zero segments", "a/**/z", "a/z", false, true},
		{"comment", "# host.json", "host.json", false, false},
		{"escaped hash", `\#x`, "#x", false, true},
		{"question mark", "f?o", "foo", false, true},
		{"class", "[ab].txt", "b.txt", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ig, err := ParseIgnore(strings.NewReader(tc.pattern))
			if err != nil {
				t.Fatal(err)
			}
			if got := ig.Excludes(tc.path, tc.isDir); got != tc.want {
				t.Errorf("%q Excludes(%q, dir=%v) = %v, want %v", tc.pattern, tc.path, tc.isDir, got, tc.want)
			}
		})
	}
	if _, err := ParseIgnore(strings.NewReader("ok\n[unclosed\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("malformed pattern error = %v, want one naming line 2", err)
	}
	var zero Ignore
	if zero.Excludes("anything", false) {
		t.Error("the zero Ignore excludes something")
	}
}

func FuzzIgnore(f *testing.F) {
	f.Add(string(readFile(f, filepath.Join(repoRoot, ".funcignore"))), "cmd/handler/main.go")
	f.Add("a/**/b\n!c\n/d/\n", "a/x/b")
	f.Fuzz(func(t *testing.T, patterns, name string) {
		ig, err := ParseIgnore(strings.NewReader(patterns))
		if err != nil {
			return
		}
		_ = ig.Excludes(name, false)
		_ = ig.Excludes(name, true)
	})
}

// fakeApp writes a minimal valid app (two functions) into a temp dir.
func fakeApp(t *testing.T, funcignore string) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "host.json"), `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"},"enableForwardingHttpRequest":true}}`)
	for _, fn := range []string{"Alpha", "Beta"} {
		if err := os.Mkdir(filepath.Join(root, fn), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, fn, "function.json"), `{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"0 */5 * * * *"}]}`)
	}
	writeFile(t, filepath.Join(root, "local.settings.json"), `{"Values":{}}`)
	if funcignore != "" {
		writeFile(t, filepath.Join(root, ".funcignore"), funcignore)
	}
	return root
}

func repoIgnore(t *testing.T) *Ignore {
	t.Helper()
	ig, err := ParseIgnore(bytes.NewReader(readFile(t, filepath.Join(repoRoot, ".funcignore"))))
	if err != nil {
		t.Fatal(err)
	}
	return ig
}

func writeFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readEntry(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
