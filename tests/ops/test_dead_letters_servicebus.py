"""The Service Bus back end of ``dead-letters``, on the SDK's own message types.

Messages are real ``ServiceBusReceivedMessage`` objects, made as a receiver makes them: an outgoing
``ServiceBusMessage`` is turned into its AMQP form, given what the broker adds (sequence number,
enqueued time, delivery count, the dead-letter reason) and decoded from the wire bytes
(``ServiceBusReceivedMessage.from_bytes``), so application properties come back as AMQP gives
them (bytes). Only the namespace is a fake, with the SDK's method signatures: sessions required on
the batch queues, none on their dead-letter sub-queues and ``-deadletter`` queues, peek-lock,
abandon counting a delivery, and duplicate detection on message ids.

Against a real namespace, the same commands run as ``python -m ops dead-letters ... --settings``
with the deployed app's settings (see the README's "Dead letters").
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import sys
import uuid
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusMessageBatch,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus._pyamqp._encode import encode_payload
from azure.servicebus._pyamqp.message import Header
from azure.servicebus._pyamqp.types import TYPE, VALUE, AMQPTypes
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport
from azure.servicebus.exceptions import (
    MessageLockLostError,
    ServiceBusAuthorizationError,
    ServiceBusServerBusyError,
)
from azure.servicebus.management import ServiceBusAdministrationClient

from ops.dead_letters import servicebus as sb
from ops.dead_letters.connect import dead_letter_console
from ops.dead_letters.decoding import describe
from ops.dead_letters.model import DeadLetter, Where
from ops.dead_letters.replay import ReplayReport, replay, replay_id, replay_message
from ops.dead_letters.servicebus import ServiceBusDeadLetters
from ops.dead_letters.store import DeadLetterConsole, Reopened
from ops.dead_letters.views import show_record
from ops.errors import UsageError
from ops.queues import ServiceBusQueueAdmin, UnavailableQueues
from shared.adapters.servicebus import message_codec as codec
from shared.adapters.servicebus.publisher import ServiceBusBatchPublisher
from shared.config import QueueSettings
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.domain.model import SyncType
from shared.errors import AuthFailed
from shared.services.ports import ReceivedMessage
from tests.messages.test_servicebus_publisher import RecordingBatch

QUEUE = "optin-batches"
PARKED = "optin-batches-deadletter"
DLQ = "/$deadletterqueue"
QUEUES = (QUEUE, "suppression-batches", "engagement-batches")
RUN = "20260302T120000-1a2b3c4d"
ACCOUNT = "00000000-0000-0000-0000-000000000001"
NOW = dt.datetime(2026, 3, 2, 13, 0, tzinfo=dt.UTC)


# --- the SDK's message types, as a receiver gets them -----------------------------------------
def received(
    message: ServiceBusMessage, *, sequence_number: int, delivery_count: int = 0,
    enqueued_at: dt.datetime = NOW - dt.timedelta(hours=1),
    broker_properties: dict[str, str] | None = None,
) -> ServiceBusReceivedMessage:
    amqp = PyamqpTransport.to_outgoing_amqp_message(message.raw_amqp_message)
    properties = dict(amqp.application_properties or {})
    properties.update(broker_properties or {})
    amqp = amqp._replace(
        header=Header(delivery_count=delivery_count),
        application_properties=properties,
        message_annotations={
            **(amqp.message_annotations or {}),
            b"x-opt-sequence-number": sequence_number,
            b"x-opt-enqueued-time": {TYPE: AMQPTypes.timestamp,
                                     VALUE: int(enqueued_at.timestamp() * 1000)},
        },
    )
    wire = bytearray()
    encode_payload(wire, amqp)
    return ServiceBusReceivedMessage.from_bytes(bytes(wire))


def outgoing(message: codec.OutboundMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        message.body, message_id=message.message_id, content_type=message.content_type,
        session_id=message.session_id,
        application_properties=dict(message.application_properties),  # type: ignore[arg-type]
    )


def batch(number: int, *emails: str) -> codec.OutboundMessage:
    command = ApplyOptInBatch(BatchRef(ACCOUNT, RUN, number),
                              tuple(OptInChange(email, "Double") for email in emails))
    return codec.encode(command, session_id=f"optin-{number % 4}")


# --- a namespace with the SDK's method signatures ---------------------------------------------
class Namespace:
    """Entities by path (``queue`` or ``queue/$deadletterqueue``), oldest message first."""

    def __init__(self) -> None:
        self.entities: dict[str, list[ServiceBusReceivedMessage]] = {}
        self.seen_ids: dict[str, set[str]] = {}
        self.abandoned: dict[int, int] = {}  # sequence number -> times abandoned
        self.sequence = itertools.count(1)
        self.fail_complete: Exception | None = None
        self.fail_peek: Exception | None = None

    # What the broker and the app do, to set a scene.
    def send(self, entity: str, message: ServiceBusMessage) -> bool:
        """Enqueue unless the id is a duplicate (dropped silently, as Service Bus does)."""
        if entity in QUEUES and not message.session_id:
            raise ValueError(f"{entity} requires sessions")
        seen = self.seen_ids.setdefault(entity, set())
        if message.message_id in seen:
            return False
        seen.add(str(message.message_id))
        self.put(entity, message)
        return True

    def put(self, entity: str, message: ServiceBusMessage, **broker: Any) -> None:
        self.entities.setdefault(entity, []).append(
            received(message, sequence_number=next(self.sequence), **broker))

    def dead_letter(self, queue: str, message_id: str, reason: str, description: str,
                    deliveries: int) -> None:
        """The broker gives a message up: to the queue's sub-queue, reason in its properties."""
        [held] = [m for m in self.entities[queue] if m.message_id == message_id]
        self.entities[queue].remove(held)
        again = ServiceBusMessage(
            b"".join(held.body), message_id=held.message_id, session_id=held.session_id,
            content_type=held.content_type,
            application_properties=sb.plain_properties(held.application_properties),  # type: ignore[arg-type]
        )
        self.put(queue + DLQ, again, delivery_count=deliveries, broker_properties={
            "DeadLetterReason": reason, "DeadLetterErrorDescription": description})

    def ids(self, entity: str) -> list[str]:
        return [str(m.message_id) for m in self.entities.get(entity, [])]

    # The ServiceBusClient calls.
    def get_queue_receiver(
        self, queue_name: str, *, sub_queue: ServiceBusSubQueue | None = None,
        receive_mode: ServiceBusReceiveMode = ServiceBusReceiveMode.PEEK_LOCK,
        max_wait_time: float | None = None,
    ) -> Receiver:
        if queue_name in QUEUES and sub_queue is None:
            raise AssertionError("a session queue needs a session receiver: never read here")
        assert receive_mode is ServiceBusReceiveMode.PEEK_LOCK  # never receive-and-delete
        entity = queue_name + (DLQ if sub_queue is ServiceBusSubQueue.DEAD_LETTER else "")
        return Receiver(self, entity)

    def get_queue_sender(self, queue_name: str) -> Sender:
        return Sender(self, queue_name)

    def close(self) -> None:
        pass


