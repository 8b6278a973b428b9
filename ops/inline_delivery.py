"""A publisher that delivers every batch at once, in-process, to the applier the queue would
hand it to, with the queue's redeliveries: what a console dry run publishes never reaches a
queue, and each batch is applied (in dry-run mode) by the same delivery code as in the app.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ops.write_guards import WriteRefused
from shared.adapters.servicebus.encoding_publisher import EncodingPublisher
from shared.adapters.servicebus.message_codec import DEAD_LETTER_SUFFIX, OutboundMessage
from shared.services.ports import ReceivedMessage
from shared.services.sync.delivery import ApplyResult

Deliver = Callable[[ReceivedMessage], ApplyResult]


@dataclass(frozen=True)
class DeadLetterNote:
    """A batch the app would have dead-lettered: by the broker after its last delivery, or moved
    aside by the app at once (``parked``)."""

    queue: str
    message_id: str
    reason: str
    description: str
    parked: bool


class InlinePublisher(EncodingPublisher):
    def __init__(self, on_batch: Callable[[ApplyResult], None] = lambda result: None) -> None:
        self._routes: dict[str, tuple[Deliver, int]] = {}
        self._seen: set[str] = set()
        self._on_batch = on_batch
        self.dead_letters: list[DeadLetterNote] = []

    def route(self, queue: str, deliver: Deliver, max_delivery_count: int) -> None:
        self._routes[queue] = (deliver, max_delivery_count)

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        if queue.endswith(DEAD_LETTER_SUFFIX):
            for message in messages:
                properties = message.application_properties
                self.dead_letters.append(DeadLetterNote(
                    queue, message.message_id, str(properties.get("DeadLetterReason", "")),
                    str(properties.get("DeadLetterErrorDescription", "")), parked=True))
            return
        deliver, max_count = self._routes[queue]
        for message in messages:
            if message.message_id in self._seen:
                continue  # as duplicate detection drops a re-published batch
            self._seen.add(message.message_id)
            self._deliver(queue, message, deliver, max_count)

    def _deliver(
        self, queue: str, message: OutboundMessage, deliver: Deliver, max_count: int
    ) -> None:
        for count in range(1, max_count + 1):
            received = ReceivedMessage(message.message_id, message.body,
                                       dict(message.application_properties),
                                       message.session_id, count)
            try:
                self._on_batch(deliver(received))
                return
            except WriteRefused:
                raise
            # The broker redelivers after any failure; the applier counts the batch as failed
            # on the last delivery, as it would in the app.
            except Exception as error:
                if count == max_count:
                    self.dead_letters.append(DeadLetterNote(
                        queue, message.message_id, "MaxDeliveryCountExceeded",
                        f"{type(error).__name__}: {error}", parked=False))
