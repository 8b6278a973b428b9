"""The Service Bus publisher's batching and error mapping, on a fake sender with real batches.

The fake sender hands out real ``ServiceBusMessageBatch`` objects, so the size accounting is the
SDK's own; only the network send is replaced.
"""

from __future__ import annotations

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import (
    MessagingEntityNotFoundError,
    OperationTimeoutError,
    ServiceBusAuthorizationError,
    ServiceBusConnectionError,
    ServiceBusQuotaExceededError,
    ServiceBusServerBusyError,
)

from shared.adapters.servicebus import message_codec as codec
from shared.adapters.servicebus.message_codec import OutboundMessage
from shared.adapters.servicebus.publisher import (
    ServiceBusBatchPublisher,
    servicebus_error,
)
from shared.config import QueueSettings
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    IntegrationError,
    NotFound,
    RateLimited,
    System,
    TransientError,
)
from shared.services.ports import BatchPublisher, ReceivedMessage


class RecordingBatch(ServiceBusMessageBatch):
    def __init__(self, max_size_in_bytes: int) -> None:
        super().__init__(max_size_in_bytes=max_size_in_bytes)
        self.added: list[ServiceBusMessage] = []

    def add_message(self, message: ServiceBusMessage) -> None:  # type: ignore[override]
        super().add_message(message)
        self.added.append(message)


class FakeSender:
    def __init__(self, queue: str, max_size: int) -> None:
        self.queue = queue
        self.max_size = max_size
        self.sent: list[RecordingBatch] = []
        self.fail_next: AzureError | None = None
        self.closed = False

    def create_message_batch(self, max_size_in_bytes: int | None = None) -> RecordingBatch:
        return RecordingBatch(min(max_size_in_bytes or self.max_size, self.max_size))

    def send_messages(self, message: ServiceBusMessageBatch) -> None:
        assert isinstance(message, RecordingBatch) and not self.closed
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.sent.append(message)

    def close(self) -> None:
        self.closed = True


class FakeClient:
    def __init__(self, max_size: int = 256 * 1024) -> None:
        self.max_size = max_size
        self.senders: list[FakeSender] = []

    def get_queue_sender(self, queue_name: str) -> FakeSender:
        self.senders.append(FakeSender(queue_name, self.max_size))
        return self.senders[-1]

    def close(self) -> None:
        pass

    def sent(self, queue: str) -> list[list[ServiceBusMessage]]:
        return [batch.added for s in self.senders if s.queue == queue for batch in s.sent]


def outbound(number: int, size: int = 100) -> OutboundMessage:
    return OutboundMessage(message_id=f"m-{number}", body=b"x" * size,
                           application_properties={"batch": number, "schema": "test"})


def a_command(batch: int, *emails: str) -> ApplyOptInBatch:
    return ApplyOptInBatch(BatchRef("acct-1", "run-1", batch),
                           tuple(OptInChange(email, "Double") for email in emails))


def test_a_few_messages_go_out_in_one_batch_with_their_ids_and_properties() -> None:
    client = FakeClient()
    encoded = codec.encode(a_command(7, "a@example.org"))

    ServiceBusBatchPublisher(client).send("optin-batches", [encoded, outbound(2)])

    [[first, second]] = client.sent("optin-batches")
    assert first.message_id == encoded.message_id
    assert first.content_type == "application/json"
    assert b"".join(first.body) == encoded.body
    assert first.application_properties == dict(encoded.application_properties)
    assert second.message_id == "m-2"


def test_messages_are_split_into_batches_under_the_size_limit_in_order() -> None:
    client = FakeClient(max_size=4096)
    sent = [outbound(n, size=700) for n in range(20)]

    ServiceBusBatchPublisher(client).send("q", sent)

    batches = client.sent("q")
    assert len(batches) > 1
    assert [m.message_id for b in batches for m in b] == [m.message_id for m in sent]
    assert all(batch.size_in_bytes <= 4096 for s in client.senders for batch in s.sent)


def test_a_configured_batch_limit_below_the_queues_is_honoured() -> None:
    client = FakeClient(max_size=256 * 1024)
    ServiceBusBatchPublisher(client, max_batch_bytes=2048).send(
        "q", [outbound(n, 700) for n in range(6)])
    assert [len(b) for b in client.sent("q")] == [2, 2, 2]


def test_a_message_that_can_never_fit_fails_before_anything_is_sent() -> None:
    client = FakeClient(max_size=4096)
    with pytest.raises(BadRequest, match="m-3 does not fit") as caught:
        ServiceBusBatchPublisher(client).send(
            "q", [outbound(1), outbound(2), outbound(3, size=5000)])
    assert caught.value.system is System.SERVICEBUS
    assert client.sent("q") == []