class Receiver:
    def __init__(self, namespace: Namespace, entity: str) -> None:
        self.namespace = namespace
        self.entity = entity
        self.locked: set[int] = set()

    def _messages(self) -> list[ServiceBusReceivedMessage]:
        return self.namespace.entities.setdefault(self.entity, [])

    def peek_messages(
        self, max_message_count: int = 1, *, sequence_number: int = 0,
        timeout: float | None = None, **kwargs: Any,
    ) -> list[ServiceBusReceivedMessage]:
        if self.namespace.fail_peek is not None:
            raise self.namespace.fail_peek
        later = [m for m in self._messages() if (m.sequence_number or 0) >= sequence_number]
        return later[:max_message_count]

    def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]:
        free = [m for m in self._messages() if m.sequence_number not in self.locked]
        taken = free[:max_message_count or 1]
        self.locked.update(m.sequence_number or 0 for m in taken)
        return taken

    def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        if self.namespace.fail_complete is not None:
            raise self.namespace.fail_complete
        assert message.sequence_number in self.locked, "settled without a lock"
        self.locked.discard(message.sequence_number or 0)
        messages = self._messages()
        messages[:] = [m for m in messages if m.sequence_number != message.sequence_number]

    def abandon_message(self, message: ServiceBusReceivedMessage) -> None:
        number = message.sequence_number or 0
        assert number in self.locked
        self.locked.discard(number)
        self.namespace.abandoned[number] = self.namespace.abandoned.get(number, 0) + 1

    def close(self) -> None:
        self.locked.clear()


