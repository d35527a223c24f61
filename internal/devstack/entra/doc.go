// Package entra is the offline stack's Microsoft Entra ID stand-in: one
// tenant's OpenID Connect metadata (v1 and v2), its signing keys (JWKS) and
// its OAuth 2.0 token endpoint for the client-credentials grant, served over
// HTTPS from a throwaway local CA (MSAL refuses plain HTTP authorities).
//
// It speaks the real wire shapes: the discovery documents carry the field set
// of the recorded Microsoft documents with this server's URLs, the keys
// document carries kty/use/kid/x5t/n/e/x5c and the per-key issuer property
// (templated with "{tenantid}" like the real 2024-10 document), access tokens
// are RS256 JWTs shaped like Entra's v2 (or v1) app-only tokens, and errors are
// Entra's JSON error bodies with an AADSTS code, a multi-line
// error_description, trace and correlation IDs.
//
// What it owns: issuing tokens to registered confidential clients for one
// protected API. A client authenticates in one of the three ways Entra offers
// a daemon: a client secret (compared in constant time); a client assertion
// signed with a registered certificate's key (private_key_jwt: x5t#S256 or
// x5t header, RS256 or PS256, aud the token endpoint, iss = sub = client ID,
// exp, jti); or a federated credential, a managed identity's token for
// api://AzureADTokenExchange (minted by MintFederated, signed with this
// stand-in's key) whose iss, sub and aud match one of the client's
// FederatedCredentials (DESIGN §9). It also mints arbitrary tokens for tests
// (Server.Mint).
//
// What it does not do: interactive flows (authorize endpoint is advertised but
// not served), refresh tokens, multiple tenants, key rotation, federated
// credentials for issuers other than itself (their keys are out of reach
// offline), jti replay detection, SNI (x5c) certificate trust, or consent. It
// is never linked into the handler binary.
//
// AADSTS codes and texts: AADSTS7000215 (wrong secret) and AADSTS700016
// (unknown client) follow recorded or attested bodies; AADSTS1002012 (scope
// without /.default), AADSTS700027 (assertion signed by an unregistered
// key), AADSTS70021 (no matching federated identity record) and AADSTS700024
// (assertion outside its valid time range) follow attested message texts
// (testdata/aadsts_assertion_messages_attested.txt). The other assertion
// errors are marked NOTE in errors.go. The remaining codes
// (AADSTS900144 missing parameter, AADSTS9000411 duplicated parameter,
// AADSTS7000218 no credential, AADSTS70003 unsupported grant, AADSTS70011
// invalid scope, AADSTS500011 unknown resource, AADSTS90002 unknown tenant)
// use Entra's codes with message texts written from memory of public reports;
// their wording is not attested.
package entra
