// Package weather is the WeatherHttp API behind the token gate: it validates
// the query, asks OpenWeatherMap for the current weather, and answers with our
// own documented JSON (type Observation), never OpenWeatherMap's raw body.
//
// It owns:
//   - input validation (ParseQuery, DESIGN §9 "Input errors"), with a 400
//     problem+json naming every bad parameter and no upstream call;
//   - the upstream call to GET {BaseURL}/data/2.5/weather, with the key only
//     in the appid query parameter and never in an error, a log line or a
//     response (Go's *url.Error prints the whole URL; we strip it);
//   - the mapping of OpenWeatherMap's answers (including the 2014 format that
//     reports "not found" with HTTP 200) to our statuses;
//   - the cache: one upstream call per (location, units, lang) per TTL even
//     under concurrent load (singleflight), bounded size with LRU eviction,
//     stale answers when the upstream fails, a short negative cache for
//     unknown locations, and care for OpenWeatherMap's limits (a client-side
//     rate limiter and a pause after an upstream 429);
//   - the Cache-Status (RFC 9211) and Age headers that report what the cache did;
//   - HTTP semantics of the operation: GET and HEAD only, a strong ETag per
//     observation with If-None-Match → 304, and Cache-Control: private with a
//     max-age that ends when the cache entry's freshness does.
//
// The contract is documented in api/openapi.json (OpenAPI 3.1) at the root of
// the module, and the choices made where DESIGN is silent in api/README.md; a
// test checks every golden reply and every problem this package writes
// against that file.
//
// Replies. 200 carries our JSON (Content-Type application/json;
// charset=utf-8), ETag and Cache-Control; 304 the same headers without a
// body. Errors are problem+json whose type is
// https://weatherfunc.dev/problems/<slug>:
//
//	400 invalid-params         bad input (invalid-params names each parameter), or the provider refused the location
//	404 location-not-found     the provider knows no such location (remembered for NotFoundTTL)
//	405 method-not-allowed     not GET or HEAD (Allow: GET, HEAD)
//	502 upstream-credentials   the provider rejected our key (no detail to clients; an Error log line; OnCredentialsRejected)
//	502 upstream-failed        provider 5xx, unexpected status, unusable body, network failure
//	503 weather-unavailable    the key is not resolved yet (Retry-After)
//	503 upstream-rate-limited  provider 429, its Retry-After not yet passed, or our own rate limit (Retry-After)
//	503 request-canceled       the caller went away (nobody reads it)
//	504 upstream-timeout       no answer within UpstreamTimeout (or provider 504)
//
// A stale observation stands in for the 502, 503 and 504 cases while one is
// within MaxStale. Every reply to a valid query carries Cache-Status; hits
// carry Age.
//
// Choices where DESIGN is silent: units and lang are matched
// case-insensitively and lang aliases (se/sv, sp/es, ua/uk) share one code;
// no redirect from the provider is followed; beyond the rate limit we answer
// at once (503 or stale) instead of queueing; a provider Retry-After is
// honoured up to one hour.
//
// It does not own: authentication or authorization (the caller mounts
// Handler behind the token gate and passes only authorized requests), routing
// (the caller mounts Handler at Path), nor resolving the API key from Key
// Vault (it reads a secrets.Cell that someone else fills).
package weather
