// Package caller is the CallerTimer daemon's logic: on each tick it gets an
// access token for the weather API with MSAL (OAuth 2.0 client credentials,
// scope "<api>/.default"), calls the API once per configured city with it, and
// reports each city's outcome as log lines and a summary for the Functions host.
//
// What it owns: building the MSAL confidential client with one of three
// credentials (CALLER_CREDENTIAL): a federated credential, where MSAL's
// assertion callback presents the managed identity's token for
// api://AzureADTokenExchange as client_assertion, so no secret exists; a
// certificate (PEM or base64 PFX from Key Vault) that signs MSAL's client
// assertions; or a client secret. The client is built lazily, once the secret
// or certificate has been resolved from Key Vault, and again when it rotates.
// Also:
// token reuse through MSAL's cache (one token request per token lifetime, case
// C10), keeping MSAL away from Microsoft's instance discovery when the
// authority host is not a Microsoft cloud (case C09), telling configuration
// errors (AADSTS invalid_client, invalid_scope, unauthorized_client,
// invalid_resource, unknown tenant) apart from transient ones and naming the
// setting to fix, retrying transient failures of the token request and of
// each API call (network errors, 408, 429, 5xx) with full-jitter exponential
// backoff and Retry-After inside the tick's deadline (RetryPolicy), sharing
// one token request among concurrent callers, calling cities with bounded
// concurrency, starting a trace for a tick the host sent none for, and
// reading the API's JSON replies.
//
// What it does not own: the timer protocol of the Functions host (package
// funcs turns a Report into the invocation reply), reading settings (cmd/handler),
// resolving the secret (package secrets), and validating tokens (the API side).
// Configuration errors (ErrConfig) and the API's 401 and 403 are never
// retried. MSAL's confidential client makes one HTTP request per attempt (it
// has no retry of its own), so attempts are not multiplied.
//
// The access token, the client secret, the certificate's key and the
// managed identity's token never appear in a log line, an error
// or a Report: tokens are secrets.Secret values, MSAL's errors (whose text
// embeds the authority's response body) are replaced by short ones built from
// the body's error code.
package caller
