package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// goodEnv is a complete, valid settings set. Values are placeholders, not
// secrets, and every address is loopback: a test that forgets to override one
// reaches nothing outside this machine.
func goodEnv() map[string]string {
	return map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": "7072",
		"AZURE_TENANT_ID":              "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"API_CLIENT_ID":                "11111111-2222-3333-4444-555555555555",
		"AZURE_AUTHORITY_HOST":         "https://127.0.0.1:9",
		"WEATHER_API_BASE_URL":         "http://127.0.0.1:9",
		"WEATHER_API_KEY":              "@Microsoft.KeyVault(SecretUri=https://127.0.0.1:9/secrets/weather-api-key)",
		"CALLER_CLIENT_ID":             "66666666-7777-8888-9999-000000000000",
		"CALLER_CREDENTIAL":            "secret",
		"CALLER_CLIENT_SECRET":         "@Microsoft.KeyVault(SecretUri=https://127.0.0.1:9/secrets/caller-secret/)",
		"CALLER_TARGET_URL":            "http://127.0.0.1:9/api/WeatherHttp",
	}
}

func getenvFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseSettingsDefaults(t *testing.T) {
	env := goodEnv()
	delete(env, "AZURE_AUTHORITY_HOST")
	delete(env, "WEATHER_API_BASE_URL")
	env["WEATHER_API_KEY"] = "@Microsoft.KeyVault(VaultName=myvault;SecretName=weather-api-key)"
	s, err := parseSettings(getenvFrom(env))
	if err != nil {
		t.Fatalf("parseSettings: %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"AZURE_AUTHORITY_HOST", s.AuthorityHost, "https://login.microsoftonline.com"},
		{"API_APP_ID_URI", s.APIAppIDURI, "api://11111111-2222-3333-4444-555555555555"},
		{"API_REQUIRED_ROLE", s.RequiredRole, "access_as_application"},
		{"API_REQUIRED_SCOPE", s.RequiredScope, "access_as_user"},
		{"WEATHER_API_BASE_URL", s.WeatherBaseURL, "https://api.openweathermap.org"},
		{"CALLER_SCOPE", s.CallerScope, "api://11111111-2222-3333-4444-555555555555/.default"},
		{"CALLER_CITIES", strings.Join(s.CallerCities, ","), "London"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if s.RatePerMinute != 60 {
		t.Errorf("WEATHER_RATE_LIMIT = %d, want 60 (the free plan)", s.RatePerMinute)
	}
	if s.CacheTTL != 10*time.Minute {
		t.Errorf("WEATHER_CACHE_TTL = %v, want 10m", s.CacheTTL)
	}
	if s.WeatherKey.Ref == nil || s.WeatherKey.Ref.Name != "weather-api-key" {
		t.Errorf("WEATHER_API_KEY not parsed as a reference: %+v", s.WeatherKey)
	}
	if s.CallerDeadline != 5*time.Minute {
		t.Errorf("deadline without host.json = %v, want 5m", s.CallerDeadline)
	}
}

// The default App ID URI and scope come from the parsed (lower-cased) client
// ID: Entra writes GUIDs in lower case in aud.
func TestParseSettingsUpperCaseClientID(t *testing.T) {
	env := goodEnv()
	env["API_CLIENT_ID"] = "4F2B1A67-B05D-40B4-8CBA-249594F8AFC3"
	s, err := parseSettings(getenvFrom(env))
	if err != nil {
		t.Fatal(err)
	}
	if want := "api://4f2b1a67-b05d-40b4-8cba-249594f8afc3"; s.APIAppIDURI != want || s.CallerScope != want+"/.default" {
		t.Errorf("App ID URI %q, scope %q; want %q and its /.default", s.APIAppIDURI, s.CallerScope, want)
	}
}

func TestParseSettingsTargetFromWebsiteHostname(t *testing.T) {
	env := goodEnv()
	delete(env, "CALLER_TARGET_URL")
	env["WEBSITE_HOSTNAME"] = "myapp.azurewebsites.net"
	s, err := parseSettings(getenvFrom(env))
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://myapp.azurewebsites.net/api/WeatherHttp"; s.CallerTargetURL != want {
		t.Errorf("CALLER_TARGET_URL = %q, want %q", s.CallerTargetURL, want)
	}
}

// Every misconfiguration is reported at once, one line per problem, naming the
// setting and never its value.
func TestParseSettingsErrors(t *testing.T) {
	tests := []struct {
		name    string
		change  map[string]string
		setting string
	}{
		{"missing port", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": ""}, "FUNCTIONS_CUSTOMHANDLER_PORT"},
		{"bad port", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "70000"}, "FUNCTIONS_CUSTOMHANDLER_PORT"},
		{"tenant not a GUID", map[string]string{"AZURE_TENANT_ID": "contoso.onmicrosoft.com"}, "AZURE_TENANT_ID"},
		{"authority over http", map[string]string{"AZURE_AUTHORITY_HOST": "http://login.example.com"}, "AZURE_AUTHORITY_HOST"},
		{"authority relative", map[string]string{"AZURE_AUTHORITY_HOST": "login.microsoftonline.com"}, "AZURE_AUTHORITY_HOST"},
		{"authority with a path", map[string]string{"AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/contoso"}, "AZURE_AUTHORITY_HOST"},
		{"authority with credentials", map[string]string{"AZURE_AUTHORITY_HOST": "https://user:pw@login.example.com"}, "AZURE_AUTHORITY_HOST"},
		{"missing API client", map[string]string{"API_CLIENT_ID": ""}, "API_CLIENT_ID"},
		{"missing weather key", map[string]string{"WEATHER_API_KEY": ""}, "WEATHER_API_KEY"},
		{"malformed reference", map[string]string{"WEATHER_API_KEY": "@Microsoft.KeyVault(SecretName=x)"}, "WEATHER_API_KEY"},
		{"reference to an http vault", map[string]string{"WEATHER_API_KEY": "@Microsoft.KeyVault(SecretUri=http://127.0.0.1:8443/secrets/k)"}, "WEATHER_API_KEY"},
		{"key with a space", map[string]string{"WEATHER_API_KEY": "abcd efgh"}, "WEATHER_API_KEY"},
		{"weather over http", map[string]string{"WEATHER_API_BASE_URL": "http://api.openweathermap.org"}, "WEATHER_API_BASE_URL"},
		{"ttl too short", map[string]string{"WEATHER_CACHE_TTL": "10ms"}, "WEATHER_CACHE_TTL"},
		{"ttl not a duration", map[string]string{"WEATHER_CACHE_TTL": "ten"}, "WEATHER_CACHE_TTL"},
		{"rate limit zero", map[string]string{"WEATHER_RATE_LIMIT": "0"}, "WEATHER_RATE_LIMIT"},
		{"rate limit not a number", map[string]string{"WEATHER_RATE_LIMIT": "sixty"}, "WEATHER_RATE_LIMIT"},
		{"unknown credential", map[string]string{"CALLER_CREDENTIAL": "password"}, "CALLER_CREDENTIAL"},
		{"missing caller secret", map[string]string{"CALLER_CLIENT_SECRET": ""}, "CALLER_CLIENT_SECRET"},
		{"C08 scope without /.default", map[string]string{"CALLER_SCOPE": "api://11111111-2222-3333-4444-555555555555"}, "CALLER_SCOPE"},
		{"C08 scope User.Read", map[string]string{"CALLER_SCOPE": "User.Read"}, "CALLER_SCOPE"},
		{"no target", map[string]string{"CALLER_TARGET_URL": ""}, "CALLER_TARGET_URL"},
		{"empty cities", map[string]string{"CALLER_CITIES": " , "}, "CALLER_CITIES"},
		{"identity without header", map[string]string{"IDENTITY_ENDPOINT": "http://localhost:8081/msi/token"}, "IDENTITY_HEADER"},
		{"user identity not a GUID", map[string]string{"AZURE_CLIENT_ID": "my-identity"}, "AZURE_CLIENT_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := goodEnv()
			for k, v := range tt.change {
				env[k] = v
			}
			_, err := parseSettings(getenvFrom(env))
			if err == nil {
				t.Fatalf("parseSettings accepted %v", tt.change)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 {
				t.Errorf("want one problem line, got %q", lines)
			}
			if !strings.Contains(lines[0], tt.setting) {
				t.Errorf("error %q does not name %s", lines[0], tt.setting)
			}
			for _, v := range tt.change {
				if len(v) > 4 && strings.Contains(err.Error(), v) {
					t.Errorf("error %q shows the setting's value", err)
				}
			}
		})
	}
}

func TestParseSettingsAllProblemsAtOnce(t *testing.T) {
	_, err := parseSettings(getenvFrom(map[string]string{}))
	if err == nil {
		t.Fatal("empty environment accepted")
	}
	for _, name := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "AZURE_TENANT_ID", "API_CLIENT_ID", "WEATHER_API_KEY", "CALLER_CLIENT_ID", "CALLER_TARGET_URL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

// A plain value (what the platform hands over after resolving a reference) is
// accepted as the secret itself.
func TestParseSettingsPlainSecret(t *testing.T) {
	env := goodEnv()
	env["WEATHER_API_KEY"] = "0123456789abcdef0123456789abcdef"
	s, err := parseSettings(getenvFrom(env))
	if err != nil {
		t.Fatal(err)
	}
	if s.WeatherKey.Ref != nil || s.WeatherKey.Value.Reveal() != env["WEATHER_API_KEY"] {
		t.Errorf("plain WEATHER_API_KEY not taken as the value")
	}
}

func TestFunctionDeadline(t *testing.T) {
	tests := []struct {
		timeout string
		want    time.Duration
	}{
		{"00:05:00", 4*time.Minute + 30*time.Second},
		{"00:00:30", 25 * time.Second},
		{"00:30:00", 27 * time.Minute},
		{"1.00:00:00", 24*time.Hour - 144*time.Minute},
		{"-1", 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.timeout, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "host.json"), []byte(`{"version":"2.0","functionTimeout":"`+tt.timeout+`"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			env := goodEnv()
			env["FUNCTIONS_APP_ROOT_PATH"] = dir
			s, err := parseSettings(getenvFrom(env))
			if err != nil {
				t.Fatal(err)
			}
			if s.CallerDeadline != tt.want {
				t.Errorf("deadline = %v, want %v", s.CallerDeadline, tt.want)
			}
		})
	}
}
