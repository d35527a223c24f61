package secrets

import (
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	const ver = "ec96f02080254f109c51a1f14cdb1931"
	long := strings.Repeat("a", 127)
	tests := []struct {
		name    string
		in      string
		want    Reference
		isRef   bool
		wantErr bool
	}{
		// SecretUri form.
		{name: "SecretUri with version", in: "@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/" + ver + ")",
			want: Reference{"https://myvault.vault.azure.net", "mysecret", ver}, isRef: true},
		{name: "SecretUri with version and trailing slash", in: "@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/" + ver + "/)",
			want: Reference{"https://myvault.vault.azure.net", "mysecret", ver}, isRef: true},
		{name: "SecretUri without version", in: "@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret)",
			want: Reference{"https://myvault.vault.azure.net", "mysecret", ""}, isRef: true},
		{name: "SecretUri without version, trailing slash", in: "@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/)",
			want: Reference{"https://myvault.vault.azure.net", "mysecret", ""}, isRef: true},
		{name: "marker and parameter names in any case, host lower-cased, name kept", in: "@microsoft.keyvault(secreturi=HTTPS://MyVault.Vault.Azure.NET/Secrets/Weather-Api-Key)",
			want: Reference{"https://myvault.vault.azure.net", "Weather-Api-Key", ""}, isRef: true},
		{name: "surrounding spaces", in: "  @Microsoft.KeyVault( SecretUri = https://v12.vault.azure.net/secrets/x )\n",
			want: Reference{"https://v12.vault.azure.net", "x", ""}, isRef: true},
		{name: "sovereign cloud host", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.cn/secrets/x)",
			want: Reference{"https://v12.vault.azure.cn", "x", ""}, isRef: true},
		{name: "loopback https with port", in: "@Microsoft.KeyVault(SecretUri=https://127.0.0.1:8443/secrets/x)",
			want: Reference{"https://127.0.0.1:8443", "x", ""}, isRef: true},
		{name: "loopback http 127.0.0.1", in: "@Microsoft.KeyVault(SecretUri=http://127.0.0.1:8080/secrets/x/" + ver + ")",
			want: Reference{"http://127.0.0.1:8080", "x", ver}, isRef: true},
		{name: "loopback http 127.8.9.10", in: "@Microsoft.KeyVault(SecretUri=http://127.8.9.10/secrets/x)",
			want: Reference{"http://127.8.9.10", "x", ""}, isRef: true},
		{name: "loopback http localhost", in: "@Microsoft.KeyVault(SecretUri=http://LocalHost:1/secrets/x)",
			want: Reference{"http://localhost:1", "x", ""}, isRef: true},
		{name: "loopback http ::1", in: "@Microsoft.KeyVault(SecretUri=http://[::1]:1234/secrets/x)",
			want: Reference{"http://[::1]:1234", "x", ""}, isRef: true},
		{name: "name of 127 characters", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/" + long + ")",
			want: Reference{"https://v12.vault.azure.net", long, ""}, isRef: true},

		// VaultName form.
		{name: "VaultName and SecretName", in: "@Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret)",
			want: Reference{"https://myvault.vault.azure.net", "mysecret", ""}, isRef: true},
		{name: "VaultName with SecretVersion", in: "@Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret;SecretVersion=" + ver + ")",
			want: Reference{"https://myvault.vault.azure.net", "mysecret", ver}, isRef: true},
		{name: "VaultName, other order, spaces, any case, trailing semicolon", in: "@Microsoft.KeyVault( secretname = mysecret ; VAULTNAME = My-Vault-01 ; )",
			want: Reference{"https://my-vault-01.vault.azure.net", "mysecret", ""}, isRef: true},

		// Plain values.
		{name: "plain value", in: "0123456789abcdef0123456789abcdef"},
		{name: "empty", in: ""},
		{name: "marker not at the start", in: "key@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/x)"},
		{name: "a secret URL alone is a plain value", in: "https://v12.vault.azure.net/secrets/x"},
		{name: "shorter than the marker", in: "@Microsoft"},

		// Malformed references: recognized, refused.
		{name: "marker without parentheses", in: "@Microsoft.KeyVault", isRef: true, wantErr: true},
		{name: "marker with other text", in: "@Microsoft.KeyVaultSecretUri=https://v12.vault.azure.net/secrets/x", isRef: true, wantErr: true},
		{name: "empty parentheses", in: "@Microsoft.KeyVault()", isRef: true, wantErr: true},
		{name: "missing closing parenthesis", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/x", isRef: true, wantErr: true},
		{name: "SecretUri empty", in: "@Microsoft.KeyVault(SecretUri=)", isRef: true, wantErr: true},
		{name: "parameter without value", in: "@Microsoft.KeyVault(SecretUri)", isRef: true, wantErr: true},
		{name: "no secret name", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/)", isRef: true, wantErr: true},
		{name: "no secrets segment", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/mysecret)", isRef: true, wantErr: true},
		{name: "no path", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net)", isRef: true, wantErr: true},
		{name: "keys, not secrets", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/keys/x)", isRef: true, wantErr: true},
		{name: "extra path segment", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/x/" + ver + "/extra)", isRef: true, wantErr: true},
		{name: "path prefix before secrets", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/p/secrets/x)", isRef: true, wantErr: true},
		{name: "empty name segment", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets//" + ver + ")", isRef: true, wantErr: true},
		{name: "two trailing slashes", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/x//)", isRef: true, wantErr: true},
		{name: "http for a non-loopback vault", in: "@Microsoft.KeyVault(SecretUri=http://myvault.vault.azure.net/secrets/x)", isRef: true, wantErr: true},
		{name: "http for localhost. (a DNS name)", in: "@Microsoft.KeyVault(SecretUri=http://localhost./secrets/x)", isRef: true, wantErr: true},
		{name: "http for x.localhost", in: "@Microsoft.KeyVault(SecretUri=http://x.localhost/secrets/x)", isRef: true, wantErr: true},
		{name: "http for 127.0.0.1.nip.io", in: "@Microsoft.KeyVault(SecretUri=http://127.0.0.1.nip.io/secrets/x)", isRef: true, wantErr: true},
		{name: "http for 10.0.0.1", in: "@Microsoft.KeyVault(SecretUri=http://10.0.0.1/secrets/x)", isRef: true, wantErr: true},
		{name: "ftp scheme", in: "@Microsoft.KeyVault(SecretUri=ftp://v12.vault.azure.net/secrets/x)", isRef: true, wantErr: true},
		{name: "relative URI", in: "@Microsoft.KeyVault(SecretUri=/secrets/x)", isRef: true, wantErr: true},
		{name: "no scheme", in: "@Microsoft.KeyVault(SecretUri=v12.vault.azure.net/secrets/x)", isRef: true, wantErr: true},
		{name: "query", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/x?api-version=7.4)", isRef: true, wantErr: true},
		{name: "empty query", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/x?)", isRef: true, wantErr: true},
		{name: "fragment", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/x#frag)", isRef: true, wantErr: true},
		{name: "empty fragment", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/x#)", isRef: true, wantErr: true},
		{name: "user info", in: "@Microsoft.KeyVault(SecretUri=https://u:hunter2@v12.vault.azure.net/secrets/x)", isRef: true, wantErr: true},
		{name: "underscore in name", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/my_secret)", isRef: true, wantErr: true},
		{name: "dot in name", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/my.secret)", isRef: true, wantErr: true},
		{name: "escaped slash in name", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/my%2Fsecret)", isRef: true, wantErr: true},
		{name: "escaped space in name", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/my%20secret)", isRef: true, wantErr: true},
		{name: "non-ASCII name", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/sécret)", isRef: true, wantErr: true},
		{name: "name of 128 characters", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/" + long + "a)", isRef: true, wantErr: true},
		{name: "hyphen in version", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/x/v-1)", isRef: true, wantErr: true},
		{name: "empty host", in: "@Microsoft.KeyVault(SecretUri=https:///secrets/x)", isRef: true, wantErr: true},
		{name: "VaultName without SecretName", in: "@Microsoft.KeyVault(VaultName=myvault)", isRef: true, wantErr: true},
		{name: "SecretName without VaultName", in: "@Microsoft.KeyVault(SecretName=mysecret)", isRef: true, wantErr: true},
		{name: "SecretVersion alone", in: "@Microsoft.KeyVault(SecretVersion=" + ver + ")", isRef: true, wantErr: true},
		{name: "empty SecretVersion", in: "@Microsoft.KeyVault(VaultName=myvault;SecretName=x;SecretVersion=)", isRef: true, wantErr: true},
		{name: "empty SecretName", in: "@Microsoft.KeyVault(VaultName=myvault;SecretName=)", isRef: true, wantErr: true},
		{name: "VaultName with a dot", in: "@Microsoft.KeyVault(VaultName=my.vault;SecretName=x)", isRef: true, wantErr: true},
		{name: "VaultName as a host", in: "@Microsoft.KeyVault(VaultName=myvault.vault.azure.net;SecretName=x)", isRef: true, wantErr: true},
		{name: "VaultName too short", in: "@Microsoft.KeyVault(VaultName=ab;SecretName=x)", isRef: true, wantErr: true},
		{name: "VaultName starting with a digit", in: "@Microsoft.KeyVault(VaultName=1vault;SecretName=x)", isRef: true, wantErr: true},
		{name: "VaultName with double hyphen", in: "@Microsoft.KeyVault(VaultName=my--vault;SecretName=x)", isRef: true, wantErr: true},
		{name: "SecretName with a slash", in: "@Microsoft.KeyVault(VaultName=myvault;SecretName=a/b)", isRef: true, wantErr: true},
		{name: "SecretUri with VaultName", in: "@Microsoft.KeyVault(SecretUri=https://v12.vault.azure.net/secrets/x;VaultName=myvault)", isRef: true, wantErr: true},
		{name: "unknown parameter", in: "@Microsoft.KeyVault(VaultName=myvault;SecretName=x;Tenant=y)", isRef: true, wantErr: true},
		{name: "repeated parameter", in: "@Microsoft.KeyVault(VaultName=myvault;VaultName=other;SecretName=x)", isRef: true, wantErr: true},
		{name: "empty parameter in the middle", in: "@Microsoft.KeyVault(VaultName=myvault;;SecretName=x)", isRef: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, isRef, err := ParseReference(tt.in)
			if isRef != tt.isRef {
				t.Fatalf("isRef = %v, want %v (err %v)", isRef, tt.isRef, err)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error echoes the input: %v", err)
			}
		})
	}
}

func TestReferenceString(t *testing.T) {
	tests := []struct {
		name string
		ref  Reference
		want string
	}{
		{"latest", Reference{"https://myvault.vault.azure.net", "name", ""}, "https://myvault.vault.azure.net/secrets/name"},
		{"versioned", Reference{"https://myvault.vault.azure.net", "name", "abc"}, "https://myvault.vault.azure.net/secrets/name/abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ref.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsLoopbackHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true}, {"127.255.255.254", true}, {"::1", true}, {"localhost", true}, {"LOCALHOST", true},
		{"::ffff:127.0.0.1", true}, // IPv4-mapped loopback is loopback
		{"myvault.vault.azure.net", false}, {"vault.azure.net", false}, {"localhost.", false}, {"x.localhost", false},
		{"localhost.evil.example", false}, {"127.0.0.1.nip.io", false}, {"evil-localhost", false},
		{"0.0.0.0", false}, {"::", false}, {"10.0.0.1", false}, {"128.0.0.1", false}, {"", false}, {"[::1]", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := isLoopbackHost(tt.host); got != tt.want {
				t.Errorf("isLoopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

// FuzzParseReference: no panic; a plain value never has an error; a parsed
// reference is valid and round-trips through its SecretUri form.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/ec96f02080254f109c51a1f14cdb1931)",
		"@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/)",
		"@Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret;SecretVersion=abc)",
		"@Microsoft.KeyVault(SecretUri=http://[::1]:1/secrets/x)",
		"@microsoft.keyvault(secreturi=https://u@h/secrets/x?q#f)",
		"@Microsoft.KeyVault(",
		"plain",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, isRef, err := ParseReference(s)
		if !isRef {
			if err != nil {
				t.Fatalf("plain value with error %v", err)
			}
			if ref != (Reference{}) {
				t.Fatalf("plain value with a reference %+v", ref)
			}
			trimmed := strings.TrimSpace(s)
			if len(trimmed) >= len(refMarker) && strings.EqualFold(trimmed[:len(refMarker)], refMarker) {
				t.Fatalf("%q starts like a reference but isRef = false", s)
			}
			return
		}
		if err != nil {
			if ref != (Reference{}) {
				t.Fatalf("error %v with a reference %+v", err, ref)
			}
			return
		}
		if !validSecretName(ref.Name) || (ref.Version != "" && !validVersion(ref.Version)) {
			t.Fatalf("invalid name or version accepted: %+v", ref)
		}
		if _, err := checkVaultURL(ref.VaultURL); err != nil && !strings.HasPrefix(ref.VaultURL, "http://") {
			t.Fatalf("vault URL %q not accepted by Resolve: %v", ref.VaultURL, err)
		}
		again, isRef2, err := ParseReference("@Microsoft.KeyVault(SecretUri=" + ref.String() + ")")
		if err != nil || !isRef2 || again != ref {
			t.Fatalf("round trip of %+v: %+v, %v, %v", ref, again, isRef2, err)
		}
	})
}
