// Package devstack runs the whole system offline: the real handler binary under
// a stand-in Functions host, next to stand-ins for Entra ID, the managed-identity
// endpoint, Key Vault and OpenWeatherMap that speak the real wire protocols
// (DESIGN §6). The handler is configured only through ordinary settings
// (AZURE_AUTHORITY_HOST, Key Vault reference URIs, IDENTITY_ENDPOINT,
// WEATHER_API_BASE_URL) and trusts the stand-ins through a local CA named by
// SSL_CERT_FILE: it has no dev mode, and nothing here weakens one of its checks.
//
// The same stack serves cmd/devstack (the one-command demo) and the
// end-to-end test.
package devstack
