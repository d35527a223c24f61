package infra

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The role definitions the identity needs (built-in role IDs, the same in
// every cloud) and the resource each is granted on.
var wantRoles = map[string]string{
	"4633458b-17de-408a-b874-0445c86b69e6": "Microsoft.KeyVault/vaults",         // Key Vault Secrets User
	"b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Microsoft.Storage/storageAccounts", // Storage Blob Data Owner
	"3913510d-42f4-4e42-8a64-420c390055eb": "Microsoft.Insights/components",     // Monitoring Metrics Publisher
}

func TestEveryBicepFileParses(t *testing.T) {
	files := trees(t)
	if len(files) < 3 {
		t.Fatalf("parsed %d .bicep files, want main.bicep, entra.bicep and the modules", len(files))
	}
	for _, path := range sortedKeys(files) {
		f := files[path]
		for _, e := range f.Errors {
			t.Errorf("%s:%d:%d: %s %q", path, e.Line, e.Column, e.Type, e.Text)
		}
		if f.Tree == nil || f.Tree.Type != "infrastructure" || len(f.Tree.Children) == 0 {
			t.Errorf("%s: no syntax tree", path)
		}
		want := 0
		if path == "entra.bicep" {
			want = 1
		}
		if len(f.Extensions) != want {
			t.Errorf("%s: %d extension statements blanked, want %d", path, len(f.Extensions), want)
		}
	}
	for _, p := range []string{"main.bicep", "entra.bicep", "modules/functionapp.bicep"} {
		if files[p] == nil {
			t.Errorf("%s is missing", p)
		}
	}
}

// TestParseCheckerIsNotVacuous: the checker reports syntax errors and every
// extension form it does not handle, and blanks only `extension <name>`.
func TestParseCheckerIsNotVacuous(t *testing.T) {
	requireParser(t)
	out, err := parse("testdata/broken.bicep", "testdata/extension.bicep")
	if err != nil {
		t.Fatal(err)
	}
	broken, ext := out.Files[0], out.Files[1]
	var unsupported []int
	syntax := 0
	for _, e := range broken.Errors {
		if e.Type == "unsupported-extension-form" {
			unsupported = append(unsupported, e.Line)
		} else {
			syntax++
		}
	}
	if !slices.Equal(unsupported, []int{2, 3}) {
		t.Errorf("unsupported extension forms reported on lines %v, want [2 3] (a registry reference and a with-clause)", unsupported)
	}
	if syntax == 0 {
		t.Error("no syntax error reported for broken.bicep")
	}
	if len(broken.Extensions) != 0 {
		t.Errorf("blanked %v in broken.bicep, want nothing", broken.Extensions)
	}
	if len(ext.Errors) != 0 {
		t.Errorf("extension.bicep: errors %v, want none", ext.Errors)
	}
	var names []string
	for _, e := range ext.Extensions {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"microsoftGraphV1", "indented"}) {
		t.Errorf("blanked extensions %v, want [microsoftGraphV1 indented]", names)
	}
}

func TestParserVersionsArePinned(t *testing.T) {
	requireParser(t)
	out, err := parsedInfra()
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	readJSON(t, "check/package.json", &pkg)
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	readJSON(t, "check/package-lock.json", &lock)
	for _, name := range []string{"tree-sitter-bicep", "web-tree-sitter"} {
		pin := pkg.Dependencies[name]
		if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(pin) {
			t.Errorf("check/package.json pins %s as %q, want an exact version", name, pin)
		}
		if got := lock.Packages["node_modules/"+name].Version; got != pin {
			t.Errorf("package-lock.json has %s %q, package.json %q", name, got, pin)
		}
		if got := out.Versions[name]; got != pin {
			t.Errorf("parsed with %s %q, want the pinned %q (run npm ci in infra/check)", name, got, pin)
		}
	}
}

