"""The dead-letter back end of the console's connection (``ops.context``): the dev host's local
queues when the settings name a ``LOCAL_QUEUE_DIR``, else Service Bus with the app's connection
string or the operator's identity."""

from __future__ import annotations

from azure.servicebus import ServiceBusClient

from ops.context import Console
from ops.dead_letters.accounting import RunAccounting
from ops.dead_letters.local import LocalDeadLetters
from ops.dead_letters.servicebus import ServiceBusDeadLetters
from ops.dead_letters.store import DeadLetterConsole, DeadLetterStore
from ops.errors import UsageError
from ops.queues import LocalQueueAdmin, ServiceBusQueueAdmin, UnavailableQueues
from shared.adapters.storage.sync_state import DEFAULT_TABLE as SYNC_STATE_TABLE

# As the app's publisher: a few quick retries, then the error is the operator's to see.
_RETRIES, _BACKOFF_MAX_S = 3, 30


def dead_letter_console(console: Console) -> DeadLetterConsole:
    return DeadLetterConsole(
        store=_store(console), queues=tuple(console.queue_names()),
        accounting=RunAccounting(console.tables.get_table_client(SYNC_STATE_TABLE)),
    )


def _store(console: Console) -> DeadLetterStore:
    queues = console.queues
    if isinstance(queues, LocalQueueAdmin):
        return LocalDeadLetters(queues.store)
    if isinstance(queues, UnavailableQueues):
        raise UsageError(queues.reason)
    assert isinstance(queues, ServiceBusQueueAdmin)
    settings = console.settings.queues
    if settings.connection_string:
        client = ServiceBusClient.from_connection_string(
            settings.connection_string, retry_total=_RETRIES, retry_backoff_max=_BACKOFF_MAX_S)
    elif settings.namespace and console.credential is not None:
        client = ServiceBusClient(settings.namespace, console.credential,
                                  retry_total=_RETRIES, retry_backoff_max=_BACKOFF_MAX_S)
    else:  # the queue admin was built from the same settings, so this cannot happen
        raise UsageError("no Service Bus connection in the settings")
    return ServiceBusDeadLetters(client)
