// The Entra ID app registrations, as code with the Microsoft Graph Bicep
// extension (bicepconfig.json pins its version):
//
//   - the API app: App ID URI, the app role access_as_application for
//     applications only, the delegated scope access_as_user, v2 access
//     tokens; and its service principal;
//   - the daemon app, whose only credential is a federated identity
//     credential trusting the user-assigned managed identity (no secret, no
//     certificate); its service principal; and the API's app role granted to
//     it (appRoleAssignedTo).
//
// Deploying it needs Application.ReadWrite.All (or Application Developer /
// Cloud Application Administrator) and AppRoleAssignment.ReadWrite.All.
// docs/DEPLOY.md has the equivalent az ad / az rest commands for tenants that
// do not allow the extension.
extension microsoftGraphV1

@description('Prefix of the registrations\' unique and display names (the environment name).')
param namePrefix string

@description('Object (principal) ID of the user-assigned managed identity the daemon runs as: the subject of its federated credential.')
param identityPrincipalId string

var apiUniqueName = '${namePrefix}-weather-api'
var callerUniqueName = '${namePrefix}-weather-caller'

// api://<tenant>/<name> is one of Entra's secure App ID URI forms and can be
// known before the app exists (api://<appId> cannot name itself here).
var apiAppIdUri = 'api://${tenant().tenantId}/${apiUniqueName}'

// Stable IDs: a re-deployment updates the role and scope instead of
// replacing them.
var appRoleId = guid(tenant().tenantId, apiUniqueName, 'access_as_application')
var userScopeId = guid(tenant().tenantId, apiUniqueName, 'access_as_user')

resource apiApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: apiUniqueName
  displayName: '${namePrefix} weather API'
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    apiAppIdUri
  ]
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: userScopeId
        value: 'access_as_user'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Read weather as the signed-in user'
        adminConsentDescription: 'Lets the app call the weather API on behalf of the signed-in user.'
        userConsentDisplayName: 'Read weather as you'
        userConsentDescription: 'Lets the app call the weather API on your behalf.'
      }
    ]
  }
  appRoles: [
    {
      id: appRoleId
      value: 'access_as_application'
      allowedMemberTypes: [
        'Application'
      ]
      isEnabled: true
      displayName: 'Call the weather API as an application'
      description: 'Daemons holding this role may call WeatherHttp with an app-only token.'
    }
  ]
}

resource apiSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: apiApp.appId
}

resource callerApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: callerUniqueName
  displayName: '${namePrefix} weather daemon'
  signInAudience: 'AzureADMyOrg'
  requiredResourceAccess: [
    {
      resourceAppId: apiApp.appId
      resourceAccess: [
        {
          id: appRoleId
          type: 'Role'
        }
      ]
    }
  ]
}

// The daemon's only credential: Entra accepts a managed-identity token for
// api://AzureADTokenExchange issued by this tenant to the identity below as
// the daemon's client assertion (DESIGN section 9).
resource callerFederatedCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${callerApp.uniqueName}/managed-identity'
  description: 'The function app\'s user-assigned managed identity'
  audiences: [
    'api://AzureADTokenExchange'
  ]
  issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
  subject: identityPrincipalId
}

resource callerSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: callerApp.appId
}

resource callerGrant 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: appRoleId
  principalId: callerSp.id
  resourceId: apiSp.id
}

output apiClientId string = apiApp.appId
output apiAppIdUri string = apiAppIdUri
output callerClientId string = callerApp.appId
