"""Dead letters on the dev host's durable local queues (``devhost.local_queue``).

The local store keeps the broker's dead letters as rows of their queue marked dead-lettered, and
the app's ``-deadletter`` queue as a plain queue nobody receives from, so both are read without
taking a lock, and a letter is removed by its sequence number (``LocalQueueStore.delete``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from devhost.local_queue import LocalQueueStore, StoredMessage
from ops.dead_letters.model import DLQ_SUFFIX, DeadLetter, Where, parked_fields
from shared.adapters.servicebus.message_codec import OutboundMessage, dead_letter_queue


class LocalDeadLetters:
    def __init__(self, store: LocalQueueStore) -> None:
        self._store = store

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        parked_queue = dead_letter_queue(queue)
        return [
            *(_broker(queue, queue, stored) for stored in self._store.dead_letters(queue)),
            *(_parked(queue, stored) for stored in self._store.peek(parked_queue)),
            # Nobody receives from a -deadletter queue locally, so none get here; read anyway,
            # as in Azure, where parked messages that outlive their time to live do.
            *(_broker(queue, parked_queue, stored)
              for stored in self._store.dead_letters(parked_queue)),
        ]

    def send(self, queue: str, message: OutboundMessage) -> None:
        self._store.send(queue, [message])

    def remove(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        return [letter for letter in letters
                if self._store.delete(letter.entity.removesuffix(DLQ_SUFFIX),
                                      letter.sequence_number)]

    def close(self) -> None:
        pass  # every store call opens and closes its own connection


def _when(stored: StoredMessage) -> dt.datetime:
    return dt.datetime.fromtimestamp(stored.enqueued_at, dt.UTC)


def _broker(queue: str, entity: str, stored: StoredMessage) -> DeadLetter:
    properties = stored.application_properties
    session = stored.session_id
    if entity != queue:  # a parked message: its session on the batch queue is in a property
        session = parked_fields(properties, delivery_count=0, session_id=session)[3]
    return DeadLetter(
        queue=queue, entity=entity + DLQ_SUFFIX, where=Where.BROKER,
        message_id=stored.message_id, sequence_number=stored.sequence_number, body=stored.body,
        application_properties=properties, session_id=session,
        delivery_count=stored.delivery_count, reason=stored.dead_letter_reason or "",
        description=stored.dead_letter_description or "", enqueued_at=_when(stored),
    )


def _parked(queue: str, stored: StoredMessage) -> DeadLetter:
    properties = stored.application_properties
    reason, description, count, session = parked_fields(
        properties, delivery_count=stored.delivery_count, session_id=stored.session_id)
    return DeadLetter(
        queue=queue, entity=stored.queue, where=Where.APP, message_id=stored.message_id,
        sequence_number=stored.sequence_number, body=stored.body,
        application_properties=properties, session_id=session, delivery_count=count,
        reason=reason, description=description, enqueued_at=_when(stored),
    )