// TestBicepconfigPinsTheGraphExtension: every extension a file uses is
// declared in bicepconfig.json with a pinned registry version.
func TestBicepconfigPinsTheGraphExtension(t *testing.T) {
	var cfg struct {
		Extensions map[string]string `json:"extensions"`
	}
	readJSON(t, "bicepconfig.json", &cfg)
	used := map[string]bool{}
	for _, f := range trees(t) {
		for _, e := range f.Extensions {
			used[e.Name] = true
		}
	}
	if !used["microsoftGraphV1"] {
		t.Error("no file uses the microsoftGraphV1 extension")
	}
	for name := range used {
		ref, ok := cfg.Extensions[name]
		if !ok {
			t.Errorf("extension %s is used but not declared in bicepconfig.json", name)
			continue
		}
		if !regexp.MustCompile(`^br:mcr\.microsoft\.com/bicep/extensions/microsoftgraph/v1\.0:\d+\.\d+\.\d+$`).MatchString(ref) {
			t.Errorf("bicepconfig.json %s = %q, want the Graph v1.0 extension at a pinned version", name, ref)
		}
	}
}

func TestMainIsSubscriptionScopedAndCreatesTheResourceGroup(t *testing.T) {
	f := file(t, "main.bicep")
	var scope string
	for _, c := range f.Tree.Children {
		if c.Type == "target_scope_assignment" {
			scope = literal(c.Children[0])
		}
	}
	if scope != "subscription" {
		t.Errorf("main.bicep targetScope = %q, want subscription", scope)
	}
	rg := oneResource(t, f, "Microsoft.Resources/resourceGroups")
	for _, c := range f.Tree.Children {
		if c.Type != "module_declaration" {
			continue
		}
		body, _ := module(f, c.Children[0].text())
		if s := body.prop("scope").text(); s != rg.Symbol {
			t.Errorf("module %s is deployed to scope %q, want the resource group %s", c.Children[0].text(), s, rg.Symbol)
		}
	}
	for _, out := range []string{"appName", "appUrl", "keyVaultName", "identityClientId"} {
		if declared(f, "output_declaration", out) == nil {
			t.Errorf("main.bicep has no output %s", out)
		}
	}
	// The key is a @secure() parameter without a default value.
	for _, c := range f.Tree.Children {
		if c.Type == "parameter_declaration" && c.Children[0].text() == "weatherApiKey" {
			if len(c.Children) > 2 && literal(c.Children[2]) != "" {
				t.Error("weatherApiKey has a non-empty default")
			}
		}
	}
	if !decorated(f, "weatherApiKey", "secure") {
		t.Error("main.bicep param weatherApiKey is not @secure()")
	}
	if !decorated(file(t, "modules/keyvault.bicep"), "weatherApiKey", "secure") {
		t.Error("keyvault.bicep param weatherApiKey is not @secure()")
	}
}

// TestFlexConsumptionCustomRuntime: FC1 Linux plan, runtime custom 1.0 in
// functionAppConfig, deployment from the blob container with the identity.
func TestFlexConsumptionCustomRuntime(t *testing.T) {
	f := file(t, "modules/functionapp.bicep")
	plan := oneResource(t, f, "Microsoft.Web/serverfarms")
	if got := literal(plan.Body.prop("sku", "name")); got != "FC1" {
		t.Errorf("plan sku = %q, want FC1", got)
	}
	if got := literal(plan.Body.prop("sku", "tier")); got != "FlexConsumption" {
		t.Errorf("plan tier = %q, want FlexConsumption", got)
	}
	if got := plan.Body.prop("properties", "reserved").text(); got != "true" {
		t.Errorf("plan reserved = %q, want true (Linux)", got)
	}
	site := oneResource(t, f, "Microsoft.Web/sites")
	if kind := literal(site.Body.prop("kind")); kind != "functionapp,linux" {
		t.Errorf("site kind = %q, want functionapp,linux", kind)
	}
	cfg := site.Body.prop("properties", "functionAppConfig")
	if got := literal(cfg.prop("runtime", "name")); got != "custom" {
		t.Errorf("functionAppConfig.runtime.name = %q, want custom", got)
	}
	if got := literal(cfg.prop("runtime", "version")); got != "1.0" {
		t.Errorf("functionAppConfig.runtime.version = %q, want 1.0", got)
	}
	dep := cfg.prop("deployment", "storage")
	if literal(dep.prop("type")) != "blobContainer" {
		t.Error("deployment storage is not a blobContainer")
	}
	if literal(dep.prop("authentication", "type")) != "UserAssignedIdentity" || dep.prop("authentication", "userAssignedIdentityResourceId").text() != "identityId" {
		t.Error("deployment storage is not reached with the user-assigned identity")
	}
	if site.Body.prop("properties", "httpsOnly").text() != "true" {
		t.Error("the site is not httpsOnly")
	}
	main := file(t, "main.bicep")
	body, path := module(main, "app")
	if path != "modules/functionapp.bicep" {
		t.Fatalf("main.bicep module app deploys %q, want modules/functionapp.bicep", path)
	}
	if got := body.prop("params", "identityId").text(); got != "identity.outputs.id" {
		t.Errorf("the app's identity is %q, want identity.outputs.id", got)
	}
}

