// The dotdigital <-> Dynamics 365 connector in Azure: a resource group with the Function App
// (Flex Consumption, Python 3.11, system-assigned identity), its storage, Service Bus queues, Key
// Vault and monitoring, and the identity's role assignments. `azd up` deploys it with
// main.parameters.json; infra/README.md describes the parameters and the app settings.
targetScope = 'subscription'

// ---- azd ------------------------------------------------------------------------------------

@description('Name of the azd environment; names the resource group and seeds the resource names.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Azure region of every resource (one where Flex Consumption is offered).')
@minLength(1)
param location string

@description('Name of the resource group (default rg-<environmentName>).')
param resourceGroupName string = ''

// ---- Dynamics 365 and Entra ID ----------------------------------------------------------------

@description('Environment URL of Dynamics 365, e.g. https://contoso.crm4.dynamics.com (DATAVERSE_URL).')
@minLength(9)
param dataverseUrl string

@description('Entra ID tenant of the app registration (ENTRA_TENANT_ID; default the tenant of the deployment).')
param entraTenantId string = ''

@description('Client id of the app registration of the connector (ENTRA_CLIENT_ID).')
@minLength(1)
param entraClientId string

@description('How the app registration proves who it is: secret (ENTRA_CLIENT_SECRET) or certificate (ENTRA_CLIENT_CERTIFICATE: a Key Vault certificate, whose secret gives the PKCS#12).')
@allowed([
  'secret'
  'certificate'
])
param entraClientCredential string = 'secret'

@description('Name of the Key Vault secret or certificate holding that credential; ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE becomes a Key Vault reference to it.')
param entraClientCredentialName string = 'ENTRA-CLIENT-CREDENTIAL'

@description('Audience of the user tokens the HTTP API accepts (CONNECTOR_API_AUDIENCE; empty: the client id only).')
param connectorApiAudience string = ''

@description('Delegated scope the user tokens must carry (CONNECTOR_API_SCOPE).')
param connectorApiScope string = 'user_impersonation'

@description('Origins allowed to call the HTTP API from a browser, comma-separated (default: the origin of dataverseUrl, where the CRM pages run).')
param corsAllowedOrigins string = ''

// ---- dotdigital ------------------------------------------------------------------------------

@description('''App settings that hold dotdigital API passwords, comma-separated: the ec_secretname of each
email account in CRM, e.g. DOTDIGITAL_SECRET_BRAND1,DOTDIGITAL_SECRET_BRAND2. Each becomes a Key Vault
reference to the secret of the same name with every underscore turned into a hyphen
(DOTDIGITAL-SECRET-BRAND1): Key Vault secret names allow letters, digits and hyphens only.''')
param dotdigitalSecretSettings string = ''

// ---- Syncs -----------------------------------------------------------------------------------

@description('NCRONTAB schedule of the sync timer (SYNC_TIMER_SCHEDULE), UTC.')
param syncTimerSchedule string = '0 */1 * * * *'

@description('NCRONTAB schedule of the retention timer (RETENTION_TIMER_SCHEDULE), UTC.')
param retentionTimerSchedule string = '0 30 3 * * *'

@description('true: every sync reports what it would change and writes nothing (SYNC_DRY_RUN).')
param syncDryRun bool = false

// ---- Service Bus queues ----------------------------------------------------------------------

@description('Deliveries of a batch before the broker dead-letters it; also the app settings OPTIN_, SUPPRESSION_ and ENGAGEMENT_MAX_DELIVERY_COUNT, which must equal it.')
@minValue(1)
@maxValue(2000)
param maxDeliveryCount int = 10

@description('Peek-lock and session lock duration, ISO 8601, at most PT5M. The Functions host renews the lock while a function runs (host.json maxAutoLockRenewalDuration, at least functionTimeout), so this only bounds how long a session stays locked after its worker is lost.')
param lockDuration string = 'PT1M'

@description('Duplicate detection window, ISO 8601 (PT20S to P7D): longer than a reader run (functionTimeout) plus a timer interval, so a batch re-published after a crash is dropped.')
param duplicateDetectionWindow string = 'PT1H'

@description('Time to live of a batch, ISO 8601; one not applied by then is dead-lettered.')
param messageTimeToLive string = 'P14D'

// ---- Hosting ---------------------------------------------------------------------------------