def in_session(number: int, session: str | None, size: int = 100) -> OutboundMessage:
    return OutboundMessage(message_id=f"m-{number}", body=b"x" * size, session_id=session)


def test_each_message_carries_its_session_id_and_no_session_stays_none() -> None:
    client = FakeClient()
    ServiceBusBatchPublisher(client).send("q", [in_session(1, "optin-3"), outbound(2)])

    sent = [m for batch in client.sent("q") for m in batch]
    assert {m.message_id: m.session_id for m in sent} == {"m-1": "optin-3", "m-2": None}


def test_a_batch_never_mixes_sessions_and_each_session_keeps_its_order() -> None:
    client = FakeClient()
    sessions = ["optin-0", "optin-1", "optin-0", "optin-2", "optin-1", "optin-0"]

    ServiceBusBatchPublisher(client).send(
        "q", [in_session(n, s) for n, s in enumerate(sessions)])

    batches = client.sent("q")
    assert [{m.session_id for m in batch} for batch in batches] == [
        {"optin-0"}, {"optin-1"}, {"optin-2"}]
    assert [[m.message_id for m in batch] for batch in batches] == [
        ["m-0", "m-2", "m-5"], ["m-1", "m-4"], ["m-3"]]


def test_the_session_id_counts_in_the_batch_size() -> None:
    # Two messages fill a batch exactly without a session id; with one they no longer fit.
    plain = ServiceBusMessageBatch(max_size_in_bytes=1_000_000)
    for n in range(2):
        plain.add_message(ServiceBusMessage(b"x" * 700, message_id=f"m-{n}",
                                            content_type="application/json"))
    client = FakeClient(max_size=plain.size_in_bytes)

    publisher = ServiceBusBatchPublisher(client)
    publisher.send("q", [OutboundMessage(f"m-{n}", b"x" * 700) for n in range(2)])
    publisher.send(
        "s", [OutboundMessage(f"m-{n}", b"x" * 700, session_id="optin-1") for n in range(2)])

    assert [len(b) for b in client.sent("q")] == [2]
    assert [len(b) for b in client.sent("s")] == [1, 1]
    assert all(b.size_in_bytes <= client.max_size for s in client.senders for b in s.sent)


@pytest.mark.parametrize("session_id", ["", "  ", "s" * 129])
def test_an_unusable_session_id_is_refused_and_nothing_is_sent(session_id: str) -> None:
    client = FakeClient()
    with pytest.raises(ValueError, match="session_id"):
        ServiceBusBatchPublisher(client).send(
            "q", [in_session(1, "optin-0"), in_session(2, session_id)])
    assert client.senders == []


@pytest.mark.parametrize("message_id", ["", "   ", "x" * 129])
def test_messages_without_a_usable_id_are_refused_and_nothing_is_sent(message_id: str) -> None:
    client = FakeClient()
    with pytest.raises(ValueError, match="message_id"):
        ServiceBusBatchPublisher(client).send(
            "q", [outbound(1), OutboundMessage(message_id=message_id, body=b"{}")])
    assert client.senders == []


def test_nothing_to_publish_sends_nothing_and_an_empty_queue_name_is_refused() -> None:
    client = FakeClient()
    ServiceBusBatchPublisher(client).send("q", [])
    assert client.senders == []
    with pytest.raises(ValueError, match="queue name"):
        ServiceBusBatchPublisher(client).send("", [outbound(1)])


def test_one_sender_per_queue_is_reused() -> None:
    client = FakeClient()
    publisher = ServiceBusBatchPublisher(client)
    for n in range(3):
        publisher.send("a", [outbound(n)])
    publisher.send("b", [outbound(9)])
    assert [s.queue for s in client.senders] == ["a", "b"]
    assert len(client.sent("a")) == 3


def test_a_failed_sender_is_closed_and_replaced_and_a_repeat_sends_everything() -> None:
    client = FakeClient(max_size=2048)
    publisher = ServiceBusBatchPublisher(client)
    publisher.send("q", [outbound(0)])
    broken = client.senders[0]
    broken.fail_next = ServiceBusConnectionError(message="link detached")

    with pytest.raises(TransientError) as caught:
        publisher.send("q", [outbound(n, 700) for n in range(1, 5)])
    assert caught.value.retryable and caught.value.system is System.SERVICEBUS
    assert broken.closed

    publisher.send("q", [outbound(n, 700) for n in range(1, 5)])
    assert len(client.senders) == 2
    assert [m.message_id for b in client.sent("q") for m in b] == [
        "m-0", "m-1", "m-2", "m-3", "m-4"]


