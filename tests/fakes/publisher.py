"""In-memory ``BatchPublisher`` with Service Bus duplicate detection by ``message_id``.

Commands are encoded with the real message codec, so tests see the ``OutboundMessage``s Service
Bus would get (ids, properties, session ids, bodies) and can decode them back into commands.
Dead letters go where the real publishers put them: ``dead_letter_queue(queue)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from shared.adapters.servicebus.message_codec import (
    OutboundMessage,
    dead_letter_message,
    dead_letter_queue,
    decode,
    encode,
    fit_optin_changes,
)
from shared.domain.commands import ApplyOptInBatch, OptInChange, QueueCommand
from shared.services.ports import ReceivedMessage


class FakeBatchPublisher:
    def __init__(self) -> None:
        self.queues: dict[str, dict[str, OutboundMessage]] = {}
        self.sends = 0  # publish calls, duplicates included

    def fit(
        self, changes: Iterable[OptInChange], *, max_items: int
    ) -> Iterator[tuple[OptInChange, ...]]:
        return fit_optin_changes(changes, max_items=max_items)

    def publish(
        self, queue: str, commands: Sequence[QueueCommand], *, session_id: str | None = None
    ) -> None:
        self.sends += 1
        self.send(queue, [encode(command, session_id=session_id) for command in commands])

    def dead_letter(
        self, queue: str, message: ReceivedMessage, *, reason: str, description: str
    ) -> None:
        parked = dead_letter_message(message, reason=reason, description=description)
        self.send(dead_letter_queue(queue), [parked])

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        stored = self.queues.setdefault(queue, {})
        for message in messages:
            stored.setdefault(message.message_id, message)  # a duplicate id is dropped

    def messages(self, queue: str) -> list[OutboundMessage]:
        return list(self.queues.get(queue, {}).values())

    def commands(self, queue: str) -> list[ApplyOptInBatch]:
        """The commands on ``queue``, decoded back, in batch order."""
        return sorted((decode(m.body) for m in self.messages(queue)), key=lambda c: c.ref.batch)

    def dead_letters(self, queue: str) -> list[OutboundMessage]:
        """What the app moved to ``queue``'s dead letters."""
        return self.messages(dead_letter_queue(queue))
