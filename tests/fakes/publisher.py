"""In-memory ``BatchPublisher`` with Service Bus duplicate detection by ``message_id``."""

from __future__ import annotations

from collections.abc import Sequence

from shared.services.ports import OutboundMessage


class FakeBatchPublisher:
    def __init__(self) -> None:
        self.queues: dict[str, dict[str, OutboundMessage]] = {}
        self.sends = 0  # publish calls, duplicates included

    def publish(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        self.sends += 1
        stored = self.queues.setdefault(queue, {})
        for message in messages:
            stored.setdefault(message.message_id, message)  # a duplicate id is dropped

    def messages(self, queue: str) -> list[OutboundMessage]:
        return list(self.queues.get(queue, {}).values())
