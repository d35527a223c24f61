package infra

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// handlerDir is the handler's main package: the only code that reads
// settings (DESIGN section 2).
const handlerDir = "../cmd/handler"

// handlerSettings are the settings cmd/handler reads, found in its source.
type handlerSettings struct {
	read   map[string]bool // every setting name read
	secret map[string]bool // those read as secrets (Key Vault references)
}

// scanHandlerSettings finds every setting name cmd/handler's non-test files
// read, with go/ast: the first string-literal argument of a call to getenv
// (a parameter, a field or os.Getenv/os.LookupEnv) or of any method of a type
// that holds a getenv field (the settings parser: p.str, p.guid, p.secret …).
// Names read through a method whose name says secret or certificate, or
// whose own name says so, are secret-bearing.
func scanHandlerSettings(t *testing.T) handlerSettings {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(handlerDir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// Types with a getenv field, and their methods.
	readers := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			if st, ok := ts.Type.(*ast.StructType); ok {
				for _, fld := range st.Fields.List {
					for _, name := range fld.Names {
						if name.Name == "getenv" {
							readers[ts.Name.Name] = true
						}
					}
				}
			}
			return true
		})
	}
	methods := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) == 0 {
				continue
			}
			rt := fd.Recv.List[0].Type
			if star, ok := rt.(*ast.StarExpr); ok {
				rt = star.X
			}
			if id, ok := rt.(*ast.Ident); ok && readers[id.Name] {
				methods[fd.Name.Name] = true
			}
		}
	}
	hs := handlerSettings{read: map[string]bool{}, secret: map[string]bool{}}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			name, err := strconv.Unquote(lit.Value)
			if err != nil || !settingName.MatchString(name) {
				return true
			}
			var callee string
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				if fn.Name != "getenv" {
					return true
				}
				callee = fn.Name
			case *ast.SelectorExpr:
				x, _ := fn.X.(*ast.Ident)
				switch {
				case fn.Sel.Name == "getenv":
				case x != nil && x.Name == "os" && (fn.Sel.Name == "Getenv" || fn.Sel.Name == "LookupEnv"):
				case methods[fn.Sel.Name]:
				default:
					return true
				}
				callee = fn.Sel.Name
			default:
				return true
			}
			hs.read[name] = true
			lc := strings.ToLower(callee)
			if strings.Contains(lc, "secret") || strings.Contains(lc, "cert") || secretName.MatchString(name) {
				hs.secret[name] = true
			}
			return true
		})
	}
	return hs
}

var (
	settingName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	// secretName: a name that says it holds a secret, whatever reads it.
	secretName = regexp.MustCompile(`(SECRET|_KEY$|CERTIFICATE|PASSWORD)`)
)

// platformSet: read by the handler, set by the Functions host or App
// Service itself, so neither main.bicep nor local.settings.json sets them.
var platformSet = map[string]string{
	"FUNCTIONS_CUSTOMHANDLER_PORT": "the host picks the port and passes it to the handler",
	"FUNCTIONS_APP_ROOT_PATH":      "the host sets it to the app's folder",
	"IDENTITY_ENDPOINT":            "App Service sets it when the app has a managed identity",
	"IDENTITY_HEADER":              "App Service sets it with IDENTITY_ENDPOINT",
	"WEBSITE_HOSTNAME":             "App Service sets it to the app's default host name",
}

// bicepLeaves: read by the handler and deliberately not set in Azure.
var bicepLeaves = map[string]string{
	"CALLER_CLIENT_SECRET":      "CALLER_CREDENTIAL=managed-identity in Azure: the daemon has no secret",
	"CALLER_CLIENT_CERTIFICATE": "CALLER_CREDENTIAL=managed-identity in Azure: the daemon has no certificate",
	"CALLER_TARGET_URL":         "its default https://$WEBSITE_HOSTNAME/api/WeatherHttp is the app itself; Flex's unique default host name is not known before the site exists",
	"KEYVAULT_REFRESH_INTERVAL": "the handler's default (1 h) is the re-read schedule Azure wants",
}

// localLeaves: read by the handler and left to its default by
// local.settings.json (func start on a developer machine).
var localLeaves = map[string]string{
	"AZURE_AUTHORITY_HOST":      "the default is the public cloud's authority",
	"API_APP_ID_URI":            "defaults to api://<API_CLIENT_ID>",
	"WEATHER_API_BASE_URL":      "the default is OpenWeatherMap itself",
	"WEATHER_RATE_LIMIT":        "the default is the free plan's 60 per minute",
	"CALLER_SCOPE":              "defaults to <API_APP_ID_URI>/.default",
	"AZURE_CLIENT_ID":           "no managed identity on a developer machine: Key Vault is read with the Azure CLI login",
	"CALLER_CLIENT_SECRET":      "only with CALLER_CREDENTIAL=secret",
	"CALLER_CLIENT_CERTIFICATE": "only with CALLER_CREDENTIAL=certificate",
	"KEYVAULT_REFRESH_INTERVAL": "the default (1 h) suits a developer machine too",
}

