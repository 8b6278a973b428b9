"""The queue message codec: commands as versioned JSON envelopes, encoded one way and decoded
strictly. Shared by the Service Bus publisher, the queue triggers (through the composition root)
and the dev host's local queues.

Every message body is a UTF-8 JSON object that names its schema and version::

    {"schema": "optin-batch", "version": 2, ...the fields of that schema version}

| schema          | version | fields                                                          |
|-----------------|---------|-----------------------------------------------------------------|
| ``optin-batch`` | 2       | ``run_id`` str, ``account`` str (email account id), ``batch``   |
|                 |         | int >= 0, ``dry_run`` bool (optional, default false), ``items``:|
|                 |         | list of ``{"email": str, "opt_in_type": str}``                  |
| ``optin-batch`` | 1       | as 2, and each item also has ``modified`` (ignored: it was      |
|                 |         | always the run's end); still decoded for messages in flight     |
| ``suppression-batch`` | 1 | see ``suppression_schema.py``                                   |
| ``engagement-batch`` | 1 | see ``engagement_schema.py``                                     |

Rules:

- Decoding checks structure and types only. An item's email may be blank or malformed and its
  opt-in type may be outside the four known ones: the applier counts and skips those, so one bad
  contact never sends a whole batch to the dead-letter queue.
- Unknown fields are ignored, so a version can gain optional fields without a new number; any
  other change is a new version, and the decoders of the versions still in flight stay here.
- ``message_id`` is derived from (schema, account, run id, batch number), never from the body, so
  a batch re-published after a crash is dropped by Service Bus duplicate detection.
- Errors name the field, never its value: message bodies hold email addresses.
- The application properties repeat the batch's identity (schema, version, run id, account,
  batch number, item count, dry run), so a message whose body cannot be decoded can still be
  counted as failed in its run (``unreadable_batch``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared.adapters.servicebus.engagement_schema import (
    ENGAGEMENT_SCHEMA,
    ENGAGEMENT_VERSION,
    decode_engagement,
    engagement_item,
)
from shared.adapters.servicebus.json_fields import JsonFields
from shared.adapters.servicebus.suppression_schema import (
    SUPPRESSION_SCHEMA,
    SUPPRESSION_VERSION,
    decode_suppression,
    suppression_fields,
    suppression_item,
)
from shared.domain.commands import (
    ApplyEngagementBatch,
    ApplyOptInBatch,
    ApplySuppressionBatch,
    BatchRef,
    OptInChange,
    QueueCommand,
    SuppressionEvent,
    UnreadableBatch,
)
from shared.domain.engagement import EngagementEvent
from shared.errors import MessageFormatError
from shared.services.ports import ReceivedMessage

Item = TypeVar("Item", OptInChange, SuppressionEvent, EngagementEvent)
CONTENT_TYPE = "application/json"
OPTIN_SCHEMA = "optin-batch"
OPTIN_VERSION = 2
# Service Bus Standard allows 256 KiB per message including headers and properties; leave room.
DEFAULT_MAX_BODY_BYTES = 192 * 1024
DEAD_LETTER_SUFFIX = "-deadletter"
_ENVELOPE_BUDGET = 512  # schema, version, ids and brackets, with room to spare


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One queue message; ``message_id`` is deterministic so a re-publish is a duplicate."""

    message_id: str
    body: bytes
    content_type: str = CONTENT_TYPE
    application_properties: Mapping[str, str | int] = field(default_factory=dict)
    # Messages of one session are handled in order by one consumer at a time; None = no session.
    session_id: str | None = None


def message_id_for(schema: str, ref: BatchRef) -> str:
    """The Service Bus message id of a batch: the same inputs always give the same id."""
    # A separator that cannot occur in the parts keeps ("a", "bc") and ("ab", "c") apart.
    parts = (schema, ref.account, ref.run_id, str(ref.batch))
    digest = hashlib.sha256("\x1f".join(parts).encode())
    return f"{schema}-{digest.hexdigest()[:40]}"


