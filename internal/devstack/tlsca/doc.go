// Package tlsca is the offline stack's locally trusted certificate authority.
// The Entra ID and Key Vault stand-ins speak HTTPS (MSAL and the Key Vault SDK
// require it); the handler trusts them the ordinary way, through a CA file named
// by SSL_CERT_FILE, so no TLS check is ever switched off. The CA lives only in
// memory and in the file the stack writes for one run.
package tlsca
