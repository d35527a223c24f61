package main

import (
	"strings"
	"testing"
	"time"
)

// The daemon's credential settings, the refresh interval, and every
// malformed Key Vault reference form: each problem is one line naming the
// setting, never the value.
func TestParseSettingsCredentials(t *testing.T) {
	const pemText = "-----BEGIN " + "PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
	tests := []struct {
		name    string
		change  map[string]string
		setting string // "" = accepted
		check   func(t *testing.T, s settings)
	}{
		{name: "managed identity is the default", change: map[string]string{"CALLER_CREDENTIAL": "", "CALLER_CLIENT_SECRET": "",
			"IDENTITY_ENDPOINT": "http://127.0.0.1:41000/msi/token", "IDENTITY_HEADER": "h"},
			check: func(t *testing.T, s settings) {
				if s.CallerCredential != "managed-identity" || s.CallerSecret.Ref != nil || !s.ManagedIdentity {
					t.Errorf("credential %q, secret %+v", s.CallerCredential, s.CallerSecret)
				}
			}},
		{name: "managed identity with a user-assigned identity", change: map[string]string{"CALLER_CREDENTIAL": "managed-identity",
			"IDENTITY_ENDPOINT": "http://127.0.0.1:41000/msi/token", "IDENTITY_HEADER": "h", "AZURE_CLIENT_ID": "A1B2C3D4-0000-4000-8000-000000000001"},
			check: func(t *testing.T, s settings) {
				if s.AzureClientID != "a1b2c3d4-0000-4000-8000-000000000001" {
					t.Errorf("AZURE_CLIENT_ID = %q", s.AzureClientID)
				}
			}},
		{name: "managed identity without IDENTITY_ENDPOINT (func start)", change: map[string]string{"CALLER_CREDENTIAL": "managed-identity"}, setting: "CALLER_CREDENTIAL"},
		{name: "certificate reference", change: map[string]string{"CALLER_CREDENTIAL": "certificate",
			"CALLER_CLIENT_CERTIFICATE": "@Microsoft.KeyVault(VaultName=myvault;SecretName=caller-certificate)"},
			check: func(t *testing.T, s settings) {
				if s.CallerCertificate.Ref == nil || s.CallerCertificate.Ref.Name != "caller-certificate" || s.CallerCertificate.Name != "CALLER_CLIENT_CERTIFICATE" {
					t.Errorf("certificate %+v", s.CallerCertificate)
				}
			}},
		{name: "certificate resolved by the platform (PEM with line breaks)", change: map[string]string{"CALLER_CREDENTIAL": "certificate", "CALLER_CLIENT_CERTIFICATE": pemText},
			check: func(t *testing.T, s settings) {
				if s.CallerCertificate.Ref != nil || s.CallerCertificate.Value.Reveal() != pemText {
					t.Error("the PEM value was not taken as is")
				}
			}},
		{name: "certificate missing", change: map[string]string{"CALLER_CREDENTIAL": "certificate"}, setting: "CALLER_CLIENT_CERTIFICATE"},
		{name: "certificate malformed reference", change: map[string]string{"CALLER_CREDENTIAL": "certificate",
			"CALLER_CLIENT_CERTIFICATE": "@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/certificates/caller)"}, setting: "CALLER_CLIENT_CERTIFICATE"},
		{name: "refresh interval default", check: func(t *testing.T, s settings) {
			if s.RefreshInterval != time.Hour {
				t.Errorf("KEYVAULT_REFRESH_INTERVAL = %v, want 1h", s.RefreshInterval)
			}
		}},
		{name: "refresh interval set", change: map[string]string{"KEYVAULT_REFRESH_INTERVAL": "15m"}, check: func(t *testing.T, s settings) {
			if s.RefreshInterval != 15*time.Minute {
				t.Errorf("KEYVAULT_REFRESH_INTERVAL = %v", s.RefreshInterval)
			}
		}},
		{name: "refresh interval too short", change: map[string]string{"KEYVAULT_REFRESH_INTERVAL": "10s"}, setting: "KEYVAULT_REFRESH_INTERVAL"},
		{name: "refresh interval too long", change: map[string]string{"KEYVAULT_REFRESH_INTERVAL": "48h"}, setting: "KEYVAULT_REFRESH_INTERVAL"},
		{name: "refresh interval not a duration", change: map[string]string{"KEYVAULT_REFRESH_INTERVAL": "hourly"}, setting: "KEYVAULT_REFRESH_INTERVAL"},
	}
	malformed := []string{
		"@Microsoft.KeyVault(SecretUri=)",
		"@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/keys/weather-api-key)",
		"@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/weather_api_key)",
		"@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/weather-api-key/not-a-version!)",
		"@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/weather-api-key?api-version=7.4)",
		"@Microsoft.KeyVault(SecretUri=ftp://myvault.vault.azure.net/secrets/weather-api-key)",
		"@Microsoft.KeyVault(VaultName=myvault)",
		"@Microsoft.KeyVault(SecretName=weather-api-key)",
		"@Microsoft.KeyVault(VaultName=my_vault;SecretName=weather-api-key)",
		"@Microsoft.KeyVault(VaultName=myvault;SecretName=weather-api-key;SecretVersion=)",
		"@Microsoft.KeyVault(VaultName=myvault;SecretName=weather-api-key;Version=abc)",
		"@Microsoft.KeyVault(VaultName=myvault;SecretName=a;SecretName=b)",
		"@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/x;VaultName=myvault)",
		"@Microsoft.KeyVault(VaultName=myvault;SecretName=weather-api-key",
		"@Microsoft.KeyVault",
	}
	for _, ref := range malformed {
		tests = append(tests, struct {
			name    string
			change  map[string]string
			setting string
			check   func(t *testing.T, s settings)
		}{name: "malformed " + ref, change: map[string]string{"WEATHER_API_KEY": ref}, setting: "WEATHER_API_KEY"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := goodEnv()
			for k, v := range tt.change {
				if v == "" {
					delete(env, k)
					continue
				}
				env[k] = v
			}
			s, err := parseSettings(getenvFrom(env))
			if tt.setting == "" {
				if err != nil {
					t.Fatalf("parseSettings: %v", err)
				}
				if tt.check != nil {
					tt.check(t, s)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %v", tt.change)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "setting "+tt.setting+" ") {
				t.Errorf("want one line naming %s, got %q", tt.setting, lines)
			}
			for k, v := range tt.change {
				// The names of non-secret choices and the bare marker (part of
				// the syntax the message shows) may appear.
				if k != "CALLER_CREDENTIAL" && v != "@Microsoft.KeyVault" && strings.Contains(err.Error(), v) {
					t.Errorf("error %q shows the setting's value", err)
				}
			}
			if strings.Contains(err.Error(), "myvault") || strings.Contains(err.Error(), "weather-api-key)") {
				t.Errorf("error %q echoes the reference", err)
			}
		})
	}
}
