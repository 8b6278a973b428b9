"""What a dead letter carries, read with the app's own codec (every schema and version it reads).

A body the codec cannot read still names its batch through the application properties the
reader gave it (``unreadable_batch``), so such a letter is still listed under its run, account
and batch, and a replay of it is still accounted to that batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.dead_letters.model import DeadLetter
from shared.adapters.servicebus.engagement_schema import ENGAGEMENT_SCHEMA
from shared.adapters.servicebus.message_codec import OPTIN_SCHEMA, decode, unreadable_batch
from shared.adapters.servicebus.suppression_schema import SUPPRESSION_SCHEMA
from shared.domain.commands import (
    ApplyEngagementBatch,
    ApplySuppressionBatch,
    BatchRef,
    QueueCommand,
)
from shared.domain.model import SyncType
from shared.errors import MessageFormatError

SYNC_TYPES = {
    OPTIN_SCHEMA: SyncType.CONTACT_OPT_IN,
    SUPPRESSION_SCHEMA: SyncType.SUPPRESSION_LISTS,
    ENGAGEMENT_SCHEMA: SyncType.ENGAGEMENT,
}


@dataclass(frozen=True, slots=True)
class BatchView:
    """The batch a dead letter holds: ``command`` when its body reads, else ``unreadable``
    says why and ``ref``/``items`` come from its properties (None when they name nothing)."""

    sync_type: SyncType | None
    ref: BatchRef | None
    items: int | None
    command: QueueCommand | None = None
    unreadable: str | None = None


def describe(letter: DeadLetter) -> BatchView:
    try:
        command = decode(letter.body)
    except MessageFormatError as error:
        return _from_properties(letter, str(error))
    return BatchView(_sync_type_of(command), command.ref, len(command.items), command)


def _sync_type_of(command: QueueCommand) -> SyncType:
    if isinstance(command, ApplySuppressionBatch):
        return SyncType.SUPPRESSION_LISTS
    if isinstance(command, ApplyEngagementBatch):
        return SyncType.ENGAGEMENT
    return SyncType.CONTACT_OPT_IN


def _from_properties(letter: DeadLetter, error: str) -> BatchView:
    properties = letter.application_properties
    for schema, sync_type in SYNC_TYPES.items():
        named = unreadable_batch(properties, schema)
        if named is not None:
            return BatchView(sync_type, named.ref, named.items, unreadable=error)
    return BatchView(SYNC_TYPES.get(str(properties.get("schema"))), None, None, unreadable=error)
