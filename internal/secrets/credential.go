package secrets

import (
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// CredentialOptions chooses the credential that reads Key Vault.
type CredentialOptions struct {
	// ManagedIdentity selects the App Service / Functions managed identity;
	// cmd/handler sets it when IDENTITY_ENDPOINT is set. azidentity itself
	// reads IDENTITY_ENDPOINT and IDENTITY_HEADER from the process environment
	// (the library's own convention). False selects the Azure CLI credential
	// (a developer's `az login`).
	ManagedIdentity bool
	// ClientID is the client ID of a user-assigned managed identity
	// (AZURE_CLIENT_ID); "" means the system-assigned identity. Ignored for the
	// Azure CLI.
	ClientID string
	// HTTPClient carries the managed-identity token requests. Nil means
	// azcore's default transport.
	HTTPClient *http.Client
}

// NewCredential returns the managed identity credential when
// opts.ManagedIdentity is set, else the Azure CLI credential. Either is wrapped
// in an azidentity.ChainedTokenCredential, so that a failure message lists what
// was tried.
//
// It does not use DefaultAzureCredential: that chain also tries environment
// secrets and other sources, and in Azure a silent fallback from the managed
// identity to something else would hide a misconfiguration.
func NewCredential(opts CredentialOptions) (azcore.TokenCredential, error) {
	var source azcore.TokenCredential
	if opts.ManagedIdentity {
		mo := &azidentity.ManagedIdentityCredentialOptions{}
		if opts.HTTPClient != nil {
			mo.Transport = opts.HTTPClient
		}
		if opts.ClientID != "" {
			mo.ID = azidentity.ClientID(opts.ClientID)
		}
		mi, err := azidentity.NewManagedIdentityCredential(mo)
		if err != nil {
			return nil, fmt.Errorf("secrets: managed identity credential: %w", err)
		}
		source = mi
	} else {
		cli, err := azidentity.NewAzureCLICredential(nil)
		if err != nil {
			return nil, fmt.Errorf("secrets: Azure CLI credential: %w", err)
		}
		source = cli
	}
	chain, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{source}, nil)
	if err != nil {
		return nil, fmt.Errorf("secrets: credential chain: %w", err)
	}
	return chain, nil
}