class Sender:
    def __init__(self, namespace: Namespace, queue: str) -> None:
        self.namespace = namespace
        self.queue = queue

    def create_message_batch(self, max_size_in_bytes: int | None = None) -> RecordingBatch:
        return RecordingBatch(max_size_in_bytes or 256 * 1024)

    def send_messages(self, message: ServiceBusMessageBatch) -> None:
        assert isinstance(message, RecordingBatch)
        for one in message.added:
            self.namespace.send(self.queue, one)

    def close(self) -> None:
        pass


def park(namespace: Namespace, message: codec.OutboundMessage, reason: str,
         description: str) -> None:
    """The app parks a message it got on its first delivery, with its own publisher."""
    delivered = ReceivedMessage(message.message_id, message.body,
                                dict(message.application_properties), message.session_id, 1)
    parked = codec.dead_letter_message(delivered, reason=reason, description=description)
    ServiceBusBatchPublisher(namespace).send(PARKED, [parked])


def parked_batch(number: int) -> tuple[Namespace, codec.OutboundMessage]:
    """A namespace where the app parked batch ``number`` (refused, HTTP 400) at once."""
    namespace = Namespace()
    sent = batch(number, "a@example.com")
    park(namespace, sent, "BadRequest", "HTTP 400")
    return namespace, sent


def console_on(namespace: Namespace, accounting: Any = None) -> DeadLetterConsole:
    return DeadLetterConsole(ServiceBusDeadLetters(namespace), QUEUES, accounting,
                             clock=lambda: NOW)


# --- reading -------------------------------------------------------------------------------------
def test_a_broker_dead_letter_reads_as_the_app_sent_it_with_the_brokers_reason() -> None:
    namespace = Namespace()
    sent = batch(2, "jane.doe@example.com")
    namespace.send(QUEUE, outgoing(sent))
    namespace.dead_letter(QUEUE, sent.message_id, "MaxDeliveryCountExceeded",
                          "TransientError: dataverse 503", deliveries=10)

    [letter] = ServiceBusDeadLetters(namespace).dead_letters(QUEUE)

    assert (letter.queue, letter.where, letter.entity) == (QUEUE, Where.BROKER, QUEUE + DLQ)
    assert letter.message_id == sent.message_id and letter.body == sent.body
    assert letter.session_id == "optin-2" and letter.delivery_count == 10
    assert letter.reason == "MaxDeliveryCountExceeded"
    assert letter.description == "TransientError: dataverse 503"
    assert letter.enqueued_at == NOW - dt.timedelta(hours=1)
    # AMQP gives bytes; the console sees the app's properties as the app wrote them.
    assert letter.application_properties["run_id"] == RUN
    assert letter.application_properties["batch"] == 2
    assert letter.application_properties["dry_run"] is False
    view = describe(letter)
    assert view.sync_type is SyncType.CONTACT_OPT_IN and view.ref == BatchRef(ACCOUNT, RUN, 2)


def test_a_parked_message_reads_with_the_reason_delivery_count_and_session_the_app_kept() -> None:
    namespace = Namespace()
    sent = batch(5, "a@example.com")
    park(namespace, sent, "BadRequest", "dataverse HTTP 400")

    [letter] = ServiceBusDeadLetters(namespace).dead_letters(QUEUE)

    assert (letter.where, letter.entity, letter.queue) == (Where.APP, PARKED, QUEUE)
    assert (letter.reason, letter.description) == ("BadRequest", "dataverse HTTP 400")
    assert letter.delivery_count == 1 and letter.session_id == "optin-1"


