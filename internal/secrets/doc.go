// Package secrets owns every secret the handler holds: the redacted Secret
// type, the Cell that receives a secret resolved after start-up, and the
// resolution of Azure App Service Key Vault references with azsecrets and an
// azidentity credential (managed identity in Azure, the Azure CLI elsewhere).
package secrets