@pytest.mark.parametrize("error, expected", [
    (ServiceBusAuthorizationError(message="no Data Sender role"), AuthFailed),
    (MessagingEntityNotFoundError(message="no such queue"), NotFound),
    (ServiceBusServerBusyError(message="busy"), RateLimited),
    (OperationTimeoutError(message="timed out"), TransientError),
    (ServiceBusConnectionError(message="reset"), TransientError),
    (ServiceBusQuotaExceededError(message="queue full"), IntegrationError),
])
def test_send_failures_map_to_the_taxonomy(error: AzureError, expected: type[Exception]) -> None:
    client = FakeClient()
    publisher = ServiceBusBatchPublisher(client)
    publisher.send("q", [outbound(0)])
    client.senders[0].fail_next = error

    with pytest.raises(expected) as caught:
        publisher.send("q", [outbound(1)])
    assert type(caught.value) is expected
    assert caught.value.system is System.SERVICEBUS  # type: ignore[attr-defined]
    assert caught.value.operation == "send to q"  # type: ignore[attr-defined]


def test_server_busy_asks_for_the_documented_wait() -> None:
    mapped = servicebus_error(ServiceBusServerBusyError(message="busy"), "q")
    assert isinstance(mapped, RateLimited) and mapped.retry_after_s == 10


class StaticCredential:
    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("token", 2_000_000_000)


CONNECTION = ("Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=send;"
              "SharedAccessKey=c2VjcmV0")


def test_clients_are_built_from_a_connection_string_or_a_namespace_with_an_identity() -> None:
    by_key = ServiceBusBatchPublisher.from_settings(QueueSettings(connection_string=CONNECTION))
    by_identity = ServiceBusBatchPublisher.from_settings(
        QueueSettings(namespace="example.servicebus.windows.net"), credential=StaticCredential())
    for publisher in (by_key, by_identity):
        assert isinstance(publisher._client, ServiceBusClient)
        assert publisher._client.fully_qualified_namespace == "example.servicebus.windows.net"
        publisher.close()


def test_missing_connection_settings_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ServiceBusConnection"):
        ServiceBusBatchPublisher.from_settings(QueueSettings())
    with pytest.raises(ConfigError):  # a namespace alone needs an identity to go with it
        ServiceBusBatchPublisher.from_settings(QueueSettings(namespace="x.servicebus.windows.net"))


# --- the BatchPublisher port: commands in, encoded by the codec ----------------------------------
def test_published_commands_go_out_encoded_by_the_codec_in_their_session() -> None:
    client = FakeClient()
    publisher: BatchPublisher = ServiceBusBatchPublisher(client)
    commands = [a_command(0, "a@example.org"), a_command(1, "b@example.org", "c@example.org")]

    publisher.publish("optin-batches", commands, session_id="optin-2")

    sent = [m for batch in client.sent("optin-batches") for m in batch]
    expected = [codec.encode(c, session_id="optin-2") for c in commands]
    assert [m.message_id for m in sent] == [e.message_id for e in expected]
    assert [b"".join(m.body) for m in sent] == [e.body for e in expected]
    assert {m.session_id for m in sent} == {"optin-2"}
    assert [codec.decode(b"".join(m.body)) for m in sent] == commands


def test_publishing_no_commands_sends_nothing() -> None:
    client = FakeClient()
    ServiceBusBatchPublisher(client).publish("optin-batches", [], session_id="optin-0")
    assert client.senders == []


def test_fit_groups_changes_as_the_codec_does() -> None:
    changes = [OptInChange(f"{n}@example.org", "Single") for n in range(25)]
    groups = list(ServiceBusBatchPublisher(FakeClient()).fit(changes, max_items=10))
    assert groups == list(codec.fit_items(changes, max_items=10))
    assert [len(g) for g in groups] == [10, 10, 5]


def test_a_dead_letter_is_sent_as_received_to_the_queues_dead_letter_queue() -> None:
    client = FakeClient()
    original = codec.encode(a_command(3, "a@example.org"), session_id="optin-1")
    received = ReceivedMessage(original.message_id, original.body,
                               dict(original.application_properties), "optin-1", 1)

    ServiceBusBatchPublisher(client).dead_letter(
        "optin-batches", received, reason="BadRequest", description="dataverse HTTP 400")

    assert client.sent("optin-batches") == []
    [[letter]] = client.sent("optin-batches-deadletter")
    assert letter.message_id == original.message_id  # a repeated move is a duplicate
    assert b"".join(letter.body) == original.body
    assert letter.session_id is None
    properties = letter.application_properties
    assert properties is not None
    assert {key.decode() if isinstance(key, bytes) else key: value
            for key, value in properties.items()} == {
        **original.application_properties, "DeadLetterReason": "BadRequest",
        "DeadLetterErrorDescription": "dataverse HTTP 400", "DeliveryCount": 1,
        "SessionId": "optin-1",
    }
