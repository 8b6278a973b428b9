"""Dead letters on Azure Service Bus, through the ``azure-servicebus`` SDK.

- Reading peeks (``peek_messages``): no lock is taken and no delivery is counted, so listing
  never changes what it lists. The dead-letter sub-queue of a session queue has no sessions, and
  neither has the app's ``-deadletter`` queue, so one plain receiver reads each.
- Removing receives in peek-lock mode and completes the chosen messages (Service Bus can only
  settle a message through a lock; there is no delete by sequence number). The others received on
  the way are abandoned once the chosen ones are found: that adds one to their delivery count,
  which the dead-letter sub-queue ignores, but which the ``-deadletter`` queue counts against its
  max delivery count, so the scan stops as soon as every chosen message is found.
- Sending goes through the app's own ``ServiceBusBatchPublisher``: the same checks of ids and
  sessions, the same error mapping.

A received message's application properties come back from AMQP as bytes (keys and string
values alike); they are decoded here, so the rest of the console sees what the app sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from azure.core.exceptions import AzureError
from azure.servicebus import (
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.amqp import AmqpMessageBodyType

from ops.dead_letters.model import (
    DLQ_SUFFIX,
    DeadLetter,
    PropertyValue,
    Where,
    parked_fields,
)
from shared.adapters.servicebus.message_codec import OutboundMessage, dead_letter_queue
from shared.adapters.servicebus.publisher import (
    QueueClient,
    ServiceBusBatchPublisher,
    servicebus_error,
)
from shared.errors import IntegrationError

PEEK_PAGE = 100
RECEIVE_PAGE = 50
RECEIVE_WAIT_S = 5.0  # an empty receive waits this long: the end of what there is to scan


class DeadLetterReceiver(Protocol):
    """The part of ``ServiceBusReceiver`` used here (fakes in tests follow the same calls)."""

    def peek_messages(
        self, max_message_count: int = 1, *, sequence_number: int = 0
    ) -> list[ServiceBusReceivedMessage]: ...

    def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]: ...

    def complete_message(self, message: ServiceBusReceivedMessage) -> None: ...

    def abandon_message(self, message: ServiceBusReceivedMessage) -> None: ...

    def close(self) -> None: ...


class DeadLetterClient(QueueClient, Protocol):
    """The part of ``ServiceBusClient`` used here."""

    def get_queue_receiver(
        self, queue_name: str, *, sub_queue: ServiceBusSubQueue | None = None,
        receive_mode: ServiceBusReceiveMode = ServiceBusReceiveMode.PEEK_LOCK,
        max_wait_time: float | None = None,
    ) -> DeadLetterReceiver: ...


class ServiceBusDeadLetters:
    def __init__(self, client: DeadLetterClient) -> None:
        self._client = client
        self._publisher = ServiceBusBatchPublisher(client)

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        parked = dead_letter_queue(queue)
        return [
            *self._peek(queue, queue, Where.BROKER),
            *self._peek(queue, parked, Where.APP),
            # Parked messages that outlived the queue's time to live (P14D as deployed).
            *self._peek(queue, parked, Where.BROKER),
        ]

    def send(self, queue: str, message: OutboundMessage) -> None:
        self._publisher.send(queue, [message])

    def remove(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        removed: list[DeadLetter] = []
        by_entity: dict[tuple[str, Where], list[DeadLetter]] = {}
        for letter in letters:
            name = letter.entity.removesuffix(DLQ_SUFFIX)
            place = Where.BROKER if letter.entity.endswith(DLQ_SUFFIX) else Where.APP
            by_entity.setdefault((name, place), []).append(letter)
        for (name, place), chosen in by_entity.items():
            try:
                removed += self._complete(name, place, chosen)
            except AzureError as error:
                raise _failed(error, name, place, "remove from") from error
        return removed

    def close(self) -> None:
        self._publisher.close()  # closes the client too

    # --- the SDK calls -----------------------------------------------------------------------
    def _receiver(self, entity: str, place: Where) -> DeadLetterReceiver:
        sub_queue = ServiceBusSubQueue.DEAD_LETTER if place is Where.BROKER else None
        return self._client.get_queue_receiver(
            entity, sub_queue=sub_queue, receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
            max_wait_time=RECEIVE_WAIT_S,
        )

    def _peek(self, queue: str, entity: str, place: Where) -> list[DeadLetter]:
        try:
            receiver = self._receiver(entity, place)
            try:
                return [to_dead_letter(queue, entity, place, message)
                        for message in _peek_all(receiver)]
            finally:
                receiver.close()
        except AzureError as error:
            raise _failed(error, entity, place, "peek") from error

    def _complete(
        self, entity: str, place: Where, chosen: Sequence[DeadLetter]
    ) -> list[DeadLetter]:
        wanted = {letter.sequence_number: letter for letter in chosen}
        held: list[ServiceBusReceivedMessage] = []  # every lock taken, settled or not
        completed: list[int] = []
        receiver = self._receiver(entity, place)
        try:
            found = self._receive_until_found(receiver, set(wanted), held)
            for number, message in found.items():
                receiver.complete_message(message)
                completed.append(number)
            return [wanted[number] for number in completed]
        finally:
            # Abandoned only now: an abandoned message is available at once and would come back
            # first in the next receive, so the scan would never get past it.
            for message in held:
                if (message.sequence_number or 0) not in completed:
                    _abandon(receiver, message)
            receiver.close()

    @staticmethod
    def _receive_until_found(
        receiver: DeadLetterReceiver, wanted: set[int], held: list[ServiceBusReceivedMessage]
    ) -> dict[int, ServiceBusReceivedMessage]:
        found: dict[int, ServiceBusReceivedMessage] = {}
        seen: set[int] = set()
        while len(found) < len(wanted):
            batch = receiver.receive_messages(RECEIVE_PAGE, max_wait_time=RECEIVE_WAIT_S)
            held += batch
            fresh = [m for m in batch if (m.sequence_number or 0) not in seen]
            if not fresh:
                # Nothing new: the end of the queue, or the locks of a long scan ran out and the
                # same messages came round again.
                break
            for message in fresh:
                number = message.sequence_number or 0
                seen.add(number)
                if number in wanted:
                    found[number] = message
        return found


def _failed(error: AzureError, entity: str, place: Where, operation: str) -> IntegrationError:
    """The taxonomy error the app's publisher would give, naming this operation instead."""
    failure = servicebus_error(error, entity)
    failure.operation = f"{operation} {entity}{DLQ_SUFFIX if place is Where.BROKER else ''}"
    return failure


