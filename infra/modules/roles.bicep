// Role assignments of the Function App's managed identity, each on the narrowest scope that works:
//
// | Role                              | Scope                         | Why                                      |
// |-----------------------------------|-------------------------------|------------------------------------------|
// | Storage Blob Data Owner           | storage account               | host storage (timer leases, host keys) and the deployment container |
// | Storage Table Data Contributor    | storage account               | the state tables; the host's diagnostic events table |
// | Azure Service Bus Data Receiver   | each batch queue              | the queue triggers                       |
// | Azure Service Bus Data Sender     | each batch and dead-letter queue | the timer publishes batches; appliers move hopeless ones aside |
// | Key Vault Secrets User            | Key Vault                     | Key Vault references in app settings     |
// | Monitoring Metrics Publisher      | Application Insights          | telemetry with Entra ID authentication   |
//
// No Storage Queue Data Contributor: the app has no blob or storage-queue trigger and nothing
// else uses storage queues.

@description('Object id of the system-assigned identity of the Function App.')
param principalId string

@description('Name of the storage account.')
param storageAccountName string

@description('Name of the Service Bus namespace.')
param serviceBusNamespaceName string

@description('Queues the app receives from (and sends to).')
param receiveQueueNames array

@description('Queues the app only sends to (the dead-letter companions).')
param sendOnlyQueueNames array

@description('Name of the Key Vault.')
param keyVaultName string

@description('Name of the Application Insights component.')
param appInsightsName string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource receiveQueues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = [for queueName in receiveQueueNames: {
  parent: namespace
  name: queueName
}]

resource sendOnlyQueues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = [for queueName in sendOnlyQueueNames: {
  parent: namespace
  name: queueName
}]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

resource queueReceivers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in receiveQueueNames: {
  name: guid(receiveQueues[i].id, principalId, roles.serviceBusDataReceiver)
  scope: receiveQueues[i]
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}]

resource queueSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in receiveQueueNames: {
  name: guid(receiveQueues[i].id, principalId, roles.serviceBusDataSender)
  scope: receiveQueues[i]
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}]

resource deadLetterSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in sendOnlyQueueNames: {
  name: guid(sendOnlyQueues[i].id, principalId, roles.serviceBusDataSender)
  scope: sendOnlyQueues[i]
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}]

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}
