"""Composition root: the only module that builds concrete adapters.

``services()`` builds everything once per worker process, on first use (never at import), from
the app settings in ``os.environ``. Tests install their own with ``override(...)``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from azure.data.tables import TableServiceClient

from devhost.local_queue import LocalQueuePublisher
from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.records import DataverseCrmRecords
from shared.adapters.dataverse.settings_tables import DataverseCrmSettings
from shared.adapters.dotdigital.platform import DotdigitalEmailPlatform
from shared.adapters.identity.entra import EntraTokenProvider
from shared.adapters.servicebus.publisher import ServiceBusBatchPublisher
from shared.adapters.storage.run_journal import TableRunJournal
from shared.adapters.storage.sync_state import TableSyncStateStore
from shared.config import Settings, load_settings
from shared.services.ports import (
    BatchPublisher,
    CrmRecords,
    CrmSettings,
    EmailPlatform,
    RunJournal,
    SyncStateStore,
)


@dataclass
class Services:
    settings: Settings
    crm_settings: CrmSettings
    crm_records: CrmRecords
    email_platform: EmailPlatform
    run_journal: RunJournal
    sync_state: SyncStateStore
    publisher: BatchPublisher


_lock = threading.Lock()
_built: Services | None = None
_override: Services | None = None


def build_services(environ: dict[str, str]) -> Services:
    settings = load_settings(environ)
    tokens = EntraTokenProvider(settings.entra, settings.http)
    dataverse = DataverseClient(
        settings.dataverse, settings.http, lambda: tokens.app_token(settings.dataverse.scope)
    )
    tables = TableServiceClient.from_connection_string(settings.state.connection_string)
    local_queue_dir = (environ.get("LOCAL_QUEUE_DIR") or "").strip()
    # The dev host delivers from a durable local queue; in Azure it is Service Bus.
    publisher: BatchPublisher = (
        LocalQueuePublisher(local_queue_dir)
        if local_queue_dir
        else ServiceBusBatchPublisher.from_settings(settings.queues)
    )
    return Services(
        settings=settings,
        crm_settings=DataverseCrmSettings(dataverse),
        crm_records=DataverseCrmRecords(dataverse),
        email_platform=DotdigitalEmailPlatform(settings.dotdigital, settings.http, environ),
        run_journal=TableRunJournal(tables),
        sync_state=TableSyncStateStore.from_settings(settings.state),
        publisher=publisher,
    )


def services() -> Services:
    """The process's services, built on first use."""
    global _built
    if _override is not None:
        return _override
    with _lock:
        if _built is None:
            _built = build_services(dict(os.environ))
        return _built


@contextmanager
def override(replacement: Services) -> Iterator[Services]:
    """Use ``replacement`` instead of the real services inside the block (tests)."""
    global _override
    previous, _override = _override, replacement
    try:
        yield replacement
    finally:
        _override = previous


def reset() -> None:
    """Forget the built services: the next ``services()`` builds them from the settings then in
    ``os.environ`` (the dev host's local stacks run one after another in one process)."""
    global _built
    with _lock:
        _built = None
