// The Function App on the Flex Consumption plan (Python 3.11) with a system-assigned managed
// identity, and its plan. The identity reads the deployment package, host storage, the state
// tables, Service Bus, Key Vault and Application Insights (roles.bicep); no connection string or
// key is stored in the app settings. Flex Consumption takes the runtime from functionAppConfig:
// FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE and the like
// must not be set, and it rejects (ARM error 51021) the siteConfig properties of the other plans:
// ftpsState, linuxFxVersion, alwaysOn, use32BitWorkerProcess, functionAppScaleLimit and others.

@description('Azure region of the resources.')
param location string

@description('Tags put on every resource (the site also gets the azd service tag).')
param tags object

@description('Name of the Function App.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('URL of the blob container the app package is deployed to.')
param deploymentContainerUrl string

@description('Most instances the app scales out to (Flex Consumption allows 40 to 1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Memory of one instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('App settings, as an object of name to value.')
param appSettings object

@description('URI of the Key Vault, ending with a slash.')
param keyVaultUri string

@description('App settings that become Key Vault references to the secret of the same name, underscores turned into hyphens (the dotdigital API passwords).')
param keyVaultSecretSettingNames array

@description('Origins allowed to call the HTTP functions from a browser (the Dynamics organisation).')
param allowedOrigins array

@description('Enabled or Disabled: whether the app accepts traffic from public networks (CRM users call it from their browsers).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

var settingsList = [for setting in items(appSettings): {
  name: setting.key
  value: setting.value
}]

// Key Vault secret names allow letters, digits and hyphens only: DOTDIGITAL_SECRET_X reads the
// secret DOTDIGITAL-SECRET-X. Without a version the reference follows the latest one.
var secretSettingsList = [for settingName in keyVaultSecretSettingNames: {
  name: settingName
  value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${replace(settingName, '_', '-')}/)'
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: The syncs are checkpointed and resume after an outage, so zone redundancy (offered for Flex Consumption in some regions only) is not required.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: Callers are the browsers of CRM users; every call carries an Entra ID token that the app validates, so client certificates are not used.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero on timer, queue and HTTP events; no instance is kept warm for failover.
  // checkov:skip=CKV_AZURE_213: The app serves no health endpoint (every HTTP route needs a user token) and scales from zero; failures show in Application Insights and the run journal.
  // checkov:skip=CKV_AZURE_222: CRM users call the HTTP API from their browsers; public network access is the parameter functionAppPublicNetworkAccess.
  // checkov:skip=CKV_AZURE_78: Flex Consumption offers no FTP and rejects siteConfig.ftpsState (ARM error 51021); SCM basic publishing credentials are off (scmCredentials).
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'connector' })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: publicNetworkAccess
    clientCertEnabled: false
    keyVaultReferenceIdentity: 'SystemAssigned'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      cors: {
        allowedOrigins: allowedOrigins
        supportCredentials: false
      }
      appSettings: concat(settingsList, secretSettingsList)
    }
  }
}

// Deployments authenticate with Entra ID; basic (user name and password) publishing to the SCM
// endpoint is off. (Flex Consumption has no FTP endpoint to turn off.)
resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