// bicepHostSettings: set by main.bicep for the Functions host or platform,
// not read by the handler.
var bicepHostSettings = map[string]string{
	"AzureWebJobsStorage__accountName":          "host storage through the identity (no connection string)",
	"AzureWebJobsStorage__credential":           "managedidentity: host storage through the identity",
	"AzureWebJobsStorage__clientId":             "which user-assigned identity host storage uses",
	"APPLICATIONINSIGHTS_CONNECTION_STRING":     "where the host sends telemetry; with local auth disabled it is an address, not a credential",
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=<identity>;Authorization=AAD: telemetry with an Entra ID token",
}

// localHostSettings: set by local.settings.json for Core Tools, not read by
// the handler.
var localHostSettings = map[string]string{
	"FUNCTIONS_WORKER_RUNTIME": "Core Tools needs it locally (Flex refuses it: there the runtime is functionAppConfig.runtime)",
	"AzureWebJobsStorage":      "the storage emulator for the timer's lease, local only",
}

// flexRefused are app settings Flex Consumption refuses or ignores: their
// job is done by functionAppConfig there.
var flexRefused = []string{
	"FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_WORKER_RUNTIME_VERSION",
	"FUNCTIONS_MAX_HTTP_CONCURRENCY", "FUNCTIONS_WORKER_PROCESS_COUNT", "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
	"SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD", "WEBSITE_RUN_FROM_PACKAGE",
	"WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTOVERVNET",
	"WEBSITE_SKIP_CONTENTSHARE_VALIDATION", "WEBSITE_NODE_DEFAULT_VERSION", "WEBSITE_VNET_ROUTE_ALL",
	"WEBSITE_DNS_SERVER", "WEBSITES_ENABLE_APP_SERVICE_STORAGE", "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
	"WEBSITE_USE_PLACEHOLDER", "AzureWebJobsStorage",
}

// appSetting is one entry of the site's siteConfig.appSettings.
type appSetting struct {
	Name  string
	Value *node
}

func bicepAppSettings(t *testing.T) []appSetting {
	t.Helper()
	f := file(t, "modules/functionapp.bicep")
	site := oneResource(t, f, "Microsoft.Web/sites")
	arr := site.Body.prop("properties", "siteConfig", "appSettings")
	if arr == nil || arr.Type != "array" {
		t.Fatal("the site has no siteConfig.appSettings array")
	}
	var out []appSetting
	for _, e := range arr.Children {
		if e.Type == "comment" {
			continue
		}
		name := literal(e.prop("name"))
		if e.Type != "object" || name == "" || e.prop("value") == nil {
			t.Fatalf("functionapp.bicep line %d: an app setting must be {name: '<literal>', value: …}", e.Line)
		}
		out = append(out, appSetting{Name: name, Value: e.prop("value")})
	}
	return out
}

type localSettings struct {
	IsEncrypted bool
	Values      map[string]string
}

func readLocalSettings(t *testing.T) localSettings {
	t.Helper()
	b, err := os.ReadFile("../local.settings.json")
	if err != nil {
		t.Fatal(err)
	}
	var ls localSettings
	if err := json.Unmarshal(b, &ls); err != nil {
		t.Fatalf("local.settings.json: %v", err)
	}
	return ls
}

func TestHandlerSettingsScan(t *testing.T) {
	hs := scanHandlerSettings(t)
	// The scan must find the contract's core, or it found nothing real.
	for _, name := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "AZURE_TENANT_ID", "API_CLIENT_ID", "WEATHER_API_KEY", "CALLER_CLIENT_ID", "CALLER_CREDENTIAL", "IDENTITY_ENDPOINT", "WEBSITE_HOSTNAME"} {
		if !hs.read[name] {
			t.Errorf("the go/ast scan of %s did not find %s: has the settings code moved?", handlerDir, name)
		}
	}
	if !hs.secret["WEATHER_API_KEY"] {
		t.Error("the scan does not see WEATHER_API_KEY as a secret")
	}
	t.Logf("the handler reads %d settings: %s", len(hs.read), strings.Join(sortedKeys(hs.read), " "))
}

// TestBicepSetsEverySettingTheHandlerReads: main.bicep (through
// modules/functionapp.bicep) sets every setting the handler reads, except
// those the platform sets or that are deliberately left out, each with its
// reason.
func TestBicepSetsEverySettingTheHandlerReads(t *testing.T) {
	hs := scanHandlerSettings(t)
	set := map[string]bool{}
	for _, s := range bicepAppSettings(t) {
		if set[s.Name] {
			t.Errorf("app setting %s is set twice", s.Name)
		}
		set[s.Name] = true
	}
	for _, name := range sortedKeys(hs.read) {
		if set[name] {
			if why, ok := platformSet[name]; ok {
				t.Errorf("main.bicep sets %s, which the platform owns (%s)", name, why)
			}
			continue
		}
		if platformSet[name] == "" && bicepLeaves[name] == "" {
			t.Errorf("the handler reads %s but main.bicep does not set it (set it in modules/functionapp.bicep, or give a reason in bicepLeaves)", name)
		}
	}
	for _, name := range sortedKeys(set) {
		if !hs.read[name] && bicepHostSettings[name] == "" {
			t.Errorf("main.bicep sets %s, which the handler does not read and which is no known host setting", name)
		}
	}
	for name := range bicepLeaves {
		if !hs.read[name] {
			t.Logf("note: bicepLeaves lists %s, which this handler does not read (yet)", name)
		}
	}
}