def test_a_body_that_cannot_be_read_still_names_its_batch_through_its_properties() -> None:
    namespace = Namespace()
    sent = batch(3, "a@example.com")
    damaged = codec.OutboundMessage(sent.message_id, b'{"schema": "optin-batch", "version": 2}',
                                    application_properties=sent.application_properties,
                                    session_id=sent.session_id)
    park(namespace, damaged, "MessageFormatError", "optin-batch v2: missing field 'items'")

    [letter] = ServiceBusDeadLetters(namespace).dead_letters(QUEUE)

    view = describe(letter)
    assert view.command is None and "missing field 'items'" in (view.unreadable or "")
    assert view.ref == BatchRef(ACCOUNT, RUN, 3) and view.items == 1


def test_every_place_is_read_by_peeking_page_by_page_without_a_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sb, "PEEK_PAGE", 2)
    namespace = Namespace()
    for number in range(5):
        sent = batch(number, f"user{number}@example.com")
        namespace.send(QUEUE, outgoing(sent))
        namespace.dead_letter(QUEUE, sent.message_id, "MaxDeliveryCountExceeded", "", 10)
    park(namespace, batch(7, "p@example.com"), "BadRequest", "HTTP 400")
    # A parked message that outlived the queue's time to live: Service Bus dead-letters it too.
    expired = batch(8, "e@example.com")
    park(namespace, expired, "NotFound", "no such column")
    namespace.dead_letter(PARKED, expired.message_id, "TTLExpiredException", "", 1)

    letters = ServiceBusDeadLetters(namespace).dead_letters(QUEUE)

    assert [(lt.where, lt.entity) for lt in letters] == (
        [(Where.BROKER, QUEUE + DLQ)] * 5 + [(Where.APP, PARKED), (Where.BROKER, PARKED + DLQ)])
    assert [describe(lt).ref.batch for lt in letters] == [0, 1, 2, 3, 4, 7, 8]  # type: ignore[union-attr]
    ttl = letters[-1]
    assert ttl.queue == QUEUE and ttl.reason == "TTLExpiredException"
    assert ttl.session_id == "optin-0"  # from the app's SessionId: a replay keeps it
    assert namespace.abandoned == {}  # peeking counts no delivery


def test_a_read_the_namespace_refuses_is_the_apps_auth_error_naming_what_was_read() -> None:
    namespace = Namespace()
    namespace.fail_peek = ServiceBusAuthorizationError(
        message="Unauthorized access. 'Listen' claim(s) are required")
    with pytest.raises(AuthFailed, match=r"peek optin-batches/\$deadletterqueue"):
        ServiceBusDeadLetters(namespace).dead_letters(QUEUE)


def test_show_masks_addresses_unless_revealed() -> None:
    namespace = Namespace()
    sent = batch(1, "john.doe@example.com", "ann@shop.co.uk")
    park(namespace, sent, "BadRequest", "record with emailaddress1 john.doe@example.com refused")
    [letter] = ServiceBusDeadLetters(namespace).dead_letters(QUEUE)

    masked = show_record(letter, NOW, reveal=False)
    shown = json.dumps(masked, default=str)
    assert "john.doe" not in shown and "ann@" not in shown
    assert [i["email"] for i in masked["item_list"]] == ["j***@e***.com", "a***@s***.uk"]
    assert masked["description"] == "record with emailaddress1 j***@e***.com refused"
    revealed = show_record(letter, NOW, reveal=True)
    assert [i["email"] for i in revealed["item_list"]] == ["john.doe@example.com",
                                                           "ann@shop.co.uk"]


# --- replay and removal ------------------------------------------------------------------------
def only(letters: Sequence[DeadLetter], message_id: str) -> DeadLetter:
    [found] = [letter for letter in letters if letter.message_id == message_id]
    return found


def replay_all(console: DeadLetterConsole) -> ReplayReport:
    """``dead-letters replay --all``."""
    everything = console.all_dead_letters()
    return replay(console, everything, everything)


def replay_one(console: DeadLetterConsole, letter: DeadLetter) -> ReplayReport:
    """``dead-letters replay MESSAGE_ID``."""
    return replay(console, [letter], console.all_dead_letters())


class Accounting:
    def __init__(self, namespace: Namespace) -> None:
        self.namespace = namespace
        self.calls: list[tuple[str, list[str]]] = []

    def reopen(self, letter: DeadLetter) -> Reopened:
        self.calls.append((letter.message_id, self.namespace.ids(QUEUE)))
        return Reopened("failed count taken back")


