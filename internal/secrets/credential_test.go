package secrets

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/weatherfunc/handler/internal/devstack/identity"
)

type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestNewCredentialManagedIdentityUsesHTTPClient(t *testing.T) {
	cid := randomGUID(t)
	mi := identity.New(identity.Options{Header: "h", ClientIDs: []string{cid}})
	srv := httptest.NewServer(mi.Handler())
	defer srv.Close()
	t.Setenv("IDENTITY_ENDPOINT", srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "h")
	ct := &countingTransport{}
	cred, err := NewCredential(CredentialOptions{ManagedIdentity: true, ClientID: cid, HTTPClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if !mi.Valid(tok.Token, "https://vault.azure.net") {
		t.Error("token not issued by the endpoint for the vault")
	}
	if ct.n.Load() == 0 {
		t.Error("CredentialOptions.HTTPClient was not used")
	}
}

func TestNewCredentialAzureCLIListsWhatWasTried(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no az here
	cred, err := NewCredential(CredentialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err == nil {
		t.Fatal("a token without the Azure CLI")
	}
	if !strings.Contains(err.Error(), "ChainedTokenCredential") || !strings.Contains(err.Error(), "AzureCLICredential") {
		t.Errorf("err = %v, want the chain's list naming AzureCLICredential", err)
	}
}
