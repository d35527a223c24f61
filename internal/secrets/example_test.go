package secrets_test

import (
	"fmt"

	"github.com/weatherfunc/handler/internal/secrets"
)

func ExampleParseReference() {
	for _, v := range []string{
		"@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/weather-api-key/)",
		"@Microsoft.KeyVault(VaultName=myvault;SecretName=weather-api-key;SecretVersion=ec96f02080254f109c51a1f14cdb1931)",
		"0123456789abcdef", // a plain value: the platform already resolved the reference
		"@Microsoft.KeyVault(SecretUri=http://myvault.vault.azure.net/secrets/weather-api-key)",
	} {
		ref, isRef, err := secrets.ParseReference(v)
		switch {
		case err != nil:
			fmt.Println("malformed reference")
		case isRef:
			fmt.Println(ref)
		default:
			fmt.Println("plain value")
		}
	}
	// Output:
	// https://myvault.vault.azure.net/secrets/weather-api-key
	// https://myvault.vault.azure.net/secrets/weather-api-key/ec96f02080254f109c51a1f14cdb1931
	// plain value
	// malformed reference
}
