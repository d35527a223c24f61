// Package netcheck holds the one rule every outbound URL in the project
// follows: https, or http only when the host is a loopback address (the
// managed-identity endpoint, the offline stand-ins). Settings, token
// validation, the weather client and the Key Vault resolver all ask here, so
// they cannot disagree about what "loopback" means.
package netcheck