def test_replay_sends_the_batch_under_a_replay_id_with_its_session_then_removes_it() -> None:
    namespace = Namespace()
    poisoned, other = batch(2, "a@example.com"), batch(3, "b@example.com")
    for sent in (other, poisoned):
        namespace.send(QUEUE, outgoing(sent))
        namespace.dead_letter(QUEUE, sent.message_id, "MaxDeliveryCountExceeded", "", 10)
    accounting = Accounting(namespace)
    console = console_on(namespace, accounting)
    letter = only(console.all_dead_letters(), poisoned.message_id)

    report = replay_one(console, letter)

    assert report.ok and report.outcomes[0].sent_as == f"{poisoned.message_id}~replay-1"
    # The run was told before the send (the queue still empty), so the replay's outcome is
    # the one counted.
    assert accounting.calls == [(poisoned.message_id, [])]
    [again] = namespace.entities[QUEUE][-1:]
    assert again.message_id == f"{poisoned.message_id}~replay-1"
    assert again.session_id == "optin-2" and b"".join(again.body) == poisoned.body
    properties = sb.plain_properties(again.application_properties)
    assert properties["ReplayOf"] == poisoned.message_id and properties["ReplayNumber"] == 1
    assert properties["run_id"] == RUN and properties["batch"] == 2
    assert "DeadLetterReason" not in properties and "DeadLetterErrorDescription" not in properties
    assert namespace.ids(QUEUE + DLQ) == [other.message_id]  # completed, the other kept
    kept = only(console.all_dead_letters(), other.message_id)
    assert namespace.abandoned == {kept.sequence_number: 1}  # received on the way, given back


def test_a_replay_that_cannot_be_sent_puts_the_run_back_and_keeps_the_dead_letter() -> None:
    namespace, sent = parked_batch(2)
    undone: list[str] = []

    class Undoable:
        def reopen(self, letter: DeadLetter) -> Reopened:
            def undo() -> str:
                undone.append(letter.message_id)
                return "put back"

            return Reopened("failed count taken back", undo=undo)

    def busy(entity: str, message: ServiceBusMessage) -> bool:
        raise ServiceBusServerBusyError(message="server busy")

    namespace.send = busy  # type: ignore[method-assign]
    console = console_on(namespace, Undoable())

    report = replay_all(console)

    [outcome] = report.outcomes
    assert not report.ok and outcome.error is not None and "busy" in outcome.error
    assert undone == [sent.message_id] and outcome.accounting == "put back"
    assert not outcome.removed and namespace.ids(PARKED) == [sent.message_id]


def test_a_parked_message_is_replayed_to_its_batch_queue_with_the_session_it_had() -> None:
    namespace, sent = parked_batch(6)
    console = console_on(namespace)

    report = replay_all(console)

    assert report.ok
    [again] = namespace.entities[QUEUE]
    assert again.session_id == "optin-2" and again.message_id == f"{sent.message_id}~replay-1"
    assert "SessionId" not in sb.plain_properties(again.application_properties)
    assert namespace.ids(PARKED) == []


def test_a_replay_interrupted_before_the_removal_is_sent_once_when_run_again() -> None:
    namespace, sent = parked_batch(2)
    console = console_on(namespace)
    [letter] = console.all_dead_letters()
    namespace.fail_complete = MessageLockLostError(message="lock lost")

    interrupted = replay_one(console, letter)
    assert not interrupted.ok and "lock" in (interrupted.removal_error or "")
    assert namespace.ids(QUEUE) == [f"{sent.message_id}~replay-1"]
    assert namespace.ids(PARKED) == [sent.message_id]  # not lost: still there to replay

    namespace.fail_complete = None
    report = replay_all(console)

    assert report.ok
    assert namespace.ids(QUEUE) == [f"{sent.message_id}~replay-1"]  # the re-send was dropped
    assert namespace.ids(PARKED) == []


