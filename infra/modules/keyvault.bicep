// Key Vault with RBAC authorization (no access policies) holding the
// OpenWeatherMap key. Public network access stays on: Flex Consumption cannot
// resolve Key Vault references to a network-restricted vault (DESIGN section
// 7), so RBAC is the gate.
param name string
param location string
param tags object

@description('Object (principal) ID of the managed identity granted Key Vault Secrets User.')
param principalId string

@secure()
@description('The OpenWeatherMap key; empty keeps the secret already in the vault.')
param weatherApiKey string

param weatherKeySecretName string

// Key Vault Secrets User: read secret values, nothing else.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource weatherKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(weatherApiKey)) {
  parent: vault
  name: weatherKeySecretName
  properties: {
    value: weatherApiKey
    contentType: 'text/plain'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
