// Package identity is the offline stack's stand-in for the App Service /
// Azure Functions managed-identity endpoint (IDENTITY_ENDPOINT with
// X-IDENTITY-HEADER, api-version 2019-08-01), the endpoint azidentity's
// ManagedIdentityCredential calls in Azure.
//
// It answers GET /msi/token?resource=…&api-version=2019-08-01[&client_id=…]
// with the documented body (expires_on in epoch seconds as a string) and the
// endpoint's real 400 body shape for a wrong header or an unknown identity. It
// issues random opaque tokens (or whatever Options.Mint makes: the offline
// stack has the Entra stand-in sign the token for api://AzureADTokenExchange,
// with the identity's principal ID as subject) and remembers
// them, so that another stand-in can ask Valid whether a bearer token came from
// here for a given resource.
//
// It does not implement the older 2017-09-01 protocol (the "secret" header),
// IMDS, or resource-ID (mi_res_id) selection, and it signs nothing itself.
// Plain HTTP is correct: the real endpoint is http://localhost.
package identity