def test_a_replay_that_fails_again_is_a_new_dead_letter_replayed_under_the_next_number() -> None:
    namespace, sent = parked_batch(2)
    console = console_on(namespace)
    replay_all(console)
    first = f"{sent.message_id}~replay-1"
    # The applier fails the replay too, permanently this time for another reason: parked again.
    [delivered] = namespace.entities.pop(QUEUE)
    park(namespace, codec.OutboundMessage(
        first, b"".join(delivered.body),
        application_properties=sb.plain_properties(delivered.application_properties),  # type: ignore[arg-type]
        session_id=delivered.session_id), "AuthFailed", "HTTP 403")

    [letter] = console.all_dead_letters()
    assert (letter.message_id, letter.reason, letter.replay_number) == (first, "AuthFailed", 1)
    assert letter.first_id == sent.message_id
    assert replay_id(letter) == f"{sent.message_id}~replay-2"  # not a duplicate of the first
    assert namespace.ids(QUEUE) == []  # nothing re-sent it by itself

    replay_one(console, letter)
    assert namespace.ids(QUEUE) == [f"{sent.message_id}~replay-2"]


def test_a_dead_letter_replayed_before_is_removed_without_a_send_when_its_replay_failed() -> None:
    namespace, sent = parked_batch(2)
    # A replay was sent and failed again, but the original was never removed (a crash).
    replayed = codec.OutboundMessage(
        f"{sent.message_id}~replay-1", sent.body,
        application_properties={**sent.application_properties, "ReplayOf": sent.message_id,
                                "ReplayNumber": 1}, session_id=sent.session_id)
    park(namespace, replayed, "AuthFailed", "HTTP 403")
    console = console_on(namespace)

    report = replay_all(console)

    original, second = report.outcomes
    assert original.superseded_by == replayed.message_id and original.sent_as is None
    assert second.sent_as == f"{sent.message_id}~replay-2"
    assert namespace.ids(QUEUE) == [f"{sent.message_id}~replay-2"]
    assert namespace.ids(PARKED) == []


def test_purge_completes_only_the_chosen_dead_letters() -> None:
    namespace = Namespace()
    kept, purged = batch(1, "a@example.com"), batch(2, "b@example.com")
    for sent in (kept, purged):
        park(namespace, sent, "BadRequest", "HTTP 400")
    store = ServiceBusDeadLetters(namespace)

    removed = store.remove([only(store.dead_letters(QUEUE), purged.message_id)])

    assert [letter.message_id for letter in removed] == [purged.message_id]
    assert namespace.ids(PARKED) == [kept.message_id]
    assert store.remove(removed) == []  # gone already: nothing to complete
    assert namespace.ids(QUEUE) == []  # purging sends nothing


def test_a_long_scan_stops_when_locks_run_out_and_messages_come_round_again() -> None:
    namespace = Namespace()
    for number in range(3):
        park(namespace, batch(number, "a@example.com"), "BadRequest", "HTTP 400")
    store = ServiceBusDeadLetters(namespace)
    ghost = DeadLetter(QUEUE, PARKED, Where.APP, "gone", 999, b"", {}, None, 1, "", "", None)

    class ExpiringReceiver(Receiver):
        def receive_messages(self, max_message_count: int | None = 1,
                             max_wait_time: float | None = None) -> list[ServiceBusReceivedMessage]:
            self.locked.clear()  # every lock lapsed between two receives
            return super().receive_messages(1, max_wait_time)

    namespace.get_queue_receiver = (  # type: ignore[method-assign]
        lambda queue_name, **_: ExpiringReceiver(namespace, queue_name))

    assert store.remove([ghost]) == []
    assert len(namespace.ids(PARKED)) == 3


def test_the_replay_id_of_a_long_foreign_id_is_a_digest_within_the_limit() -> None:
    letter = DeadLetter(QUEUE, PARKED, Where.APP, "x" * 128, 1, b"", {}, "s", 1, "", "", None)
    first, second = replay_id(letter), replay_id(letter)
    assert first == second and len(first) <= 128 and first.endswith("~replay-1")


