"""The ``BatchPublisher`` port over any transport that sends encoded messages.

Commands are grouped, encoded and moved to the dead letters by the message codec, the same way
whichever transport carries them (Service Bus in Azure, the dev host's local queues, the tests'
in-memory queues); a transport only implements ``send``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence

from shared.adapters.servicebus.message_codec import (
    OutboundMessage,
    dead_letter_message,
    dead_letter_queue,
    encode,
    fit_items,
)
from shared.domain.commands import QueueCommand
from shared.services.ports import Item, ReceivedMessage


class EncodingPublisher(ABC):
    def fit(self, changes: Iterable[Item], *, max_items: int) -> Iterator[tuple[Item, ...]]:
        return fit_items(changes, max_items=max_items)

    def publish(
        self, queue: str, commands: Sequence[QueueCommand], *, session_id: str | None = None
    ) -> None:
        self.send(queue, [encode(command, session_id=session_id) for command in commands])

    def dead_letter(
        self, queue: str, message: ReceivedMessage, *, reason: str, description: str
    ) -> None:
        parked = dead_letter_message(message, reason=reason, description=description)
        self.send(dead_letter_queue(queue), [parked])

    @abstractmethod
    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        """Send every message or raise; a message id already sent is dropped."""
