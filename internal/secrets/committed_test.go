package secrets

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// committedAllowList names the committed files that may hold secret-shaped
// content, each with the reason. Every entry must exist (a stale entry fails
// the test) and must be test data.
var committedAllowList = map[string]string{
	"internal/auth/testdata/real-v2-app-only-2024.jwt": "a genuine Entra v2 access token from a public test file (expired 2024-07-18, " +
		"no roles, no personal data): the auth tests verify a real token with it",
	"internal/caller/testdata/azidentity-v1.15.0_certificate.pfx": "azidentity v1.15.0's own public test PFX (a throwaway key): " +
		"the certificate credential's PKCS#12 path is tested with it",
	"internal/caller/testdata/azidentity-v1.15.0_certificate_encrypted_key.pfx": "azidentity v1.15.0's own public password-protected " +
		"test PFX: the refusal of a PFX with a password is tested with it",
}

// The secret shapes looked for in every committed file.
var secretShapes = []struct {
	name string
	re   *regexp.Regexp
	// settingsOnly applies the shape to settings files only (long blobs are
	// normal in code and recordings, not in settings).
	settingsOnly bool
}{
	// A real PEM private key: the header followed by key material (a stub
	// like "MIIB" in a parser test is not one).
	{name: "PEM private key", re: regexp.MustCompile(`-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----\s*(?:[A-Za-z0-9+/=]+\s*){2,}`)},
	{name: "client secret in a form body", re: regexp.MustCompile(`client_secret=[A-Za-z0-9~._%-]{12,}`)},
	{name: "client secret in JSON", re: regexp.MustCompile(`(?i)"client_?secret"\s*:\s*"[^"<$@]{12,}"`)},
	{name: "storage account key", re: regexp.MustCompile(`AccountKey=[A-Za-z0-9+/]{20,}`)},
	{name: "shared access signature", re: regexp.MustCompile(`[?&]sig=[A-Za-z0-9%+/]{20,}`)},
	{name: "JWT", re: regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`)},
	{name: "long base64 blob in a settings file", re: regexp.MustCompile(`[A-Za-z0-9+/]{40,}={0,2}`), settingsOnly: true},
	{name: "long hex blob in a settings file", re: regexp.MustCompile(`\b[0-9a-fA-F]{32,}\b`), settingsOnly: true},
}

// pemKeyWithBody tells a PEM key block with real material from a stub: at
// least 64 base64 characters after the header.
var pemKeyWithBody = regexp.MustCompile(`-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----\s*[A-Za-z0-9+/=\s]{64,}`)

// isSettingsFile reports whether a path is app settings or deployment
// parameters, where no value may look like a key.
func isSettingsFile(p string) bool {
	base := path.Base(p)
	switch {
	case base == "local.settings.json", base == "host.json", base == "function.json",
		strings.HasSuffix(base, ".bicepparam"), strings.HasSuffix(base, ".parameters.json"),
		base == ".env", strings.HasPrefix(base, ".env."):
		return true
	}
	return false
}

// repoRoot walks up from the test's directory to the folder with go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// committedFiles lists what git tracks, plus new files it would track (not
// ignored), so a secret is caught before its commit. Without git it walks
// the tree (skipping .git), which can only list more.
func committedFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err == nil {
		var files []string
		for _, f := range bytes.Split(out, []byte{0}) {
			if len(f) > 0 {
				files = append(files, string(f))
			}
		}
		return files
	}
	t.Logf("git ls-files: %v; walking the tree instead", err)
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestNoSecretInCommittedFiles scans every committed file for secret-shaped
// values: PEM private keys, client secrets, storage keys, SAS signatures,
// JWTs, PKCS#12 files, and long base64 or hex blobs in settings files. Only
// the test data in committedAllowList may hold such content.
func TestNoSecretInCommittedFiles(t *testing.T) {
	root := repoRoot(t)
	files := committedFiles(t, root)
	if len(files) < 20 {
		t.Fatalf("only %d files listed; the scan would prove nothing", len(files))
	}
	seen := map[string]bool{}
	for _, f := range files {
		seen[f] = true
		if reason, ok := committedAllowList[f]; ok {
			if !strings.Contains(f, "/testdata/") || reason == "" {
				t.Errorf("allow-listed %s must be test data with a reason", f)
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if ext := strings.ToLower(path.Ext(f)); ext == ".pfx" || ext == ".p12" {
			t.Errorf("%s: a PKCS#12 key file", f)
			continue
		}
		if bytes.IndexByte(b, 0) >= 0 {
			continue // other binary files: nothing text-shaped to find
		}
		for _, s := range secretShapes {
			if s.settingsOnly && !isSettingsFile(f) {
				continue
			}
			loc := s.re.FindIndex(b)
			if loc == nil {
				continue
			}
			if s.name == "PEM private key" && !pemKeyWithBody.Match(b) {
				continue
			}
			// Name the place, never print the match itself.
			line := bytes.Count(b[:loc[0]], []byte("\n")) + 1
			t.Errorf("%s:%d: %s (move it to Key Vault, or to testdata with a reason in committedAllowList)", f, line, s.name)
		}
	}
	for f := range committedAllowList {
		if !seen[f] {
			t.Errorf("allow-list entry %s is not a committed file: remove it", f)
		}
	}
}

// The scanner finds what it is meant to find (and not what it is not).
func TestSecretShapes(t *testing.T) {
	hits := func(content, file string) []string {
		var names []string
		for _, s := range secretShapes {
			if s.settingsOnly && !isSettingsFile(file) {
				continue
			}
			if s.re.MatchString(content) && (s.name != "PEM private key" || pemKeyWithBody.MatchString(content)) {
				names = append(names, s.name)
			}
		}
		return names
	}
	// The samples are assembled at run time, so that this file does not hold
	// the shapes it tests for.
	key := "-----BEGIN RSA " + "PRIVATE KEY-----\n" + strings.Repeat("MIIEowIBAAKCAQEAx1b2c3d4e5f6g7h8i9j0\n", 4) + "-----END RSA PRIVATE KEY-----"
	cs, ak, jwtHead := "client_"+"secret=", "Account"+"Key=", "eyJ"
	tests := []struct {
		name, content, file string
		want                bool
	}{
		{"PEM key", key, "cmd/x/main.go", true},
		{"PEM stub", "-----BEGIN " + "PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", "cmd/x/main_test.go", false},
		{"client secret form", "grant_type=client_credentials&" + cs + "Zx8Q~abcdefghij.klmnop", "x.txt", true},
		{"short test secret", "client_secret=guess", "x_test.go", false},
		{"client secret JSON", `{"client` + `Secret": "Zx8Q~abcdefghij.klmnop"}`, "a.json", true},
		{"reference in JSON", `{"client_secret": "@Microsoft.KeyVault(VaultName=v;SecretName=s)"}`, "a.json", false},
		{"storage key", "DefaultEndpointsProtocol=https;AccountName=a;" + ak + strings.Repeat("Eby8vdM02xNOcqFl", 4), "x.txt", true},
		{"JWT", jwtHead + "hbGciOiJSUzI1NiJ9." + jwtHead + "zdWIiOiJhYmNkZWZnaCJ9.c2lnbmF0dXJlLXZhbHVl", "x.md", true},
		{"base64 in settings", `{"Values":{"WEATHER_API_KEY":"c2VjcmV0LXZhbHVlLXRoYXQtaXMtbG9uZy1lbm91Z2g="}}`, "local.settings.json", true},
		{"hex key in settings", `{"Values":{"WEATHER_API_KEY":"0123456789abcdef0123456789abcdef"}}`, "local.settings.json", true},
		{"reference in settings", `{"Values":{"WEATHER_API_KEY":"@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/weather-api-key/)"}}`, "local.settings.json", false},
		{"GUID in settings", `{"Values":{"AZURE_TENANT_ID":"72f988bf-86f1-41af-91ab-2d7cd011db47"}}`, "local.settings.json", false},
		{"hex in code", `const version = "0123456789abcdef0123456789abcdef"`, "x.go", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hits(tt.content, tt.file); (len(got) > 0) != tt.want {
				t.Errorf("hits %v, want found=%v", got, tt.want)
			}
		})
	}
}