// TestC17_KeyVaultReferenceIdentityAtTopLevelProperties: the identity that
// resolves Key Vault references is the site's top-level
// properties.keyVaultReferenceIdentity (under siteConfig it is ignored and
// every reference fails), and it is the site's user-assigned identity.
func TestC17_KeyVaultReferenceIdentityAtTopLevelProperties(t *testing.T) {
	f := file(t, "modules/functionapp.bicep")
	site := oneResource(t, f, "Microsoft.Web/sites")
	got := site.Body.prop("properties", "keyVaultReferenceIdentity")
	if got == nil {
		t.Fatal("the site sets no properties.keyVaultReferenceIdentity")
	}
	if got.text() != "identityId" {
		t.Errorf("keyVaultReferenceIdentity = %q, want identityId (the user-assigned identity's resource ID)", got.text())
	}
	if site.Body.prop("properties", "siteConfig", "keyVaultReferenceIdentity") != nil {
		t.Error("keyVaultReferenceIdentity is under siteConfig, where the platform ignores it (C17)")
	}
	if literal(site.Body.prop("identity", "type")) != "UserAssigned" {
		t.Error("the site's identity is not UserAssigned")
	}
	if ids := site.Body.prop("identity", "userAssignedIdentities").keys(); !slices.Equal(ids, []string{"'${identityId}'"}) {
		t.Errorf("userAssignedIdentities keys = %q, want exactly the identityId", ids)
	}
	// No other keyVaultReferenceIdentity anywhere.
	n := 0
	for _, pf := range trees(t) {
		pf.Tree.walk(func(x *node) {
			if x.Type == "object_property" && len(x.Children) > 0 && keyName(x.Children[0]) == "keyVaultReferenceIdentity" {
				n++
			}
		})
	}
	if n != 1 {
		t.Errorf("keyVaultReferenceIdentity is set %d times across infra, want once", n)
	}
}

