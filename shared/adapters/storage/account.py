"""The storage account's table service: by connection string (local loop) or by managed identity.

One ``TableServiceClient`` serves the sync state, the run journal and the event store, so the
process keeps one connection pool to the account. The SDK's own retries stay few: a function's
time is better spent on redelivery.
"""

from __future__ import annotations

from azure.core.credentials import TokenCredential
from azure.data.tables import TableServiceClient

from shared.config import StateSettings
from shared.errors import ConfigError

SDK_RETRIES = 3


def table_service(
    settings: StateSettings, *, credential: TokenCredential | None = None
) -> TableServiceClient:
    """The table service the settings name; an endpoint needs ``credential``."""
    if settings.connection_string:
        return TableServiceClient.from_connection_string(
            settings.connection_string, retry_total=SDK_RETRIES
        )
    if settings.table_endpoint and credential is not None:
        return TableServiceClient(
            settings.table_endpoint, credential=credential, retry_total=SDK_RETRIES
        )
    raise ConfigError("the sync state needs STATE_STORAGE_CONNECTION or AzureWebJobsStorage, or "
                      "AzureWebJobsStorage__accountName with a managed identity")
