"""The local queue's stored form: schema (with in-place upgrades), record types and row codecs."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field

from shared.adapters.servicebus.message_codec import OutboundMessage
from shared.errors import ConfigError, MessageFormatError

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
LOCK_EXPIRED = "the message lock expired before the message was settled"
# Service Bus entity names: letters, digits, '.', '-', '_' (we refuse '/' as it means sub-queues).
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,258}[A-Za-z0-9_])?$")
MAX_ID_LENGTH = 128  # message and session ids alike

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT,
    properties TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token TEXT,
    locked_until REAL,
    last_error TEXT,
    dead_lettered_at REAL,
    dead_letter_reason TEXT,
    dead_letter_description TEXT,
    session_id TEXT
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, dead_lettered_at, seq);
CREATE TABLE IF NOT EXISTS seen_ids (
    queue TEXT NOT NULL, message_id TEXT NOT NULL, first_seen REAL NOT NULL,
    PRIMARY KEY (queue, message_id)
);
CREATE TABLE IF NOT EXISTS queue_options (
    queue TEXT PRIMARY KEY, max_delivery_count INTEGER NOT NULL, lock_duration_s REAL NOT NULL,
    duplicate_window_s REAL NOT NULL, requires_session INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    queue TEXT NOT NULL, session_id TEXT NOT NULL, lock_token TEXT NOT NULL,
    locked_until REAL NOT NULL, PRIMARY KEY (queue, session_id)
);
"""
# Queue files written before sessions existed get the new columns on open.
_ADDED_COLUMNS = {
    "messages": ("session_id", "session_id TEXT"),
    "queue_options": ("requires_session", "requires_session INTEGER NOT NULL DEFAULT 0"),
}
_SESSION_INDEX = (
    "CREATE INDEX IF NOT EXISTS messages_session"
    " ON messages (queue, session_id, dead_lettered_at, seq)"
)


def create_schema(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)
    for table, (column, definition) in _ADDED_COLUMNS.items():
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")
    db.execute(_SESSION_INDEX)


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """Per-queue properties, as Bicep sets them on a real queue."""

    max_delivery_count: int = 10
    lock_duration_s: float = 60.0
    duplicate_window_s: float = 600.0  # 0 turns duplicate detection off
    # A session queue takes only messages with a session id and only session receivers.
    requires_session: bool = False

    def __post_init__(self) -> None:
        if self.max_delivery_count < 1 or self.lock_duration_s <= 0 or self.duplicate_window_s < 0:
            raise ConfigError(f"invalid local queue options: {self!r}")


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as a receiver sees it; ``lock_token`` is set while it is peek-locked."""

    queue: str
    sequence_number: int
    message_id: str
    body: bytes
    content_type: str | None
    application_properties: dict[str, str | int | float | bool]
    enqueued_at: float
    delivery_count: int
    lock_token: str | None = None
    locked_until: float | None = None
    dead_letter_reason: str | None = None
    dead_letter_description: str | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class SessionLock:
    """A session held by one receiver until ``locked_until`` (renewable) or its release."""

    queue: str
    session_id: str
    lock_token: str
    locked_until: float


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    messages: list[StoredMessage]
    # Messages whose last allowed delivery ended by lock expiry are dead-lettered on the way.
    dead_lettered: list[StoredMessage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QueueCounts:
    active: int
    locked: int
    dead_lettered: int


def validate_queue_name(queue: str) -> str:
    if not isinstance(queue, str) or not _QUEUE_NAME.match(queue):
        raise ConfigError(f"invalid queue name {queue!r}: use letters, digits, '.', '-', '_'")
    return queue


@dataclass(frozen=True, slots=True)
class EncodedMessage:
    message_id: str
    body: bytes
    content_type: str | None
    properties: str  # JSON
    session_id: str | None


def encode_message(message: OutboundMessage) -> EncodedMessage:
    """Validate one outbound message into its stored form; bad input is a MessageFormatError."""
    if not isinstance(message.message_id, str) or not message.message_id.strip():
        raise MessageFormatError("a queue message needs a non-empty message_id")
    if len(message.message_id) > MAX_ID_LENGTH:
        raise MessageFormatError(f"message_id longer than {MAX_ID_LENGTH} characters")
    if not isinstance(message.body, bytes):
        raise MessageFormatError(f"message {message.message_id}: body must be bytes")
    session_id = message.session_id
    if session_id is not None and (not isinstance(session_id, str) or not session_id.strip()
                                   or len(session_id) > MAX_ID_LENGTH):
        raise MessageFormatError(
            f"message {message.message_id}: session_id must be None or a non-blank string of"
            f" at most {MAX_ID_LENGTH} characters"
        )
    properties = dict(message.application_properties)
    for key, value in properties.items():
        if not isinstance(key, str) or not isinstance(value, str | int | float | bool):
            raise MessageFormatError(
                f"message {message.message_id}: application property {key!r} must map a string "
                "to a string, number or boolean"
            )
    return EncodedMessage(message.message_id, message.body, message.content_type,
                          json.dumps(properties), session_id)


def row_to_message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        queue=row["queue"], sequence_number=row["seq"], message_id=row["message_id"],
        body=bytes(row["body"]), content_type=row["content_type"],
        application_properties=json.loads(row["properties"]), enqueued_at=row["enqueued_at"],
        delivery_count=row["delivery_count"], lock_token=row["lock_token"],
        locked_until=row["locked_until"], dead_letter_reason=row["dead_letter_reason"],
        dead_letter_description=row["dead_letter_description"], session_id=row["session_id"],
    )