def test_the_console_reads_service_bus_when_the_settings_name_no_local_queues() -> None:
    connection = ("Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=ops;"
                  "SharedAccessKey=c2VjcmV0")
    queues = QueueSettings(connection_string=connection)
    console = SimpleNamespace(
        queues=ServiceBusQueueAdmin.from_settings(queues, None),
        settings=SimpleNamespace(queues=queues), credential=None,
        tables=TableServiceClient.from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey=c2VjcmV0;"
            "EndpointSuffix=core.windows.net"),
        queue_names=lambda: list(QUEUES),
    )
    letters = dead_letter_console(console)  # type: ignore[arg-type]  # building makes no call
    assert isinstance(letters.store, ServiceBusDeadLetters) and letters.queues == QUEUES
    assert letters.accounting is not None
    letters.close()
    console.queues = UnavailableQueues("no queues configured")
    with pytest.raises(UsageError, match="no queues configured"):
        dead_letter_console(console)  # type: ignore[arg-type]


# --- against a real namespace: not a test of the suite (none is reachable from CI) -------------
# python -m tests.ops.test_dead_letters_servicebus "<connection string with Manage rights>"
REAL_NAMESPACE = os.environ.get("OPS_TEST_SERVICEBUS_CONNECTION", "")


def check_on_a_real_namespace() -> None:
    """Dead letters are listed, replayed once and removed on a real namespace: creates two
    throwaway queues as the Bicep makes them (sessions and duplicate detection on the batch
    queue, a session-less ``-deadletter`` queue) and deletes them afterwards."""
    admin = ServiceBusAdministrationClient.from_connection_string(REAL_NAMESPACE)
    queue = f"ops-dead-letters-{uuid.uuid4().hex[:8]}"
    window = dt.timedelta(minutes=10)
    admin.create_queue(queue, requires_session=True, requires_duplicate_detection=True,
                       duplicate_detection_history_time_window=window, max_delivery_count=2)
    admin.create_queue(f"{queue}-deadletter", requires_duplicate_detection=True,
                       duplicate_detection_history_time_window=window)
    try:
        _real_namespace_round_trip(queue)
    finally:
        admin.delete_queue(queue)
        admin.delete_queue(f"{queue}-deadletter")


def _real_namespace_round_trip(queue: str) -> None:
    broken, parked = batch(1, "a@example.com"), batch(2, "b@example.com")
    with ServiceBusClient.from_connection_string(REAL_NAMESPACE) as client:
        publisher = ServiceBusBatchPublisher(client)
        publisher.send(queue, [broken])
        with client.get_queue_receiver(queue, session_id=broken.session_id,
                                       max_wait_time=10) as receiver:
            [delivered] = receiver.receive_messages(max_wait_time=10)
            receiver.dead_letter_message(delivered, reason="MaxDeliveryCountExceeded",
                                         error_description="TransientError: test")
        delivery = ReceivedMessage(parked.message_id, parked.body,
                                   dict(parked.application_properties), parked.session_id, 1)
        publisher.send(f"{queue}-deadletter", [codec.dead_letter_message(
            delivery, reason="BadRequest", description="HTTP 400")])

        store = ServiceBusDeadLetters(ServiceBusClient.from_connection_string(REAL_NAMESPACE))
        try:
            letters = store.dead_letters(queue)
            assert sorted((str(x.where), x.message_id, x.reason) for x in letters) == sorted([
                ("broker", broken.message_id, "MaxDeliveryCountExceeded"),
                ("app", parked.message_id, "BadRequest")])
            report = replay(DeadLetterConsole(store, (queue,)), letters, letters)
            assert report.ok, report
            assert store.dead_letters(queue) == []
            store.send(queue, replay_message(letters[0]))  # again: dropped as a duplicate
        finally:
            store.close()

        for sent in (broken, parked):
            with client.get_queue_receiver(queue, session_id=sent.session_id,
                                           max_wait_time=5) as receiver:
                received_now = receiver.receive_messages(max_message_count=10, max_wait_time=5)
                assert [m.message_id for m in received_now] == [f"{sent.message_id}~replay-1"]
                assert b"".join(received_now[0].body) == sent.body
                receiver.complete_message(received_now[0])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        REAL_NAMESPACE = sys.argv[1]
    if not REAL_NAMESPACE:
        raise SystemExit("give a namespace's connection string with Manage rights (argument or "
                         "OPS_TEST_SERVICEBUS_CONNECTION)")
    check_on_a_real_namespace()
    print("dead letters listed, replayed once and removed on the real namespace")