// TestRoleAssignments: exactly the three roles, each on its resource, with
// deterministic names (guid of scope, principal and role), for the identity.
func TestRoleAssignments(t *testing.T) {
	seen := map[string]bool{}
	for _, path := range sortedKeys(trees(t)) {
		f := trees(t)[path]
		for _, r := range resourcesOfType(f, "Microsoft.Authorization/roleAssignments") {
			name := r.Body.prop("name")
			if name == nil || name.Type != "call_expression" || name.Children[0].text() != "guid" {
				t.Errorf("%s:%d: role assignment name %q is not guid(…): it must be deterministic", path, r.Line, name.text())
				continue
			}
			args := name.Children[1].Children
			def := r.Body.prop("properties", "roleDefinitionId")
			if def == nil || def.Type != "call_expression" || def.Children[0].text() != "subscriptionResourceId" || len(def.Children[1].Children) != 2 {
				t.Errorf("%s:%d: roleDefinitionId must be subscriptionResourceId('Microsoft.Authorization/roleDefinitions', <id>)", path, r.Line)
				continue
			}
			roleArg := def.Children[1].Children[1]
			roleID := literal(roleArg)
			if roleArg.Type == "identifier" {
				roleID = literal(declared(f, "variable_declaration", roleArg.text()))
			}
			wantScope, known := wantRoles[roleID]
			if !known {
				t.Errorf("%s:%d: role %q is not one the design grants", path, r.Line, roleID)
				continue
			}
			seen[roleID] = true
			scope, ok := resourceBySymbol(f, r.Body.prop("scope").text())
			if !ok || scope.Type != wantScope {
				t.Errorf("%s:%d: role %s is granted on %q (%s), want a %s", path, r.Line, roleID, r.Body.prop("scope").text(), scope.Type, wantScope)
			}
			if len(args) != 3 || args[0].text() != scope.Symbol+".id" || args[1].text() != "principalId" || args[2].text() != roleArg.text() {
				t.Errorf("%s:%d: name %s, want guid(%s.id, principalId, %s)", path, r.Line, name.text(), scope.Symbol, roleArg.text())
			}
			if r.Body.prop("properties", "principalId").text() != "principalId" || literal(r.Body.prop("properties", "principalType")) != "ServicePrincipal" {
				t.Errorf("%s:%d: the role is not granted to the identity (principalId, principalType ServicePrincipal)", path, r.Line)
			}
			if r.Cond != nil {
				t.Errorf("%s:%d: a role assignment must not be conditional", path, r.Line)
			}
		}
	}
	for id, scope := range wantRoles {
		if !seen[id] {
			t.Errorf("no role assignment of %s on the %s", id, scope)
		}
	}
	// Each module's principalId is the one identity's.
	main := file(t, "main.bicep")
	for _, m := range []string{"storage", "keyVault", "monitoring"} {
		body, _ := module(main, m)
		if got := body.prop("params", "principalId").text(); got != "identity.outputs.principalId" {
			t.Errorf("module %s principalId = %q, want identity.outputs.principalId", m, got)
		}
	}
}

// TestIdentityBasedAccessOnly: shared keys off, local auth off, RBAC vault,
// host storage and telemetry through the identity.
func TestIdentityBasedAccessOnly(t *testing.T) {
	st := oneResource(t, file(t, "modules/storage.bicep"), "Microsoft.Storage/storageAccounts")
	if st.Body.prop("properties", "allowSharedKeyAccess").text() != "false" {
		t.Error("storage allowSharedKeyAccess is not false")
	}
	if st.Body.prop("properties", "allowBlobPublicAccess").text() != "false" {
		t.Error("storage allows public blob access")
	}
	kv := oneResource(t, file(t, "modules/keyvault.bicep"), "Microsoft.KeyVault/vaults")
	if kv.Body.prop("properties", "enableRbacAuthorization").text() != "true" {
		t.Error("Key Vault does not use RBAC authorization")
	}
	if kv.Body.prop("properties", "accessPolicies") != nil {
		t.Error("Key Vault declares access policies; RBAC is the only gate")
	}
	if literal(kv.Body.prop("properties", "publicNetworkAccess")) != "Enabled" {
		t.Error("Key Vault must allow public network access on Flex (DESIGN section 7)")
	}
	mon := file(t, "modules/monitoring.bicep")
	ai := oneResource(t, mon, "Microsoft.Insights/components")
	if ai.Body.prop("properties", "DisableLocalAuth").text() != "true" {
		t.Error("Application Insights local auth is not disabled")
	}
	ws := oneResource(t, mon, "Microsoft.OperationalInsights/workspaces")
	if ws.Body.prop("properties", "features", "disableLocalAuth").text() != "true" {
		t.Error("Log Analytics local auth is not disabled")
	}
	settings := map[string]string{}
	for _, s := range bicepAppSettings(t) {
		settings[s.Name] = s.Value.text()
	}
	want := map[string]string{
		"AzureWebJobsStorage__accountName":          "storage.name",
		"AzureWebJobsStorage__credential":           "'managedidentity'",
		"AzureWebJobsStorage__clientId":             "identityClientId",
		"AZURE_CLIENT_ID":                           "identityClientId",
		"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "'ClientId=${identityClientId};Authorization=AAD'",
		"APPLICATIONINSIGHTS_CONNECTION_STRING":     "appInsights.properties.ConnectionString",
		"CALLER_CREDENTIAL":                         "'managed-identity'",
		"AZURE_TENANT_ID":                           "tenant().tenantId",
		"AZURE_AUTHORITY_HOST":                      "environment().authentication.loginEndpoint",
	}
	for name, v := range want {
		if settings[name] != v {
			t.Errorf("app setting %s = %q, want %s", name, settings[name], v)
		}
	}
	body, _ := module(file(t, "main.bicep"), "app")
	if got := body.prop("params", "identityClientId").text(); got != "identity.outputs.clientId" {
		t.Errorf("the app's identityClientId = %q, want identity.outputs.clientId", got)
	}
}

