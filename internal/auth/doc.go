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
// # What it checks
//
// Authorization header: scheme "Bearer" in any case; no header, another
// scheme, or a token only in the query or body → 401 without an error code;
// "Bearer" alone, two tokens, or two Authorization headers → 400
// invalid_request; a value longer than 16 KiB (plus 64 bytes for the scheme)
// → 401 invalid_token before it is split or decoded.
//
// Token (401 invalid_token on any failure, error_description naming the
// check): at most 16 KiB; three canonical base64url segments (no padding,
// no set trailing bits, no standard alphabet); alg exactly RS256 (none in
// any spelling, HS*, PS*, ES*, RS384/512 refused, whatever keys the set
// holds); kid present, 1–128 characters of [A-Za-z0-9._-]; crit, jku, x5u,
// jwk, x5c and nonce headers refused; claim names exact, no duplicates;
// ver "1.0" or "2.0" selecting issuer and audience; iss byte-equal to the
// issuer read from the tenant's v1 or v2 metadata; aud a single string equal
// to AppIDURI (v1) or ClientID (v2); tid equal to TenantID; exp present; exp,
// nbf, iat JSON numbers, with Leeway (≤ 5 min): refused from exp+Leeway on,
// before nbf−Leeway or iat−Leeway; a known kid whose published per-key
// issuer, when present, is ours; the RS256 signature by an RSA key of at
// least 2048 bits.
//
// Keys: only RSA signing keys (oct, EC, non-RS256 and private keys in the
// document are skipped); refreshed every 12 h and on an unknown kid (at most
// once per 5 min, the first always allowed, shared by concurrent misses, a
// request waiting at most 5 s); a failed refresh keeps the last good keys;
// no keys yet → 503 with Retry-After, retried at least every 10 s.
//
// Authorization (403 insufficient_scope with scope="…"): delegated (scp
// present or idtyp "user") needs RequiredScope in scp; app-only needs
// RequiredRole in roles and idtyp, when present, "app"; a token without
// azp/appid (an ID token) is refused whatever it holds.
//
// Verified-token cache: a token that passed every check is remembered by
// the SHA-256 of its whole text (Options.CacheSize entries, default 10,000,
// random eviction) and accepted again after a hash and a map lookup, with
// the same claims, until its exp (no leeway), any reload of the metadata or
// keys, or eviction; authorization still runs on every request. The token
// itself is never stored. See tokenCache for why the lookup is not a timing
// oracle.
//
// # What it does not check
//
// typ, sub, oid, the azp/appid value (logged, not matched against a list),
// acr/amr, x5t, revocation, token binding (cnf), or whether the client is
// allowed to call us beyond holding the role or scope. It never fetches a
// key named by the token and never trusts X-MS-CLIENT-PRINCIPAL* headers.
//
// The shape follows coreos/go-oidc's verify.go: a configuration that fails
// closed, cheap checks before the RSA verification, an injected clock and
// exact string comparisons. Parsing and signature verification are done by
// github.com/golang-jwt/jwt/v5, key handling by github.com/MicahParks/keyfunc/v3
// and github.com/MicahParks/jwkset; this package adds the rules those
// libraries leave open by default (see the attack matrix in the tests).
package auth
