// Package secrets owns every secret the handler holds: the redacted Secret
// type, the Cell that receives a secret resolved after start-up, and the
// resolution of Azure App Service Key Vault references with azsecrets and an
// azidentity credential (managed identity in Azure, the Azure CLI elsewhere).
//
// ParseReference recognizes both reference forms (SecretUri=…, and
// VaultName=…;SecretName=…[;SecretVersion=…]) and treats anything that starts
// like a reference as one, so an unresolved or malformed reference is never
// mistaken for the secret. Resolver.Resolve reads one secret; Resolver.Keep
// retries in the background until the secret is in its Cell; a Watcher
// (Resolver.Watch) does what Keep does and then re-reads a versionless
// reference on a schedule (KEYVAULT_REFRESH_INTERVAL, default 1 h) and on
// request (Refresh: OpenWeatherMap refused the key), so a rotated secret
// heals without a restart; a versioned reference is read once. Errors name the
// vault host and the secret, carry Key Vault's status and error code (and, for
// a 403, which identity asked from which address), and say what to do; no
// error or log line carries a secret or a token.
//
// The one relaxed check: azsecrets verifies that the resource named in a
// vault's 401 challenge belongs to the vault's domain. That cannot hold for a
// vault on a loopback address (the offline stack's stand-in), so the check is
// switched off for loopback vault hosts (127.0.0.0/8, ::1, "localhost") and for
// no other host. TLS is never relaxed: an http vault URL parses (for loopback
// hosts) but Resolve refuses it, since tokens travel only over https.
//
// Not done here: reading the environment (cmd/handler decides whether the
// managed identity is available and passes AZURE_CLIENT_ID) and parsing
// certificates (a PEM or PFX secret is returned as its text; package caller
// parses it).
package secrets