// Things that would mean a key or connection string exists.
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\blist(Keys|AccountSas|ServiceSas|ConnectionStrings|Secrets)\s*\(`),
	regexp.MustCompile(`(?i)AccountKey=|DefaultEndpointsProtocol=|SharedAccessSignature=|InstrumentationKey=`),
	regexp.MustCompile(`(?i)\.(primaryKey|secondaryKey|primaryConnectionString|InstrumentationKey)\b`),
	regexp.MustCompile(`(?i)--account-key|--connection-string|--sas-token|--password\b|client-secret|creds:`),
}

// TestNoConnectionStringOrKeyAnywhere scans every deployment file, the
// Bicep files by their syntax trees (property access and calls) and the rest
// as text. The Application Insights connection string is the one allowed
// "connection string": with local auth disabled it holds no credential.
func TestNoConnectionStringOrKeyAnywhere(t *testing.T) {
	for _, path := range sortedKeys(trees(t)) {
		trees(t)[path].Tree.walk(func(n *node) {
			if n.Type == "comment" || n.Children != nil && n.Type != "member_expression" && n.Type != "call_expression" && n.Type != "string" {
				return
			}
			for _, re := range forbidden {
				if re.MatchString(n.text()) {
					t.Errorf("%s:%d: %q looks like a key or connection string", path, n.Line, truncate(n.text(), 80))
				}
			}
			if n.Type == "member_expression" && strings.HasSuffix(strings.ToLower(n.text()), ".connectionstring") && n.text() != "appInsights.properties.ConnectionString" {
				t.Errorf("%s:%d: %s: a connection string other than Application Insights'", path, n.Line, n.text())
			}
		})
	}
	for _, path := range []string{"main.parameters.json", "deploy.sh", "../azure.yaml", "../.github/workflows/ci.yml"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, re := range forbidden {
				if re.MatchString(line) {
					t.Errorf("%s:%d: %q looks like a key, secret or connection string", path, i+1, truncate(line, 80))
				}
			}
		}
	}
}

// TestParametersFileHoldsNoSecret: main.parameters.json (azd) may name the
// key only as an environment substitution, never hold it.
func TestParametersFileHoldsNoSecret(t *testing.T) {
	var p struct {
		Parameters map[string]struct {
			Value json.RawMessage `json:"value"`
		} `json:"parameters"`
	}
	readJSON(t, "main.parameters.json", &p)
	main := file(t, "main.bicep")
	for name, v := range p.Parameters {
		if !slices.Contains(params(main), name) {
			t.Errorf("main.parameters.json sets %s, which main.bicep does not declare", name)
		}
		if decorated(main, name, "secure") {
			var s string
			if err := json.Unmarshal(v.Value, &s); err != nil || !regexp.MustCompile(`^(\$\{[A-Z_]+=?\})?$`).MatchString(s) {
				t.Errorf("main.parameters.json %s holds a value; a secure parameter may only be an ${ENV} substitution", name)
			}
		}
	}
}

// TestEntraApps: the API app (App ID URI, app role for applications only,
// delegated scope, v2 tokens) and the daemon app with only a federated
// credential trusting the managed identity, and the role granted to it.
func TestEntraApps(t *testing.T) {
	f := file(t, "entra.bicep")
	apps := resourcesOfType(f, "Microsoft.Graph/applications")
	if len(apps) != 2 {
		t.Fatalf("entra.bicep declares %d applications, want 2", len(apps))
	}
	api, ok := resourceBySymbol(f, "apiApp")
	if !ok {
		t.Fatal("no apiApp")
	}
	caller, ok := resourceBySymbol(f, "callerApp")
	if !ok {
		t.Fatal("no callerApp")
	}
	if api.Body.prop("api", "requestedAccessTokenVersion").text() != "2" {
		t.Error("the API app does not request v2 access tokens")
	}
	if uris := api.Body.prop("identifierUris"); uris == nil || len(uris.Children) != 1 {
		t.Error("the API app needs exactly one identifierUri (the App ID URI)")
	}
	roles := api.Body.prop("appRoles")
	if roles == nil || len(roles.named("object")) != 1 {
		t.Fatal("the API app needs exactly one app role")
	}
	role := roles.named("object")[0]
	if literal(role.prop("value")) != "access_as_application" {
		t.Errorf("app role value = %q, want access_as_application", literal(role.prop("value")))
	}
	if m := role.prop("allowedMemberTypes"); m == nil || len(m.Children) != 1 || literal(m.Children[0]) != "Application" {
		t.Error("app role access_as_application must allow applications only")
	}
	scopes := api.Body.prop("api", "oauth2PermissionScopes")
	if scopes == nil || len(scopes.named("object")) != 1 || literal(scopes.named("object")[0].prop("value")) != "access_as_user" || literal(scopes.named("object")[0].prop("type")) != "User" {
		t.Error("the API app needs exactly the delegated scope access_as_user")
	}
	roleID := role.prop("id").text()
	if !strings.HasPrefix(declared(f, "variable_declaration", roleID).text(), "guid(") {
		t.Errorf("app role id %q is not a deterministic guid(…) variable", roleID)
	}
	for _, k := range []string{"passwordCredentials", "keyCredentials"} {
		if caller.Body.prop(k) != nil || api.Body.prop(k) != nil {
			t.Errorf("an app declares %s: the daemon's only credential is the federated one", k)
		}
	}

	sps := map[string]string{} // service principal symbol -> app symbol
	for _, sp := range resourcesOfType(f, "Microsoft.Graph/servicePrincipals") {
		app, _, _ := strings.Cut(sp.Body.prop("appId").text(), ".")
		sps[sp.Symbol] = app
	}
	if !slices.Contains(sortedValues(sps), "apiApp") || !slices.Contains(sortedValues(sps), "callerApp") {
		t.Errorf("service principals %v, want one for apiApp and one for callerApp", sps)
	}
	grant := oneResource(t, f, "Microsoft.Graph/appRoleAssignedTo")
	if grant.Body.prop("appRoleId").text() != roleID {
		t.Errorf("appRoleAssignedTo grants %q, want the access_as_application role %s", grant.Body.prop("appRoleId").text(), roleID)
	}
	principal, _, _ := strings.Cut(grant.Body.prop("principalId").text(), ".")
	res, _, _ := strings.Cut(grant.Body.prop("resourceId").text(), ".")
	if sps[principal] != "callerApp" || grant.Body.prop("principalId").text() != principal+".id" {
		t.Errorf("the role is granted to %s, want the daemon's service principal", grant.Body.prop("principalId").text())
	}
	if sps[res] != "apiApp" || grant.Body.prop("resourceId").text() != res+".id" {
		t.Errorf("the role is granted on %s, want the API's service principal", grant.Body.prop("resourceId").text())
	}
	// The settings use what entra.bicep outputs.
	main := file(t, "main.bicep")
	for v, out := range map[string]string{"resolvedApiClientId": "entra.outputs.apiClientId", "resolvedApiAppIdUri": "entra.outputs.apiAppIdUri", "resolvedCallerClientId": "entra.outputs.callerClientId"} {
		if !strings.Contains(declared(main, "variable_declaration", v).text(), out) {
			t.Errorf("main.bicep %s does not use %s", v, out)
		}
	}
	if got := declared(f, "output_declaration", "apiClientId").text(); got != "apiApp.appId" {
		t.Errorf("entra.bicep output apiClientId = %q, want apiApp.appId", got)
	}
	if got := declared(f, "output_declaration", "callerClientId").text(); got != "callerApp.appId" {
		t.Errorf("entra.bicep output callerClientId = %q, want callerApp.appId", got)
	}
}

// TestFederatedCredentialWiring: the daemon's federated credential accepts
// exactly the managed identity's token: audience api://AzureADTokenExchange,
// issuer <authority>/<tenant>/v2.0 of this cloud, subject the principal ID of
// the same identity the app runs as (DESIGN section 9).
func TestFederatedCredentialWiring(t *testing.T) {
	f := file(t, "entra.bicep")
	fic := oneResource(t, f, "Microsoft.Graph/applications/federatedIdentityCredentials")
	aud := fic.Body.prop("audiences")
	if aud == nil || len(aud.Children) != 1 || literal(aud.Children[0]) != "api://AzureADTokenExchange" {
		t.Errorf("audiences = %s, want exactly ['api://AzureADTokenExchange']", aud.text())
	}
	if got := fic.Body.prop("issuer").text(); got != "'${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'" {
		t.Errorf("issuer = %s, want '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'", got)
	}
	if got := fic.Body.prop("subject").text(); got != "identityPrincipalId" {
		t.Errorf("subject = %s, want the identityPrincipalId parameter", got)
	}
	if got := fic.Body.prop("name").text(); got != "'${callerApp.uniqueName}/managed-identity'" {
		t.Errorf("name = %s, want the daemon app's '${callerApp.uniqueName}/…'", got)
	}
	main := file(t, "main.bicep")
	body, path := module(main, "entra")
	if path != "entra.bicep" {
		t.Fatalf("main.bicep module entra deploys %q", path)
	}
	if got := body.prop("params", "identityPrincipalId").text(); got != "identity.outputs.principalId" {
		t.Errorf("entra's identityPrincipalId = %q, want identity.outputs.principalId", got)
	}
	_, idPath := module(main, "identity")
	idf := file(t, idPath)
	mi := oneResource(t, idf, "Microsoft.ManagedIdentity/userAssignedIdentities")
	for out, want := range map[string]string{"principalId": mi.Symbol + ".properties.principalId", "clientId": mi.Symbol + ".properties.clientId", "id": mi.Symbol + ".id"} {
		if got := declared(idf, "output_declaration", out).text(); got != want {
			t.Errorf("%s output %s = %q, want %s", idPath, out, got, want)
		}
	}
	if n := len(resourcesOfType(idf, "Microsoft.ManagedIdentity/userAssignedIdentities")); n != 1 {
		t.Errorf("%d identities, want one for everything", n)
	}
}

func decorated(f *parsedFile, param, decorator string) bool {
	kids := f.Tree.Children
	for i, c := range kids {
		if c.Type == "parameter_declaration" && c.Children[0].text() == param && i > 0 && kids[i-1].Type == "decorators" {
			found := false
			kids[i-1].walk(func(n *node) {
				if n.Type == "call_expression" && n.Children[0].text() == decorator {
					found = true
				}
			})
			return found
		}
	}
	return false
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func sortedValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
