// The Service Bus namespace and the connector's queues. Every queue of `queues` gets a companion
// '<name>-deadletter' queue, where the app moves the batches that can never succeed (the Python
// trigger cannot dead-letter a message itself; see dead_letter_queue in the message codec). The
// app publishes to those without a session id, so they never require sessions.
//
// Duplicate detection and sessions can only be chosen when a queue is created: changing
// requiresSession or requiresDuplicateDetection later means deleting the queue first.

@description('Azure region of the resources.')
param location string

@description('Tags put on every resource.')
param tags object

@description('Name of the Service Bus namespace.')
param name string

@description('The queues the app uses: objects { name: string, requiresSession: bool }.')
param queues array

@description('Deliveries of a message before the broker dead-letters it; the app settings <SYNC>_MAX_DELIVERY_COUNT must equal it.')
@minValue(1)
@maxValue(2000)
param maxDeliveryCount int

@description('Peek-lock (and session lock) duration, ISO 8601, at most PT5M; the Functions host renews it while a function runs.')
param lockDuration string

@description('How long message ids are remembered for duplicate detection, ISO 8601 (PT20S to P7D).')
param duplicateDetectionWindow string

@description('Time to live of a message, ISO 8601; an expired message is dead-lettered.')
param messageTimeToLive string

@description('Enabled or Disabled: whether the namespace accepts traffic from public networks.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

var deadLetterSuffix = '-deadletter'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: publicNetworkAccess
  }
}

resource batchQueues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for queue in queues: {
  parent: namespace
  name: queue.name
  properties: {
    requiresSession: queue.requiresSession
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: messageTimeToLive
    enablePartitioning: false
    maxSizeInMegabytes: 1024
  }
}]

resource deadLetterQueues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for queue in queues: {
  parent: namespace
  name: '${queue.name}${deadLetterSuffix}'
  properties: {
    requiresSession: false
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: messageTimeToLive
    enablePartitioning: false
    maxSizeInMegabytes: 1024
  }
}]

output name string = namespace.name
// 'https://<name>.servicebus.windows.net:443/' -> '<name>.servicebus.windows.net'
output fullyQualifiedNamespace string = replace(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')
output queueNames array = [for (queue, i) in queues: batchQueues[i].name]
output deadLetterQueueNames array = [for (queue, i) in queues: deadLetterQueues[i].name]
