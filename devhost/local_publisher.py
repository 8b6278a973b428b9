"""The app's ``BatchPublisher`` on the dev host's local queues (what ``DevHost`` hands the app)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from devhost.local_queue import LocalQueueStore
from shared.adapters.servicebus.message_codec import (
    dead_letter_message,
    dead_letter_queue,
    encode,
    fit_optin_changes,
)
from shared.domain.commands import OptInChange, QueueCommand
from shared.services.ports import ReceivedMessage


class LocalQueuePublisher:
    """``BatchPublisher`` over the local queue store: what the dev host hands the app.

    Encoding, grouping and dead-letter moves are the Service Bus publisher's (the same codec),
    so what the dev host delivers is what Service Bus would.
    """

    def __init__(self, store: LocalQueueStore) -> None:
        self._store = store

    def fit(
        self, changes: Iterable[OptInChange], *, max_items: int
    ) -> Iterator[tuple[OptInChange, ...]]:
        return fit_optin_changes(changes, max_items=max_items)

    def publish(
        self, queue: str, commands: Sequence[QueueCommand], *, session_id: str | None = None
    ) -> None:
        self._store.send(queue, [encode(command, session_id=session_id) for command in commands])

    def dead_letter(
        self, queue: str, message: ReceivedMessage, *, reason: str, description: str
    ) -> None:
        parked = dead_letter_message(message, reason=reason, description=description)
        self._store.send(dead_letter_queue(queue), [parked])