// TestLocalSettingsMatchTheHandler: the same two directions for the
// committed local.settings.json.
func TestLocalSettingsMatchTheHandler(t *testing.T) {
	hs := scanHandlerSettings(t)
	ls := readLocalSettings(t)
	if ls.IsEncrypted {
		t.Error("local.settings.json must stay unencrypted: it holds no secret, only references")
	}
	for _, name := range sortedKeys(hs.read) {
		if _, ok := ls.Values[name]; ok {
			if why, ok := platformSet[name]; ok {
				t.Errorf("local.settings.json sets %s, which the host owns (%s)", name, why)
			}
			continue
		}
		if platformSet[name] == "" && localLeaves[name] == "" {
			t.Errorf("the handler reads %s but local.settings.json does not set it (or give a reason in localLeaves)", name)
		}
	}
	for _, name := range sortedKeys(ls.Values) {
		if !hs.read[name] && localHostSettings[name] == "" {
			t.Errorf("local.settings.json sets %s, which the handler does not read and which is no known host setting", name)
		}
	}
	if ls.Values["FUNCTIONS_WORKER_RUNTIME"] != "custom" {
		t.Errorf("local.settings.json FUNCTIONS_WORKER_RUNTIME = %q, want custom", ls.Values["FUNCTIONS_WORKER_RUNTIME"])
	}
	if v := ls.Values["AzureWebJobsStorage"]; v != "" && v != "UseDevelopmentStorage=true" {
		t.Error("local.settings.json AzureWebJobsStorage must be the emulator (UseDevelopmentStorage=true), never a real account's connection string")
	}
}

func TestNoSettingFlexRefuses(t *testing.T) {
	for _, s := range bicepAppSettings(t) {
		if slices.Contains(flexRefused, s.Name) || strings.HasPrefix(s.Name, "WEBSITE_CONTENT") {
			t.Errorf("main.bicep sets %s, which Flex Consumption refuses", s.Name)
		}
	}
}

var (
	// A Key Vault reference in Bicep: a versionless secret URI built from an
	// existing vault resource's vaultUri (which ends in "/").
	bicepKeyVaultRef = regexp.MustCompile(`^'@Microsoft\.KeyVault\(SecretUri=\$\{([A-Za-z][A-Za-z0-9]*)\.properties\.vaultUri\}secrets/(\$\{[A-Za-z][A-Za-z0-9]*\}|[A-Za-z0-9-]{1,127})/?\)'$`)
	// A Key Vault reference in JSON, either syntax, versionless.
	localKeyVaultRef = regexp.MustCompile(`^@Microsoft\.KeyVault\((SecretUri=https://[^/;()]+/secrets/[A-Za-z0-9-]{1,127}/?|VaultName=[^;()]+;SecretName=[A-Za-z0-9-]{1,127})\)$`)
)

// TestSecretsAreKeyVaultReferences: every secret-bearing setting, wherever
// it is set, is a Key Vault reference to a versionless secret (so rotation
// needs no redeploy); no secret-bearing setting holds a value.
func TestSecretsAreKeyVaultReferences(t *testing.T) {
	hs := scanHandlerSettings(t)
	secret := func(name string) bool { return hs.secret[name] || secretName.MatchString(name) }
	f := file(t, "modules/functionapp.bicep")
	found := 0
	for _, s := range bicepAppSettings(t) {
		if !secret(s.Name) {
			if strings.Contains(s.Value.text(), "@Microsoft.KeyVault") {
				t.Logf("note: %s is a Key Vault reference but not secret-bearing", s.Name)
			}
			continue
		}
		found++
		m := bicepKeyVaultRef.FindStringSubmatch(s.Value.text())
		if m == nil {
			t.Errorf("main.bicep %s = %s: want '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/<name>)' (versionless)", s.Name, s.Value.text())
			continue
		}
		if r, ok := resourceBySymbol(f, m[1]); !ok || r.Type != "Microsoft.KeyVault/vaults" {
			t.Errorf("main.bicep %s refers to %s, which is not a Microsoft.KeyVault/vaults resource", s.Name, m[1])
		}
	}
	if found == 0 {
		t.Error("main.bicep sets no secret-bearing setting: WEATHER_API_KEY must be a Key Vault reference")
	}
	for name, v := range readLocalSettings(t).Values {
		if secret(name) && !localKeyVaultRef.MatchString(v) {
			t.Errorf("local.settings.json %s is not a versionless Key Vault reference", name)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