def encode(command: QueueCommand, *, session_id: str | None = None) -> OutboundMessage:
    """The queue message for ``command``, in the current version of its schema."""
    ref = command.ref
    if isinstance(command, ApplySuppressionBatch):
        schema, version, fields = SUPPRESSION_SCHEMA, SUPPRESSION_VERSION, suppression_fields(
            command)
    elif isinstance(command, ApplyEngagementBatch):
        schema, version = ENGAGEMENT_SCHEMA, ENGAGEMENT_VERSION
        fields = {"items": [engagement_item(event) for event in command.items]}
    else:
        schema, version = OPTIN_SCHEMA, OPTIN_VERSION
        fields = {"items": [_optin_item(change) for change in command.items]}
    body = {
        "schema": schema, "version": version, "run_id": ref.run_id,
        "account": ref.account, "batch": ref.batch, "dry_run": ref.dry_run, **fields,
    }
    return OutboundMessage(
        message_id=message_id_for(schema, ref),
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        content_type=CONTENT_TYPE,
        application_properties={
            "schema": schema, "version": version, "run_id": ref.run_id,
            "account": ref.account, "batch": ref.batch, "items": len(command.items),
            "dry_run": ref.dry_run,
        },
        session_id=session_id,
    )


def unreadable_batch(
    properties: Mapping[str, object] | None, schema: str = OPTIN_SCHEMA
) -> UnreadableBatch | None:
    """The batch of ``schema`` that ``encode`` named in a message's application properties;
    None when they name none (a message from elsewhere, another schema's batch, or properties
    that are missing or malformed)."""
    if not properties or properties.get("schema") != schema:
        return None
    account, run_id = properties.get("account"), properties.get("run_id")
    batch, items = properties.get("batch"), properties.get("items")
    dry_run = properties.get("dry_run")
    if isinstance(items, bool) or not isinstance(items, int) or items < 0:
        return None
    try:
        ref = BatchRef(account, run_id, batch, dry_run)  # type: ignore[arg-type]
    except ValueError:
        return None
    return UnreadableBatch(ref, items)


def decode(body: bytes | str) -> QueueCommand:
    """The command in ``body``; ``MessageFormatError`` if it cannot be one we understand."""
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise MessageFormatError("message body is not UTF-8") from None
    try:
        envelope = json.loads(body)
    except ValueError:
        raise MessageFormatError("message body is not JSON") from None
    del body  # the decoded text is a copy of the whole body: free it before converting
    if not isinstance(envelope, dict):
        raise MessageFormatError("message body is not a JSON object")
    schema = envelope.get("schema")
    version = envelope.get("version")
    if not isinstance(schema, str):
        raise MessageFormatError("message has no 'schema' string")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MessageFormatError(f"{schema[:40]} message has no integer 'version'")
    decoder = _DECODERS.get((schema, version))
    if decoder is None:
        known = sorted(v for s, v in _DECODERS if s == schema)
        if not known:
            raise MessageFormatError(f"unknown message schema {schema[:40]!r}")
        raise MessageFormatError(f"unknown version {version} of {schema} (this app reads {known})")
    return decoder(JsonFields(f"{schema} v{version}", envelope))


