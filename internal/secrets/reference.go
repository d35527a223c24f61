package secrets

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/weatherfunc/handler/internal/netcheck"
)

// Reference is a parsed App Service Key Vault reference: which secret of which
// vault an app setting stands for. It holds no secret.
type Reference struct {
	// VaultURL is the vault's base URL: scheme and host[:port], lower case,
	// no path ("https://myvault.vault.azure.net").
	VaultURL string
	// Name is the secret's name (1-127 of [0-9a-zA-Z-]).
	Name string
	// Version is the secret's version; "" means the latest one.
	Version string
}

// String returns the secret's identifier, e.g.
// "https://myvault.vault.azure.net/secrets/name" or ".../secrets/name/version".
// It is safe to log: it names the secret, it does not contain it.
func (r Reference) String() string {
	s := r.VaultURL + "/secrets/" + r.Name
	if r.Version != "" {
		s += "/" + r.Version
	}
	return s
}

// refMarker is how every Key Vault reference starts (compared case-insensitively).
const refMarker = "@microsoft.keyvault"

// errRefSyntax is the shape every malformed reference is reported against.
var errRefSyntax = errors.New("key vault reference: want @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>[/<version>]) " +
	"or @Microsoft.KeyVault(VaultName=<vault>;SecretName=<name>[;SecretVersion=<version>])")

// ParseReference recognizes the two App Service Key Vault reference forms:
//
//	@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/name[/version][/])
//	@Microsoft.KeyVault(VaultName=v;SecretName=name[;SecretVersion=version])
//
// VaultName=v stands for https://v.vault.azure.net (the public cloud). A plain
// value yields isRef=false and a nil error. Anything that starts like a
// reference yields isRef=true, and an error when it is malformed, so that a
// broken reference is never mistaken for the secret itself (case C18).
//
// NOTE: stricter and more lenient than App Service in deliberate ways. The
// "@Microsoft.KeyVault" marker and the parameter names are matched
// case-insensitively and surrounding spaces are ignored, so that anything that
// looks like a reference is treated as one (fail closed). The SecretUri must be
// https (http only for a loopback vault host), carry no user info, query or
// fragment, and have exactly the path /secrets/<name>[/<version>]; names are
// Key Vault's 1-127 of [0-9a-zA-Z-], versions 1-64 of [0-9a-zA-Z] (Key Vault
// issues 32 hex digits); unknown or repeated parameters are errors. Error texts
// name the parameter at fault, never echo the input.
func ParseReference(s string) (ref Reference, isRef bool, err error) {
	t := strings.TrimSpace(s)
	if len(t) < len(refMarker) || !strings.EqualFold(t[:len(refMarker)], refMarker) {
		return Reference{}, false, nil
	}
	rest := t[len(refMarker):]
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") || len(rest) < 2 {
		return Reference{}, true, errRefSyntax
	}
	params, err := splitParams(rest[1 : len(rest)-1])
	if err != nil {
		return Reference{}, true, err
	}
	ref, err = fromParams(params)
	if err != nil {
		return Reference{}, true, err
	}
	return ref, true, nil
}

// The parameter names, lower case.
const (
	pSecretURI     = "secreturi"
	pVaultName     = "vaultname"
	pSecretName    = "secretname"
	pSecretVersion = "secretversion"
)

// splitParams splits "k=v;k=v[;]" into a map keyed by lower-case name.
func splitParams(body string) (map[string]string, error) {
	parts := strings.Split(body, ";")
	if len(parts) > 1 && strings.TrimSpace(parts[len(parts)-1]) == "" {
		parts = parts[:len(parts)-1] // one trailing ';' is harmless
	}
	params := make(map[string]string, len(parts))
	for _, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: a parameter is not name=value", errRefSyntax)
		}
		switch k {
		case pSecretURI, pVaultName, pSecretName, pSecretVersion:
		default:
			return nil, fmt.Errorf("%w: unknown parameter (only SecretUri, VaultName, SecretName, SecretVersion)", errRefSyntax)
		}
		if _, dup := params[k]; dup {
			return nil, fmt.Errorf("%w: parameter %s given twice", errRefSyntax, canonical(k))
		}
		if v == "" {
			return nil, fmt.Errorf("%w: %s is empty", errRefSyntax, canonical(k))
		}
		params[k] = v
	}
	return params, nil
}

