// The Key Vault holding the connector's secrets: the Entra ID client secret and the dotdigital
// API passwords. Access by Azure RBAC only (no access policies); the Function App reads them
// through Key Vault references with its managed identity (Key Vault Secrets User, roles.bicep).
// The secrets themselves are put in by an operator (infra/README.md), never by a deployment.

@description('Azure region of the resources.')
param location string

@description('Tags put on every resource.')
param tags object

@description('Name of the Key Vault (3 to 24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Enabled or Disabled: whether the vault accepts traffic from public networks.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: The Flex Consumption app, without VNet integration, resolves its Key Vault references over the public endpoint; access is by Azure RBAC only.
  // checkov:skip=CKV_AZURE_189: Public network access is the parameter keyVaultPublicNetworkAccess: Disabled needs VNet integration and a private endpoint, which this template does not create.
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
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output name string = vault.name
output vaultUri string = vault.properties.vaultUri
