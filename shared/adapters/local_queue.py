"""A durable local queue with Service Bus semantics, for the dev host (never used in Azure).

All queues of a directory live in one SQLite file, so a publisher in the app and the dev host's
dispatchers (other threads or processes) share them, and a killed process loses nothing that was
committed. Semantics follow Service Bus: duplicate detection by ``message_id`` within a window,
peek-lock with lock expiry, a delivery count that grows on every delivery, and dead-lettering with
``MaxDeliveryCountExceeded`` once a message has been delivered ``max_delivery_count`` times.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from shared.errors import ConfigError, MessageFormatError, PreconditionFailed, System
from shared.services.ports import OutboundMessage

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
LOCK_EXPIRED = "the message lock expired before the message was settled"
DB_FILE = "queues.sqlite3"
# Service Bus entity names: letters, digits, '.', '-', '_' (we refuse '/' as it means sub-queues).
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,258}[A-Za-z0-9_])?$")
_MAX_MESSAGE_ID = 128

_SCHEMA = """
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
    dead_letter_description TEXT
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, dead_lettered_at, seq);
CREATE TABLE IF NOT EXISTS seen_ids (
    queue TEXT NOT NULL, message_id TEXT NOT NULL, first_seen REAL NOT NULL,
    PRIMARY KEY (queue, message_id)
);
CREATE TABLE IF NOT EXISTS queue_options (
    queue TEXT PRIMARY KEY, max_delivery_count INTEGER NOT NULL, lock_duration_s REAL NOT NULL,
    duplicate_window_s REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """Per-queue properties, as Bicep sets them on a real queue."""

    max_delivery_count: int = 10
    lock_duration_s: float = 60.0
    duplicate_window_s: float = 600.0  # 0 turns duplicate detection off

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


def _encode(message: OutboundMessage) -> tuple[str, bytes, str | None, str]:
    if not isinstance(message.message_id, str) or not message.message_id.strip():
        raise MessageFormatError("a queue message needs a non-empty message_id")
    if len(message.message_id) > _MAX_MESSAGE_ID:
        raise MessageFormatError(f"message_id longer than {_MAX_MESSAGE_ID} characters")
    if not isinstance(message.body, bytes):
        raise MessageFormatError(f"message {message.message_id}: body must be bytes")
    properties = dict(message.application_properties)
    for key, value in properties.items():
        if not isinstance(key, str) or not isinstance(value, str | int | float | bool):
            raise MessageFormatError(
                f"message {message.message_id}: application property {key!r} must map a string "
                "to a string, number or boolean"
            )
    return message.message_id, message.body, message.content_type, json.dumps(properties)


class LocalQueueStore:
    """Every queue of one directory; thread- and process-safe (one SQLite connection per call)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        default_options: QueueOptions | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._clock = clock
        self._defaults = default_options or QueueOptions()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path = self.directory / DB_FILE
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        # A killed process loses nothing committed; only a power cut could lose the last commits.
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            # IMMEDIATE takes the write lock up front, so two receivers never lock one message.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # --- configuration ---------------------------------------------------------------------------
    def configure(self, queue: str, options: QueueOptions) -> None:
        validate_queue_name(queue)
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO queue_options VALUES (?, ?, ?, ?)",
                (queue, options.max_delivery_count, options.lock_duration_s,
                 options.duplicate_window_s),
            )

    def options(self, queue: str) -> QueueOptions:
        validate_queue_name(queue)
        with self._transaction() as db:
            return self._options(db, queue)

    def _options(self, db: sqlite3.Connection, queue: str) -> QueueOptions:
        row = db.execute(
            "SELECT max_delivery_count, lock_duration_s, duplicate_window_s FROM queue_options"
            " WHERE queue = ?", (queue,),
        ).fetchone()
        return QueueOptions(*row) if row else self._defaults

    # --- sending ---------------------------------------------------------------------------------
    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> int:
        """Enqueue all messages in one transaction; returns how many were not duplicates."""
        validate_queue_name(queue)
        encoded = [_encode(message) for message in messages]  # validate all before writing any
        now = self._clock()
        accepted = 0
        with self._transaction() as db:
            window = self._options(db, queue).duplicate_window_s
            if window:
                db.execute("DELETE FROM seen_ids WHERE queue = ? AND first_seen <= ?",
                           (queue, now - window))
            for message_id, body, content_type, properties in encoded:
                if window:
                    inserted = db.execute(
                        "INSERT OR IGNORE INTO seen_ids VALUES (?, ?, ?)", (queue, message_id, now)
                    ).rowcount
                    if not inserted:
                        continue  # Service Bus accepts a duplicate and silently drops it
                db.execute(
                    "INSERT INTO messages (queue, message_id, body, content_type, properties,"
                    " enqueued_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (queue, message_id, body, content_type, properties, now),
                )
                accepted += 1
        return accepted

    # --- receiving and settling ------------------------------------------------------------------
    def receive(
        self, queue: str, max_messages: int = 1, *, lock_duration_s: float | None = None
    ) -> ReceiveResult:
        """Peek-lock up to ``max_messages`` available messages, oldest first."""
        validate_queue_name(queue)
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        now = self._clock()
        received: list[StoredMessage] = []
        expired: list[StoredMessage] = []
        with self._transaction() as db:
            options = self._options(db, queue)
            lock_for = lock_duration_s or options.lock_duration_s
            while len(received) < max_messages:
                rows = db.execute(
                    "SELECT * FROM messages WHERE queue = ? AND dead_lettered_at IS NULL"
                    " AND (locked_until IS NULL OR locked_until <= ?) ORDER BY seq LIMIT ?",
                    (queue, now, max_messages - len(received)),
                ).fetchall()
                if not rows:
                    break
                for row in rows:
                    message = _row_to_message(row)
                    if message.delivery_count >= options.max_delivery_count:
                        reason = row["last_error"] or LOCK_EXPIRED
                        self._dead_letter(db, message.sequence_number, now,
                                          MAX_DELIVERY_COUNT_EXCEEDED, reason)
                        expired.append(message)
                        continue
                    token = str(uuid.uuid4())
                    db.execute(
                        "UPDATE messages SET delivery_count = delivery_count + 1, lock_token = ?,"
                        " locked_until = ? WHERE seq = ?",
                        (token, now + lock_for, message.sequence_number),
                    )
                    received.append(replace(
                        message, delivery_count=message.delivery_count + 1, lock_token=token,
                        locked_until=now + lock_for,
                    ))
        return ReceiveResult(received, expired)

    def complete(self, message: StoredMessage) -> None:
        with self._transaction() as db:
            self._locked_row(db, message, "complete")
            db.execute("DELETE FROM messages WHERE seq = ?", (message.sequence_number,))

    def renew_lock(self, message: StoredMessage) -> float:
        """Extend the lock by the queue's lock duration; returns the new ``locked_until``."""
        now = self._clock()
        with self._transaction() as db:
            self._locked_row(db, message, "renew lock")
            until = now + self._options(db, message.queue).lock_duration_s
            db.execute("UPDATE messages SET locked_until = ? WHERE seq = ?",
                       (until, message.sequence_number))
        return until

    def abandon(self, message: StoredMessage, error: str | None = None) -> bool:
        """Release the lock; True when this was the last allowed delivery (now dead-lettered)."""
        now = self._clock()
        with self._transaction() as db:
            self._locked_row(db, message, "abandon")
            if message.delivery_count >= self._options(db, message.queue).max_delivery_count:
                self._dead_letter(db, message.sequence_number, now, MAX_DELIVERY_COUNT_EXCEEDED,
                                  error or "abandoned on the last allowed delivery")
                return True
            db.execute(
                "UPDATE messages SET lock_token = NULL, locked_until = NULL, last_error = ?"
                " WHERE seq = ?", (error, message.sequence_number),
            )
            return False

    def dead_letter(self, message: StoredMessage, reason: str, description: str = "") -> None:
        with self._transaction() as db:
            self._locked_row(db, message, "dead-letter")
            self._dead_letter(db, message.sequence_number, self._clock(), reason, description)

    def _locked_row(self, db: sqlite3.Connection, message: StoredMessage, operation: str) -> None:
        row = db.execute(
            "SELECT 1 FROM messages WHERE seq = ? AND lock_token = ? AND locked_until > ?"
            " AND dead_lettered_at IS NULL",
            (message.sequence_number, message.lock_token, self._clock()),
        ).fetchone()
        if row is None:
            raise PreconditionFailed(
                System.SERVICEBUS,
                f"message {message.message_id} on {message.queue}: the lock was lost",
                operation=operation,
            )

    @staticmethod
    def _dead_letter(
        db: sqlite3.Connection, seq: int, now: float, reason: str, description: str
    ) -> None:
        db.execute(
            "UPDATE messages SET dead_lettered_at = ?, dead_letter_reason = ?,"
            " dead_letter_description = ?, lock_token = NULL, locked_until = NULL WHERE seq = ?",
            (now, reason, description, seq),
        )

    # --- inspection and replay -------------------------------------------------------------------
    def dead_letters(self, queue: str) -> list[StoredMessage]:
        validate_queue_name(queue)
        with self._transaction() as db:
            rows = db.execute(
                "SELECT * FROM messages WHERE queue = ? AND dead_lettered_at IS NOT NULL"
                " ORDER BY seq", (queue,),
            ).fetchall()
        return [_row_to_message(row) for row in rows]

    def replay(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or those with the given ids) back to the queue as new."""
        validate_queue_name(queue)
        where = "queue = ? AND dead_lettered_at IS NOT NULL"
        args: list[object] = [queue]
        if message_ids is not None:
            where += f" AND message_id IN ({', '.join('?' * len(message_ids))})"
            args.extend(message_ids)
        with self._transaction() as db:
            return db.execute(
                "UPDATE messages SET dead_lettered_at = NULL, dead_letter_reason = NULL,"
                " dead_letter_description = NULL, last_error = NULL, delivery_count = 0,"
                f" enqueued_at = ? WHERE {where}", [self._clock(), *args],
            ).rowcount

    def counts(self, queue: str) -> QueueCounts:
        validate_queue_name(queue)
        now = self._clock()
        with self._transaction() as db:
            active, locked, dead = db.execute(
                "SELECT COALESCE(SUM(dead_lettered_at IS NULL), 0),"
                " COALESCE(SUM(dead_lettered_at IS NULL AND locked_until > ?), 0),"
                " COALESCE(SUM(dead_lettered_at IS NOT NULL), 0) FROM messages WHERE queue = ?",
                (now, queue),
            ).fetchone()
        return QueueCounts(active=int(active), locked=int(locked), dead_lettered=int(dead))


def _row_to_message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        queue=row["queue"], sequence_number=row["seq"], message_id=row["message_id"],
        body=bytes(row["body"]), content_type=row["content_type"],
        application_properties=json.loads(row["properties"]), enqueued_at=row["enqueued_at"],
        delivery_count=row["delivery_count"], lock_token=row["lock_token"],
        locked_until=row["locked_until"], dead_letter_reason=row["dead_letter_reason"],
        dead_letter_description=row["dead_letter_description"],
    )


class LocalQueuePublisher:
    """``BatchPublisher`` over the local queue store: what the app uses under the dev host."""

    def __init__(self, directory: str | Path, *, store: LocalQueueStore | None = None) -> None:
        self._store = store or LocalQueueStore(directory)

    def publish(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        self._store.send(queue, messages)

