"""``BatchPublisher`` on Azure Service Bus (``azure-servicebus`` SDK).

- One ``ServiceBusClient`` per process (the composition root, ``bootstrap``, builds one publisher
  per process), one sender per queue, reused across invocations, as the Functions guidance asks;
  a sender that failed is closed and re-created on the next publish, because its AMQP link may be
  dead.
- Messages go out in as few sends as fit: ``create_message_batch`` knows the queue's real size
  limit (256 KiB on Standard, more on Premium) and ``MessageSizeExceededError`` closes a batch.
  All batches are planned before the first send, so a message that can never fit fails the call
  before anything is sent.
- The ``message_id`` of each ``OutboundMessage`` is passed through unchanged: with duplicate
  detection on the queue, a publish repeated after a partial failure only adds what was missing.
- ``session_id`` is set on each message before it is added to a batch, so the SDK counts it in
  the batch size. One batch never mixes sessions: the SDK stamps the batch envelope with the first
  message's session, and a partitioned queue refuses a batch whose messages disagree with it.
  Messages are grouped by session (first appearance first), keeping their order within a session;
  order across sessions carries no meaning, as different sessions are processed independently.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    MessagingEntityNotFoundError,
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
    ServiceBusError,
    ServiceBusServerBusyError,
)

from shared.adapters.servicebus.encoding_publisher import EncodingPublisher
from shared.adapters.servicebus.message_codec import OutboundMessage
from shared.config import QueueSettings
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

MAX_MESSAGE_ID_LENGTH = 128  # Service Bus rejects longer ids (and longer session ids)
# Service Bus asks clients to wait about ten seconds after "server busy".
SERVER_BUSY_WAIT_S = 10.0


class QueueSender(Protocol):
    """The part of ``ServiceBusSender`` we use (a fake implements it in tests)."""

    def create_message_batch(
        self, max_size_in_bytes: int | None = None
    ) -> ServiceBusMessageBatch: ...

    def send_messages(self, message: ServiceBusMessageBatch) -> None: ...

    def close(self) -> None: ...


class QueueClient(Protocol):
    """The part of ``ServiceBusClient`` we use."""

    def get_queue_sender(self, queue_name: str) -> QueueSender: ...

    def close(self) -> None: ...


class ServiceBusBatchPublisher(EncodingPublisher):
    """``BatchPublisher`` on Service Bus: commands encoded by the message codec, sent in
    size-aware batches."""

    def __init__(self, client: QueueClient, *, max_batch_bytes: int | None = None) -> None:
        self._client = client
        self._max_batch_bytes = max_batch_bytes
        self._senders: dict[str, QueueSender] = {}
        self._lock = threading.Lock()  # a sender is not thread-safe; publishes are short

    @classmethod
    def from_settings(
        cls, settings: QueueSettings, *, credential: TokenCredential | None = None
    ) -> ServiceBusBatchPublisher:
        """Connection string if set; else the namespace with ``credential`` (managed identity)."""
        if settings.connection_string:
            client = ServiceBusClient.from_connection_string(
                settings.connection_string, retry_total=3, retry_backoff_max=30
            )
        elif settings.namespace and credential is not None:
            client = ServiceBusClient(
                settings.namespace, credential, retry_total=3, retry_backoff_max=30
            )
        else:
            raise ConfigError(
                "publishing needs ServiceBusConnection, or "
                "ServiceBusConnection__fullyQualifiedNamespace with a managed identity"
            )
        return cls(client)

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        """Send every message or raise; see the module docstring for partial failures.

        Raises:
            ValueError: an empty queue name, an invalid ``message_id`` or ``session_id``
                (nothing is sent).
            BadRequest: a message larger than the queue accepts (nothing is sent).
            AuthFailed, NotFound, TransientError, RateLimited: from Service Bus.
        """
        if not queue:
            raise ValueError("queue name is empty")
        prepared = _grouped_by_session([_to_servicebus(message) for message in messages])
        if not prepared:
            return
        with self._lock:
            try:
                sender = self._sender(queue)
                for batch in self._plan(sender, prepared):
                    sender.send_messages(batch)
            except AzureError as error:
                self._drop_sender(queue)
                raise servicebus_error(error, queue) from error

    def close(self) -> None:
        with self._lock:
            for queue in list(self._senders):
                self._drop_sender(queue)
            self._client.close()

    def _sender(self, queue: str) -> QueueSender:
        if queue not in self._senders:
            self._senders[queue] = self._client.get_queue_sender(queue_name=queue)
        return self._senders[queue]

    def _drop_sender(self, queue: str) -> None:
        sender = self._senders.pop(queue, None)
        if sender is not None:
            try:
                sender.close()
            except AzureError:
                pass  # it is being discarded because it failed; closing may fail too

    def _plan(
        self, sender: QueueSender, messages: list[ServiceBusMessage]
    ) -> list[ServiceBusMessageBatch]:
        batches = [sender.create_message_batch(self._max_batch_bytes)]
        session = messages[0].session_id if messages else None
        for message in messages:
            if message.session_id == session:
                try:
                    batches[-1].add_message(message)
                    continue
                except MessageSizeExceededError:
                    if len(batches[-1]) == 0:
                        raise _too_large(message, batches[-1]) from None
            session = message.session_id
            batches.append(sender.create_message_batch(self._max_batch_bytes))
            try:
                batches[-1].add_message(message)
            except MessageSizeExceededError:
                raise _too_large(message, batches[-1]) from None
        return batches


def servicebus_error(error: AzureError, queue: str) -> IntegrationError:
    """The taxonomy error for a failed send; transient when the SDK says retrying may help."""
    operation = f"send to {queue}"
    detail = (str(getattr(error, "message", "") or "") or type(error).__name__).splitlines()[0]
    detail = detail[:300]
    if isinstance(error, ServiceBusAuthenticationError | ServiceBusAuthorizationError
                  | ClientAuthenticationError):
        # The SDK marks these retryable (tokens get refreshed), but after its own retries a
        # missing role or a wrong key will not fix itself: fail fast, name the system.
        return AuthFailed(System.SERVICEBUS, detail, operation=operation)
    if isinstance(error, MessagingEntityNotFoundError):
        return NotFound(System.SERVICEBUS, f"queue {queue} does not exist: {detail}",
                        operation=operation)
    if isinstance(error, ServiceBusServerBusyError):
        return RateLimited(System.SERVICEBUS, detail, retry_after_s=SERVER_BUSY_WAIT_S,
                           operation=operation)
    if isinstance(error, MessageSizeExceededError):
        return BadRequest(System.SERVICEBUS, detail, operation=operation)
    if isinstance(error, ServiceBusError) and not getattr(error, "_retryable", True):
        return IntegrationError(System.SERVICEBUS, detail, operation=operation)
    return TransientError(System.SERVICEBUS, detail, operation=operation)


def _to_servicebus(message: OutboundMessage) -> ServiceBusMessage:
    message_id = message.message_id
    if not isinstance(message_id, str) or not message_id.strip():
        raise ValueError("every message needs a message_id (duplicate detection relies on it)")
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise ValueError(f"message_id is longer than {MAX_MESSAGE_ID_LENGTH} characters")
    session_id = message.session_id
    if session_id is not None and (not isinstance(session_id, str) or not session_id.strip()
                                   or len(session_id) > MAX_MESSAGE_ID_LENGTH):
        raise ValueError(
            f"message {message_id}: session_id must be None or 1 to {MAX_MESSAGE_ID_LENGTH}"
            " characters"
        )
    properties: dict[str | bytes, Any] = {k: v for k, v in message.application_properties.items()}
    return ServiceBusMessage(
        message.body, message_id=message_id, content_type=message.content_type,
        application_properties=properties, session_id=session_id,
    )


def _grouped_by_session(messages: list[ServiceBusMessage]) -> list[ServiceBusMessage]:
    groups: dict[str | None, list[ServiceBusMessage]] = {}
    for message in messages:
        groups.setdefault(message.session_id, []).append(message)
    return [message for group in groups.values() for message in group]


def _too_large(message: ServiceBusMessage, batch: ServiceBusMessageBatch) -> BadRequest:
    return BadRequest(
        System.SERVICEBUS,
        f"message {message.message_id} does not fit in a batch of "
        f"{batch.max_size_in_bytes} bytes; split it before publishing",
        operation="publish",
    )