func canonical(k string) string {
	switch k {
	case pSecretURI:
		return "SecretUri"
	case pVaultName:
		return "VaultName"
	case pSecretName:
		return "SecretName"
	default:
		return "SecretVersion"
	}
}

func fromParams(p map[string]string) (Reference, error) {
	if uri, ok := p[pSecretURI]; ok {
		if len(p) != 1 {
			return Reference{}, fmt.Errorf("%w: SecretUri cannot be combined with VaultName, SecretName or SecretVersion", errRefSyntax)
		}
		return parseSecretURI(uri)
	}
	vault, okV := p[pVaultName]
	name, okN := p[pSecretName]
	if !okV || !okN {
		return Reference{}, fmt.Errorf("%w: VaultName and SecretName are both required", errRefSyntax)
	}
	if !validVaultName(vault) {
		return Reference{}, fmt.Errorf("%w: VaultName must be 3-24 letters, digits and single hyphens, starting with a letter", errRefSyntax)
	}
	if !validSecretName(name) {
		return Reference{}, fmt.Errorf("%w: SecretName must be 1-127 letters, digits and hyphens", errRefSyntax)
	}
	version := p[pSecretVersion]
	if _, ok := p[pSecretVersion]; ok && !validVersion(version) {
		return Reference{}, fmt.Errorf("%w: SecretVersion must be 1-64 letters and digits", errRefSyntax)
	}
	return Reference{
		VaultURL: "https://" + strings.ToLower(vault) + ".vault.azure.net",
		Name:     name,
		Version:  version,
	}, nil
}

// parseSecretURI parses https://host[:port]/secrets/name[/version][/].
func parseSecretURI(raw string) (Reference, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return Reference{}, fmt.Errorf("%w: SecretUri is not an absolute URL", errRefSyntax)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "https":
	case scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return Reference{}, fmt.Errorf("%w: SecretUri must be https (http only for a loopback vault)", errRefSyntax)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return Reference{}, fmt.Errorf("%w: SecretUri must not carry user info, a query or a fragment", errRefSyntax)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if !strings.HasPrefix(path, "/") || len(seg) < 2 || len(seg) > 3 || !strings.EqualFold(seg[0], "secrets") {
		return Reference{}, fmt.Errorf("%w: SecretUri path must be /secrets/<name>[/<version>]", errRefSyntax)
	}
	if !validSecretName(seg[1]) {
		return Reference{}, fmt.Errorf("%w: the secret name in SecretUri must be 1-127 letters, digits and hyphens", errRefSyntax)
	}
	ref := Reference{VaultURL: scheme + "://" + strings.ToLower(u.Host), Name: seg[1]}
	if len(seg) == 3 {
		if !validVersion(seg[2]) {
			return Reference{}, fmt.Errorf("%w: the secret version in SecretUri must be 1-64 letters and digits", errRefSyntax)
		}
		ref.Version = seg[2]
	}
	return ref, nil
}

// isLoopbackHost is the project's one loopback rule (netcheck.IsLoopback).
// Only such hosts may be reached over http, and only for them is the Key
// Vault SDK's challenge-resource check relaxed.
func isLoopbackHost(host string) bool { return netcheck.IsLoopback(host) }

func validSecretName(s string) bool {
	if len(s) < 1 || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func validVersion(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// validVaultName applies Key Vault's naming rule: 3-24 characters of
// [0-9a-zA-Z-], starting with a letter, ending with a letter or digit, and no
// consecutive hyphens.
func validVaultName(s string) bool {
	if len(s) < 3 || len(s) > 24 || !isLetter(s[0]) || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool  { return isLetter(c) || '0' <= c && c <= '9' }
