// Package keyvault is the offline stack's stand-in for the Azure Key Vault
// secrets REST API: GET /secrets/{name}[/{version}]?api-version=… over HTTPS
// (the caller serves it through tlsca), with Key Vault's bearer challenge
// first (401 with WWW-Authenticate naming the tenant's authority and the
// resource https://vault.azure.net), then the recorded 200 body shape, the
// recorded SecretNotFound 404 and Key Vault's response headers.
//
// Tokens are checked by the injected Options.Authorize (typically the
// managed-identity stand-in's Valid for https://vault.azure.net); this package
// parses no token itself. It serves reads only: no listing, writing,
// deleting, keys or certificates, and no RBAC or firewall of its own.
package keyvault
