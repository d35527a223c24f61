// The whole deployment of weatherfunc (DESIGN section 7), at subscription
// scope: the resource group, one user-assigned managed identity used by
// everything, identity-based storage, Key Vault with RBAC, Log Analytics and
// Application Insights with Entra ID auth only, the Entra ID app
// registrations (entra.bicep, Microsoft Graph Bicep extension) and the Flex
// Consumption function app running the custom handler.
//
//   az deployment sub create --location <region> --template-file infra/main.bicep \
//     --parameters environmentName=<name> location=<region>
//
// infra/deploy.sh runs it with the key passed safely; docs/DEPLOY.md explains
// every step.
targetScope = 'subscription'

@minLength(1)
@maxLength(24)
@description('Name of the environment (for example weatherfunc-dev): names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Azure region of every resource; one that offers Flex Consumption.')
param location string

@secure()
@description('OpenWeatherMap API key, stored as the Key Vault secret weather-api-key. Empty keeps the secret already in the vault, so a re-deployment never needs the key again.')
param weatherApiKey string = ''

@description('Create the Entra ID app registrations with the Microsoft Graph Bicep extension (entra.bicep). Set false in tenants where it is not allowed and pass apiClientId, apiAppIdUri and callerClientId of registrations made with az ad (docs/DEPLOY.md).')
param deployEntraApps bool = true

@description('Client ID of the API app registration when deployEntraApps is false.')
param apiClientId string = ''

@description('App ID URI of the API app registration when deployEntraApps is false (for example api://<apiClientId>).')
param apiAppIdUri string = ''

@description('Client ID of the daemon app registration when deployEntraApps is false.')
param callerClientId string = ''

@description('Cities CallerTimer asks for on each tick, comma-separated.')
param callerCities string = 'London'

@description('How long a city\'s observation is reused (Go duration, 1s to 24h).')
param weatherCacheTtl string = '10m'

@minValue(1)
@description('Upstream OpenWeatherMap calls per minute the handler allows itself (60: the free plan).')
param weatherRateLimit int = 60

@minValue(1)
@maxValue(1000)
@description('Flex Consumption: most instances the app scales out to.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption: memory of each instance in MB.')
param instanceMemoryMB int = 512

var tags = {
  'azd-env-name': environmentName
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var weatherKeySecretName = 'weather-api-key'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${token}'
    location: location
    tags: tags
  }
}

module entra 'entra.bicep' = if (deployEntraApps) {
  name: 'entra'
  scope: rg
  params: {
    namePrefix: environmentName
    identityPrincipalId: identity.outputs.principalId
  }
}

var resolvedApiClientId = deployEntraApps ? entra.outputs.apiClientId : apiClientId
var resolvedApiAppIdUri = deployEntraApps ? entra.outputs.apiAppIdUri : (empty(apiAppIdUri) ? 'api://${apiClientId}' : apiAppIdUri)
var resolvedCallerClientId = deployEntraApps ? entra.outputs.callerClientId : callerClientId

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    weatherApiKey: weatherApiKey
    weatherKeySecretName: weatherKeySecretName
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-${token}'
    appInsightsName: 'appi-${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module app 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: 'func-${token}'
    planName: 'plan-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVault.outputs.name
    weatherKeySecretName: weatherKeySecretName
    apiClientId: resolvedApiClientId
    apiAppIdUri: resolvedApiAppIdUri
    callerClientId: resolvedCallerClientId
    callerCities: callerCities
    weatherCacheTtl: weatherCacheTtl
    weatherRateLimit: weatherRateLimit
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

@description('Resource group holding every resource.')
output resourceGroupName string = rg.name

@description('Name of the function app (az functionapp ... -n).')
output appName string = app.outputs.name

@description('Base URL of the function app.')
output appUrl string = app.outputs.url

@description('Name of the Key Vault holding weather-api-key.')
output keyVaultName string = keyVault.outputs.name

@description('Client ID of the user-assigned managed identity (AZURE_CLIENT_ID).')
output identityClientId string = identity.outputs.clientId

@description('Object (principal) ID of the managed identity: the subject of the daemon\'s federated credential.')
output identityPrincipalId string = identity.outputs.principalId

@description('Client ID of the API app registration (API_CLIENT_ID, the v2 token audience).')
output apiClientId string = resolvedApiClientId

@description('App ID URI of the API (API_APP_ID_URI); the daemon asks for <it>/.default.')
output apiAppIdUri string = resolvedApiAppIdUri

@description('Client ID of the daemon app registration (CALLER_CLIENT_ID).')
output callerClientId string = resolvedCallerClientId
