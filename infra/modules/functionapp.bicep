// The Flex Consumption plan (FC1, Linux) and the function app running the Go
// custom handler (runtime custom 1.0). Every app setting is either a host
// setting the platform needs or a setting of the handler's contract (DESIGN
// section 3); secrets are Key Vault references to versionless secret URIs,
// resolved with the user-assigned identity. infra/infra_test.go checks this
// list against the names cmd/handler reads.
param name string
param planName string
param location string
param tags object

@description('Resource ID of the user-assigned managed identity.')
param identityId string

@description('Client ID of the user-assigned managed identity.')
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param appInsightsName string
param keyVaultName string
param weatherKeySecretName string

param apiClientId string
param apiAppIdUri string
param callerClientId string
param callerCities string
param weatherCacheTtl string
param weatherRateLimit int
param maximumInstanceCount int
param instanceMemoryMB int

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Case C17: the identity that resolves Key Vault references is a
    // top-level site property; under siteConfig it is silently ignored and
    // the platform tries the (absent) system-assigned identity.
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Host storage through the identity: no connection string.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // Telemetry with Entra ID auth: local auth is disabled, so the
        // connection string is an address, not a credential.
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // The handler's settings contract (DESIGN section 3).
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'AZURE_TENANT_ID'
          value: tenant().tenantId
        }
        {
          name: 'AZURE_AUTHORITY_HOST'
          value: environment().authentication.loginEndpoint
        }
        {
          name: 'API_CLIENT_ID'
          value: apiClientId
        }
        {
          name: 'API_APP_ID_URI'
          value: apiAppIdUri
        }
        {
          name: 'API_REQUIRED_ROLE'
          value: 'access_as_application'
        }
        {
          name: 'API_REQUIRED_SCOPE'
          value: 'access_as_user'
        }
        {
          name: 'WEATHER_API_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${weatherKeySecretName})'
        }
        {
          name: 'WEATHER_API_BASE_URL'
          value: 'https://api.openweathermap.org'
        }
        {
          name: 'WEATHER_CACHE_TTL'
          value: weatherCacheTtl
        }
        {
          name: 'WEATHER_RATE_LIMIT'
          value: string(weatherRateLimit)
        }
        {
          name: 'CALLER_CLIENT_ID'
          value: callerClientId
        }
        // The daemon presents a managed-identity token as a federated
        // credential (entra.bicep): no client secret or certificate exists.
        {
          name: 'CALLER_CREDENTIAL'
          value: 'managed-identity'
        }
        {
          name: 'CALLER_SCOPE'
          value: '${apiAppIdUri}/.default'
        }
        {
          name: 'CALLER_CITIES'
          value: callerCities
        }
      ]
    }
  }
}

output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
