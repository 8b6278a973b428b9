"""In-memory ``BatchPublisher`` with Service Bus duplicate detection by ``message_id``.

Commands are encoded with the real message codec, so tests see the ``OutboundMessage``s Service
Bus would get (ids, properties, session ids, bodies) and can decode them back into commands.
Dead letters go where the real publishers put them: ``dead_letter_queue(queue)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.adapters.servicebus.encoding_publisher import EncodingPublisher
from shared.adapters.servicebus.message_codec import OutboundMessage, dead_letter_queue, decode
from shared.domain.commands import QueueCommand


class FakeBatchPublisher(EncodingPublisher):
    def __init__(self) -> None:
        self.queues: dict[str, dict[str, OutboundMessage]] = {}
        self.sends = 0  # publish calls, duplicates included

    def publish(
        self, queue: str, commands: Sequence[QueueCommand], *, session_id: str | None = None
    ) -> None:
        self.sends += 1
        super().publish(queue, commands, session_id=session_id)

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        stored = self.queues.setdefault(queue, {})
        for message in messages:
            stored.setdefault(message.message_id, message)  # a duplicate id is dropped

    def messages(self, queue: str) -> list[OutboundMessage]:
        return list(self.queues.get(queue, {}).values())

    def commands(self, queue: str) -> list[Any]:
        """The commands on ``queue``, decoded back, in batch order (every command on one queue
        is of the queue's one kind)."""
        return sorted((decode(m.body) for m in self.messages(queue)), key=lambda c: c.ref.batch)

    def dead_letters(self, queue: str) -> list[OutboundMessage]:
        """What the app moved to ``queue``'s dead letters."""
        return self.messages(dead_letter_queue(queue))
