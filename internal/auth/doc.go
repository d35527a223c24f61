// Package auth validates Microsoft Entra ID access tokens for the WeatherHttp
// API and decides whether the caller may use it.
//
// It owns:
//   - loading the tenant's OpenID metadata (v2 and v1 issuers, jwks_uri) and
//     signing keys in the background, refreshing them on a schedule and, rate
//     limited, when a token names an unknown key ([Verifier.Start]);
//   - authentication: signature, algorithm, header, issuer, audience, tenant
//     and lifetime checks ([Verifier.Verify]);
//   - authorization: the app role for app-only tokens, the delegated scope for
//     user tokens ([Verifier.Authorize]);
//   - the HTTP gate that turns both into RFC 6750 replies with RFC 9457 bodies
//     ([Verifier.Middleware]).
//
// It does not own: obtaining tokens (package caller), settings parsing
// (cmd/handler), routing, or anything about what the weather API does once a
// caller is admitted. It never trusts the App Service authentication headers
// (X-MS-CLIENT-PRINCIPAL*); the token is the only gate.
//
// The shape follows coreos/go-oidc's verify.go: a configuration that fails
// closed, cheap checks before the RSA verification, an injected clock and
// exact string comparisons. Parsing and signature verification are done by
// github.com/golang-jwt/jwt/v5, key handling by github.com/MicahParks/keyfunc/v3
// and github.com/MicahParks/jwkset; this package adds the rules those
// libraries leave open by default (see the attack matrix in the tests).
package auth
