"""The app's ``BatchPublisher`` on the dev host's local queues (what ``DevHost`` hands the app)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from devhost.local_queue import LocalQueueStore, StoredMessage
from shared.adapters.servicebus.encoding_publisher import EncodingPublisher
from shared.adapters.servicebus.message_codec import OutboundMessage, dead_letter_queue


class LocalQueuePublisher(EncodingPublisher):
    """``BatchPublisher`` over the local queue store: what the dev host hands the app.

    Encoding, grouping and dead-letter moves are the Service Bus publisher's
    (``EncodingPublisher``), so what the dev host delivers is what Service Bus would.
    """

    def __init__(self, store: LocalQueueStore) -> None:
        self._store = store

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        self._store.send(queue, messages)


def parked_dead_letters(store: LocalQueueStore, queue: str) -> list[StoredMessage]:
    """What the app moved to ``queue``'s ``-deadletter`` queue, read as the broker's dead letters
    read: reason, description, delivery count and session from the properties it added."""
    parked = []
    for message in store.peek(dead_letter_queue(queue)):
        properties = message.application_properties
        count, session = properties.get("DeliveryCount"), properties.get("SessionId")
        parked.append(replace(
            message,
            dead_letter_reason=str(properties.get("DeadLetterReason", "")),
            dead_letter_description=str(properties.get("DeadLetterErrorDescription", "")),
            delivery_count=count if isinstance(count, int) else message.delivery_count,
            session_id=session if isinstance(session, str) else message.session_id,
        ))
    return parked
