package infra

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeployScript: bash syntax, strict mode, and each step of the deploy
// path in order: deployment (with a what-if option), package, zip upload
// with 403 retries, Key Vault reference refresh.
func TestDeployScript(t *testing.T) {
	s := readText(t, "deploy.sh")
	if bash, err := exec.LookPath("bash"); err == nil {
		if out, err := exec.Command(bash, "-n", "deploy.sh").CombinedOutput(); err != nil {
			t.Errorf("bash -n deploy.sh: %v\n%s", err, out)
		}
	}
	if fi, err := os.Stat("deploy.sh"); err == nil && fi.Mode().Perm()&0o100 == 0 {
		t.Error("deploy.sh is not executable")
	}
	if !strings.HasPrefix(s, "#!/usr/bin/env bash\n") || !regexp.MustCompile(`(?m)^set -euo pipefail$`).MatchString(s) {
		t.Error("deploy.sh must be bash with set -euo pipefail")
	}
	steps := []string{
		"az deployment sub what-if",
		"az deployment sub create",
		"go run ./cmd/package",
		"az functionapp deployment source config-zip",
		"/config/configreferences/appsettings/refresh",
	}
	at := 0
	for _, step := range steps {
		i := strings.Index(s[at:], step)
		if i < 0 {
			t.Errorf("deploy.sh does not run %q (after the previous step)", step)
			continue
		}
		at += i
	}
	if !strings.Contains(s, "403") || !strings.Contains(s, "sleep") {
		t.Error("deploy.sh does not retry the upload on 403 while role assignments propagate")
	}
	if regexp.MustCompile(`weatherApiKey=`).MatchString(s) {
		t.Error("deploy.sh passes the key on the command line (visible in the process list)")
	}
}

func TestAzureYAML(t *testing.T) {
	s := readText(t, "../azure.yaml")
	for _, want := range []string{
		"path: infra", "module: main", "host: function", "language: custom", "dist: dist/app.zip",
		"prepackage:", "run: go run ./cmd/package -o dist/app.zip",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("azure.yaml lacks %q", want)
		}
	}
	// The service azd deploys to is found by this tag on the site.
	if !strings.Contains(readText(t, "modules/functionapp.bicep"), "'azd-service-name': 'api'") {
		t.Error("the site is not tagged azd-service-name: api")
	}
}

func TestWorkflow(t *testing.T) {
	s := readText(t, "../.github/workflows/ci.yml")
	for _, want := range []string{
		"push:", "run: go test -race ./...", "npm ci --prefix infra/check",
		"id-token: write", "uses: azure/login@", "client-id: ${{ vars.AZURE_CLIENT_ID }}", "infra/deploy.sh",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("ci.yml lacks %q", want)
		}
	}
	if strings.Contains(s, "secrets.") {
		t.Error("ci.yml uses a stored secret; the deploy logs in through OIDC federation only")
	}
}
