"""The app's ``BatchPublisher`` on the dev host's local queues (what ``DevHost`` hands the app)."""

from __future__ import annotations

from collections.abc import Sequence

from devhost.local_queue import LocalQueueStore
from shared.adapters.servicebus.encoding_publisher import EncodingPublisher
from shared.adapters.servicebus.message_codec import OutboundMessage


class LocalQueuePublisher(EncodingPublisher):
    """``BatchPublisher`` over the local queue store: what the dev host hands the app.

    Encoding, grouping and dead-letter moves are the Service Bus publisher's
    (``EncodingPublisher``), so what the dev host delivers is what Service Bus would.
    """

    def __init__(self, store: LocalQueueStore) -> None:
        self._store = store

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        self._store.send(queue, messages)
