// The one user-assigned managed identity of the app: it reads Key Vault
// references, reaches host and deployment storage, publishes telemetry, and
// is the subject the daemon's federated credential trusts.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