@description('Most instances the Function App scales out to (Flex Consumption: 40 to 1000). Concurrency is bounded by the sessions anyway (host.json maxConcurrentSessions, *_SHARDS).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of one Function App instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Replication of the storage account (state tables with the engagement history, host storage, deployment package): geo-redundant only.')
@allowed([
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GRS'

@description('Application Insights takes telemetry signed in with Entra ID only (local authentication off): the Functions host signs in with the app identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), and the app passes a credential to its own exporter. false: the connection string alone is enough.')
param appInsightsEntraAuthOnly bool = true

@description('Days Log Analytics keeps the logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Public network access of the Function App: CRM users call its HTTP API from their browsers.')
@allowed([
  'Enabled'
  'Disabled'
])
param functionAppPublicNetworkAccess string = 'Enabled'

@description('Public network access of the storage account; Disabled needs VNet integration and private endpoints, which this template does not create.')
@allowed([
  'Enabled'
  'Disabled'
])
param storagePublicNetworkAccess string = 'Enabled'

@description('Public network access of the Service Bus namespace (Standard tier has no private endpoints).')
@allowed([
  'Enabled'
  'Disabled'
])
param serviceBusPublicNetworkAccess string = 'Enabled'

@description('Public network access of the Key Vault; Disabled needs VNet integration and a private endpoint, which this template does not create.')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Enabled'

// ---- Names -----------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var names = {
  resourceGroup: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  storage: 'st${token}'
  serviceBus: 'sb-${token}'
  keyVault: 'kv-${token}'
  logAnalytics: 'log-${token}'
  appInsights: 'appi-${token}'
  plan: 'plan-${token}'
  functionApp: 'func-${token}'
  deploymentContainer: 'app-package'
}

// The app's queues, named as the app's defaults (shared/config.py). Every one is session-enabled:
// the readers publish one session per shard of addresses (paged_run.py) and each queue trigger
// sets is_sessions_enabled (shared/entrypoints/sync_queues.py), so no two workers ever write the
// same record at once. servicebus.bicep adds a '<name>-deadletter' queue (no sessions) beside each.
var optinQueueName = 'optin-batches'
var suppressionQueueName = 'suppression-batches'
var engagementQueueName = 'engagement-batches'
var queues = [
  {
    name: optinQueueName
    requiresSession: true
  }
  {
    name: suppressionQueueName
    requiresSession: true
  }
  {
    name: engagementQueueName
    requiresSession: true
  }
]

// The connector's state tables (shared/adapters/storage): the app creates them too when missing.
var stateTables = [
  'syncstate'
  'connectorruns'
  'engagement'
]

var tenantId = empty(entraTenantId) ? tenant().tenantId : entraTenantId
var dataverseOrigin = endsWith(dataverseUrl, '/') ? substring(dataverseUrl, 0, length(dataverseUrl) - 1) : dataverseUrl
var allowedOrigins = empty(corsAllowedOrigins) ? [dataverseOrigin] : filter(split(replace(corsAllowedOrigins, ' ', ''), ','), origin => !empty(origin))
var dotdigitalSecretSettingNames = filter(split(replace(dotdigitalSecretSettings, ' ', ''), ','), settingName => !empty(settingName))

// ---- Resources -------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    retentionInDays: logRetentionInDays
    disableLocalAuth: appInsightsEntraAuthOnly
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: names.storage
    skuName: storageSku
    deploymentContainerName: names.deploymentContainer
    tableNames: stateTables
    publicNetworkAccess: storagePublicNetworkAccess
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    location: location
    tags: tags
    name: names.serviceBus
    queues: queues
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    duplicateDetectionWindow: duplicateDetectionWindow
    messageTimeToLive: messageTimeToLive
    publicNetworkAccess: serviceBusPublicNetworkAccess
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: names.keyVault
    publicNetworkAccess: keyVaultPublicNetworkAccess
  }
}

// Every app setting the Bicep sets; infra/README.md lists the ones left to their defaults.
var baseAppSettings = {
  // Host storage by identity; the app's state tables use the same account when
  // STATE_STORAGE_CONNECTION is unset (https://<name>.table.core.windows.net).
  AzureWebJobsStorage__accountName: storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  // The queue triggers (connection "ServiceBusConnection") and the app's own publishing.
  ServiceBusConnection__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
  ServiceBusConnection__credential: 'managedidentity'
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  DATAVERSE_URL: dataverseUrl
  ENTRA_TENANT_ID: tenantId
  ENTRA_CLIENT_ID: entraClientId
  CONNECTOR_API_AUDIENCE: connectorApiAudience
  CONNECTOR_API_SCOPE: connectorApiScope
  SYNC_TIMER_SCHEDULE: syncTimerSchedule
  RETENTION_TIMER_SCHEDULE: retentionTimerSchedule
  SYNC_DRY_RUN: syncDryRun ? 'true' : 'false'
  OPTIN_QUEUE_NAME: optinQueueName
  SUPPRESSION_QUEUE_NAME: suppressionQueueName
  ENGAGEMENT_QUEUE_NAME: engagementQueueName
  // The appliers count a batch as failed on its last delivery: these must equal the queues'.
  OPTIN_MAX_DELIVERY_COUNT: string(maxDeliveryCount)
  SUPPRESSION_MAX_DELIVERY_COUNT: string(maxDeliveryCount)
  ENGAGEMENT_MAX_DELIVERY_COUNT: string(maxDeliveryCount)
  // glibc: fewer arenas and no heap holes from freed large blocks (README, deployment step 6).
  MALLOC_ARENA_MAX: '2'
  MALLOC_MMAP_THRESHOLD_: '65536'
}
// The app takes exactly one of ENTRA_CLIENT_SECRET and ENTRA_CLIENT_CERTIFICATE. Without a
// version, a Key Vault reference follows the latest version of the secret.
var entraCredentialReference = '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/${entraClientCredentialName}/)'
var entraCredentialSetting = (entraClientCredential == 'certificate') ? { ENTRA_CLIENT_CERTIFICATE: entraCredentialReference } : { ENTRA_CLIENT_SECRET: entraCredentialReference }
// The system-assigned identity signs the host's telemetry in (no ClientId: not a user-assigned one).
var monitoringAuthSetting = appInsightsEntraAuthOnly ? { APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD' } : {}
var appSettings = union(baseAppSettings, entraCredentialSetting, monitoringAuthSetting)

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    name: names.functionApp
    planName: names.plan
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    appSettings: appSettings
    keyVaultUri: keyVault.outputs.vaultUri
    keyVaultSecretSettingNames: dotdigitalSecretSettingNames
    allowedOrigins: allowedOrigins
    publicNetworkAccess: functionAppPublicNetworkAccess
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    receiveQueueNames: serviceBus.outputs.queueNames
    sendOnlyQueueNames: serviceBus.outputs.deadLetterQueueNames
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// ---- Outputs (azd keeps them in the environment's .env) ----------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URI string = keyVault.outputs.vaultUri
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
