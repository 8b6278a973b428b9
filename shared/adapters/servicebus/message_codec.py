"""Queue message schema: versioned JSON envelopes, encoded one way and decoded strictly.

Every message body is a UTF-8 JSON object that names its schema and version::

    {"schema": "optin-batch", "version": 1, ...the fields of that schema version}

| schema        | version | fields                                                            |
|---------------|---------|-------------------------------------------------------------------|
| ``optin-batch`` | 1     | ``run_id`` str, ``account`` str (email account id), ``batch`` int  |
|               |         | >= 0, ``dry_run`` bool (optional, default false), ``items``: list  |
|               |         | of ``{"email": str, "opt_in_type": str, "modified": ISO 8601       |
|               |         | datetime with a zone}``                                           |

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
  counted as failed in its run (``batch_identity``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from shared.errors import MessageFormatError
from shared.services.ports import OutboundMessage

CONTENT_TYPE = "application/json"
MAX_BATCH_NUMBER = 9_999_999
# Service Bus Standard allows 256 KiB per message including headers and properties; leave room.
DEFAULT_MAX_BODY_BYTES = 192 * 1024


@dataclass(frozen=True, slots=True)
class OptInChange:
    """One dotdigital contact's opt-in type as of ``modified`` (dotdigital's change time)."""

    email: str
    opt_in_type: str
    modified: datetime


@dataclass(frozen=True, slots=True)
class OptInBatch:
    """Opt-in changes read by one run for one email account; ``batch`` numbers them from 0."""

    SCHEMA: ClassVar[str] = "optin-batch"
    VERSION: ClassVar[int] = 1

    run_id: str
    account: str
    batch: int
    items: tuple[OptInChange, ...]
    dry_run: bool = False


QueueMessage = OptInBatch  # becomes a union as suppression and engagement batches arrive
M = TypeVar("M", bound=QueueMessage)


def message_id_for(schema: str, account: str, run_id: str, batch: int) -> str:
    """The Service Bus message id of a batch: the same inputs always give the same id."""
    _check_identity(account, run_id, batch)
    # A separator that cannot occur in the parts keeps ("a", "bc") and ("ab", "c") apart.
    digest = hashlib.sha256("\x1f".join((schema, account, run_id, str(batch))).encode())
    return f"{schema}-{digest.hexdigest()[:40]}"


def encode(message: QueueMessage) -> OutboundMessage:
    """The queue message for ``message``, in the current version of its schema."""
    body = _optin_v1_body(message)
    _check_identity(message.account, message.run_id, message.batch)
    return OutboundMessage(
        message_id=message_id_for(message.SCHEMA, message.account, message.run_id, message.batch),
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        content_type=CONTENT_TYPE,
        application_properties={
            "schema": message.SCHEMA, "version": message.VERSION, "run_id": message.run_id,
            "account": message.account, "batch": message.batch, "items": len(message.items),
            "dry_run": message.dry_run,
        },
    )


@dataclass(frozen=True, slots=True)
class BatchIdentity:
    """Which run and batch a message belongs to, as its application properties say."""

    account: str
    run_id: str
    batch: int
    items: int
    dry_run: bool


def batch_identity(properties: Mapping[str, object] | None) -> BatchIdentity | None:
    """The opt-in batch ``encode`` named in a message's application properties; None when they
    name none (a message from elsewhere, or properties that are missing or malformed)."""
    if not properties or properties.get("schema") != OptInBatch.SCHEMA:
        return None
    account, run_id = properties.get("account"), properties.get("run_id")
    batch, items = properties.get("batch"), properties.get("items")
    dry_run = properties.get("dry_run")
    if not (isinstance(account, str) and isinstance(run_id, str) and isinstance(batch, int)):
        return None
    try:
        _check_identity(account, run_id, batch)
    except ValueError:
        return None
    if isinstance(items, bool) or not isinstance(items, int) or items < 0:
        return None
    if not isinstance(dry_run, bool):
        return None
    return BatchIdentity(account, run_id, batch, items, dry_run)


def decode(body: bytes | str) -> QueueMessage:
    """The message in ``body``; ``MessageFormatError`` if it cannot be one we understand."""
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
    return decoder(_Fields(f"{schema} v{version}", envelope))


def decode_as(kind: type[M], body: bytes | str) -> M:
    """Like ``decode``, and the message must be a ``kind`` (a queue carries one schema)."""
    message = decode(body)
    if not isinstance(message, kind):
        raise MessageFormatError(f"expected a {kind.SCHEMA} message, got {message.SCHEMA}")
    return message


def chunk_optin_changes(
    changes: Iterable[OptInChange], *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_items: int = 1200,
) -> Iterator[tuple[OptInChange, ...]]:
    """Consecutive groups of ``changes`` whose encoded batch stays under ``max_body_bytes``.

    The grouping depends only on the input, so a resumed run re-creates the same batches.
    A batch costs a lookup and a write request whatever its size, and every session holds one
    batch, so batches are about 1000 changes: a flush (``OPTIN_PAGES_PER_FLUSH`` pages of 1000
    over as many shards) gives each shard about 1000, and ``max_items`` leaves room for the
    shards' shares to vary by a few percent without a second, nearly empty batch. A table's
    write of a batch fits one ``UpdateMultiple`` (1000 rows) unless more than 1000 of its
    records change, which then costs one more request.
    """
    envelope_budget = 512  # schema, version, ids and brackets, with room to spare
    group: list[OptInChange] = []
    size = envelope_budget
    for change in changes:
        item_size = len(json.dumps(_optin_item(change), ensure_ascii=False).encode()) + 1
        if envelope_budget + item_size > max_body_bytes:
            raise MessageFormatError("one opt-in change is larger than a message may be")
        if group and (size + item_size > max_body_bytes or len(group) >= max_items):
            yield tuple(group)
            group, size = [], envelope_budget
        group.append(change)
        size += item_size
    if group:
        yield tuple(group)


# --- optin-batch v1 -------------------------------------------------------------------------------
def _optin_item(change: OptInChange) -> dict[str, Any]:
    return {"email": change.email, "opt_in_type": change.opt_in_type,
            "modified": _iso(change.modified)}


def _optin_v1_body(message: OptInBatch) -> dict[str, Any]:
    return {
        "schema": message.SCHEMA, "version": 1, "run_id": message.run_id,
        "account": message.account, "batch": message.batch, "dry_run": message.dry_run,
        "items": [_optin_item(change) for change in message.items],
    }


def _decode_optin_v1(fields: _Fields) -> OptInBatch:
    items = []
    raw_items = fields.array("items")
    # A reader stamps a whole run with one time and there are four type names: share them
    # instead of holding one datetime and one string per item.
    times: dict[str, datetime] = {}
    for index, raw in enumerate(raw_items):
        item = fields.nested(f"items[{index}]", raw)
        stamp = raw.get("modified")
        modified = times.get(stamp) if isinstance(stamp, str) else None
        if modified is None:
            modified = item.timestamp("modified")
            times[stamp] = modified
        items.append(OptInChange(
            email=item.text("email"), opt_in_type=sys.intern(item.text("opt_in_type")),
            modified=modified,
        ))
        # Each parsed item is dropped once converted, so a batch is never held twice.
        raw_items[index] = None
    batch = OptInBatch(
        run_id=fields.text("run_id", required=True), account=fields.text("account", required=True),
        batch=fields.integer("batch"), items=tuple(items), dry_run=fields.flag("dry_run", False),
    )
    if batch.batch > MAX_BATCH_NUMBER:
        raise MessageFormatError(f"{fields.label}: field 'batch' is out of range")
    return batch


_DECODERS: dict[tuple[str, int], Callable[[_Fields], QueueMessage]] = {
    ("optin-batch", 1): _decode_optin_v1,
}


# --- field access with errors that name the field -------------------------------------------------
class _Fields:
    def __init__(self, label: str, values: Mapping[str, Any]) -> None:
        self.label = label
        self._values = values

    def _get(self, name: str) -> Any:
        if name not in self._values:
            raise MessageFormatError(f"{self.label}: missing field '{name}'")
        return self._values[name]

    def _wrong(self, name: str, expected: str) -> MessageFormatError:
        return MessageFormatError(f"{self.label}: field '{name}' must be {expected}")

    def text(self, name: str, *, required: bool = False) -> str:
        value = self._get(name)
        if not isinstance(value, str) or (required and not value.strip()):
            raise self._wrong(name, "a non-empty string" if required else "a string")
        return value

    def integer(self, name: str) -> int:
        value = self._get(name)
        if not _is_int(value) or value < 0:
            raise self._wrong(name, "a non-negative integer")
        return int(value)

    def flag(self, name: str, default: bool) -> bool:
        value = self._values.get(name, default)
        if not isinstance(value, bool):
            raise self._wrong(name, "true or false")
        return value

    def timestamp(self, name: str) -> datetime:
        value = self._get(name)
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise self._wrong(name, "an ISO 8601 date-time with a time zone")
        return parsed.astimezone(UTC)

    def array(self, name: str) -> list[Any]:
        value = self._get(name)
        if not isinstance(value, list):
            raise self._wrong(name, "a list")
        return value

    def nested(self, label: str, value: Any) -> _Fields:
        if not isinstance(value, dict):
            raise MessageFormatError(f"{self.label}: {label} must be an object")
        return _Fields(f"{self.label} {label}", value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _iso(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("opt-in change times must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _check_identity(account: str, run_id: str, batch: int) -> None:
    for name, value in (("account", account), ("run_id", run_id)):
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise ValueError(f"{name} must be a non-empty string of at most 100 characters")
    if not _is_int(batch) or not 0 <= batch <= MAX_BATCH_NUMBER:
        raise ValueError(f"batch must be an integer in 0..{MAX_BATCH_NUMBER}")