def _peek_all(receiver: DeadLetterReceiver) -> Iterator[ServiceBusReceivedMessage]:
    # peek_messages starts at a sequence number, so page by the last one seen.
    next_number = 0
    while True:
        page = receiver.peek_messages(PEEK_PAGE, sequence_number=next_number)
        if not page:
            return
        yield from page
        next_number = max(m.sequence_number or 0 for m in page) + 1


def _abandon(receiver: DeadLetterReceiver, message: ServiceBusReceivedMessage) -> None:
    try:
        receiver.abandon_message(message)
    except Exception:  # noqa: BLE001 - a lock lost already releases the message just the same
        pass


def to_dead_letter(
    queue: str, entity: str, place: Where, message: ServiceBusReceivedMessage
) -> DeadLetter:
    """The console's view of one message peeked from ``entity`` (``queue``'s dead letters)."""
    properties = plain_properties(message.application_properties)
    delivery_count = message.delivery_count or 0
    session_id = message.session_id
    if place is Where.APP or entity != queue:
        reason, description, delivery_count, session_id = parked_fields(
            properties, delivery_count=delivery_count, session_id=session_id)
    if place is Where.BROKER:
        reason = message.dead_letter_reason or ""
        description = message.dead_letter_error_description or ""
    return DeadLetter(
        queue=queue, entity=entity + (DLQ_SUFFIX if place is Where.BROKER else ""), where=place,
        message_id=str(message.message_id or ""), sequence_number=message.sequence_number or 0,
        body=message_body(message), application_properties=properties,
        session_id=session_id, delivery_count=delivery_count, reason=reason,
        description=description, enqueued_at=message.enqueued_time_utc,
    )


def message_body(message: ServiceBusReceivedMessage) -> bytes:
    """The body as the app sent it (data sections); another body type, never the app's, as
    its text, so it is still shown and listed as unreadable."""
    if message.body_type is AmqpMessageBodyType.DATA:
        return b"".join(message.body)
    return str(message.body).encode()


def plain_properties(raw: Mapping[Any, Any] | None) -> dict[str, PropertyValue]:
    properties: dict[str, PropertyValue] = {}
    for key, value in (raw or {}).items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        properties[name] = value if isinstance(value, str | int | float | bool) else str(value)
    return properties
