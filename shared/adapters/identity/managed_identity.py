"""The app's own identity for Azure resources (Table Storage, Service Bus, Application Insights).

``DefaultAzureCredential`` takes the Function App's managed identity when deployed (a
user-assigned one by ``AZURE_CLIENT_ID``) and a developer's Azure CLI login on their machine.
Building it makes no call; tokens are fetched when a connection first needs one.
"""

from __future__ import annotations

from azure.core.credentials import TokenCredential


def managed_identity() -> TokenCredential:
    # Imported here: the local loop, which uses connection strings, never pays for it.
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)