def fit_items(
    changes: Iterable[Item], *, max_items: int, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Iterator[tuple[Item, ...]]:
    """Consecutive groups of ``changes``, each at most ``max_items`` and small enough for one
    message. The grouping depends only on the input, so a resumed run re-creates the same
    batches."""
    group: list[Item] = []
    size = _ENVELOPE_BUDGET
    for change in changes:
        encoded = (suppression_item(change) if isinstance(change, SuppressionEvent)
                   else engagement_item(change) if isinstance(change, EngagementEvent)
                   else _optin_item(change))
        item_size = len(json.dumps(encoded, ensure_ascii=False).encode()) + 1
        if _ENVELOPE_BUDGET + item_size > max_body_bytes:
            raise MessageFormatError("one batch item is larger than a message may be")
        if group and (size + item_size > max_body_bytes or len(group) >= max_items):
            yield tuple(group)
            group, size = [], _ENVELOPE_BUDGET
        group.append(change)
        size += item_size
    if group:
        yield tuple(group)


def dead_letter_queue(queue: str) -> str:
    """Where the app parks ``queue``'s messages that can never succeed.

    Service Bus lets only the receiver holding a message's lock dead-letter it, and the Python
    trigger binding gives the function no such handle, so the app moves them itself: to this
    queue (created beside ``queue`` by the infrastructure), then completes the delivery.
    """
    return f"{queue}{DEAD_LETTER_SUFFIX}"


def dead_letter_message(
    message: ReceivedMessage, *, reason: str, description: str
) -> OutboundMessage:
    """``message`` as received, with Service Bus's dead-letter properties added; same id, so a
    repeated move is dropped by duplicate detection."""
    properties: dict[str, str | int] = {
        name: value for name, value in message.application_properties.items()
        if isinstance(value, str | int)
    }
    properties.update({
        "DeadLetterReason": reason[:200], "DeadLetterErrorDescription": description[:1000],
        "DeliveryCount": message.delivery_count,
    })
    if message.session_id:
        properties["SessionId"] = message.session_id
    return OutboundMessage(message.message_id, message.body, CONTENT_TYPE, properties)


class JsonMessageCodec:
    """The codec as the ``MessageCodec`` port (what the queue triggers get from bootstrap)."""

    def decode_optin(self, body: bytes | str) -> ApplyOptInBatch:
        command = decode(body)
        if not isinstance(command, ApplyOptInBatch):
            raise MessageFormatError("not an opt-in batch")
        return command

    def decode_suppression(self, body: bytes | str) -> ApplySuppressionBatch:
        command = decode(body)
        if not isinstance(command, ApplySuppressionBatch):
            raise MessageFormatError("not a suppression batch")
        return command

    def unreadable(self, properties: Mapping[str, object] | None) -> UnreadableBatch | None:
        return unreadable_batch(properties)

    def unreadable_suppression(
        self, properties: Mapping[str, object] | None
    ) -> UnreadableBatch | None:
        return unreadable_batch(properties, SUPPRESSION_SCHEMA)

    def decode_engagement(self, body: bytes | str) -> ApplyEngagementBatch:
        command = decode(body)
        if not isinstance(command, ApplyEngagementBatch):
            raise MessageFormatError("not an engagement batch")
        return command

    def unreadable_engagement(
        self, properties: Mapping[str, object] | None
    ) -> UnreadableBatch | None:
        return unreadable_batch(properties, ENGAGEMENT_SCHEMA)


# --- optin-batch v1 and v2 ------------------------------------------------------------------------
def _optin_item(change: OptInChange) -> dict[str, Any]:
    return {"email": change.email, "opt_in_type": change.opt_in_type}


def _decode_optin(fields: JsonFields) -> ApplyOptInBatch:
    items = []
    raw_items = fields.array("items")
    for index, raw in enumerate(raw_items):
        item = fields.nested(f"items[{index}]", raw)
        # Four type names: share them instead of holding one string per item.
        items.append(OptInChange(
            email=item.text("email"), opt_in_type=sys.intern(item.text("opt_in_type")),
        ))
        # Each parsed item is dropped once converted, so a batch is never held twice.
        raw_items[index] = None
    run_id = fields.text("run_id", required=True)
    account = fields.text("account", required=True)
    batch = fields.integer("batch")
    try:
        ref = BatchRef(account, run_id, batch, fields.flag("dry_run", False))
    except ValueError as error:
        raise MessageFormatError(f"{fields.label}: {error}") from None
    return ApplyOptInBatch(ref, tuple(items))


def _decode_optin_v1(fields: JsonFields) -> ApplyOptInBatch:
    # v1 items also carried "modified" (always the run's end, read by nobody): checked, dropped.
    for index, raw in enumerate(fields.array("items")):
        fields.nested(f"items[{index}]", raw).timestamp("modified")
    return _decode_optin(fields)


_DECODERS: dict[tuple[str, int], Callable[[JsonFields], QueueCommand]] = {
    (OPTIN_SCHEMA, 1): _decode_optin_v1,
    (OPTIN_SCHEMA, 2): _decode_optin,
    (SUPPRESSION_SCHEMA, SUPPRESSION_VERSION): decode_suppression,
    (ENGAGEMENT_SCHEMA, ENGAGEMENT_VERSION): decode_engagement,
}
