"""A durable local queue with Service Bus semantics, for the dev host (never used in Azure).

All queues of a directory live in one SQLite file, so a publisher in the app and the dev host's
dispatchers (other threads or processes) share them, and a killed process loses nothing that was
committed. Semantics follow Service Bus: duplicate detection by ``message_id`` within a window,
peek-lock with lock expiry, a delivery count that grows on every delivery, and dead-lettering with
``MaxDeliveryCountExceeded`` once a message has been delivered ``max_delivery_count`` times.

Session queues (``QueueOptions.requires_session``) follow Service Bus sessions: every message has a
session id; a receiver first accepts a session nobody else holds (``accept_next_session``), then
gets that session's messages in enqueue order, the next one only once the previous one is settled
(an abandoned message comes back first). The session lock expires and renews like a message lock
and covers the locks of the session's messages. A message dead-lettered after its last delivery
lets the session's next message through. Queues without sessions behave as before.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path

from devhost.local_queue_records import (
    LOCK_EXPIRED,
    MAX_DELIVERY_COUNT_EXCEEDED,
    QueueCounts,
    QueueOptions,
    ReceiveResult,
    SessionLock,
    StoredMessage,
    create_schema,
    encode_message,
    row_to_message,
    validate_queue_name,
)
from shared.adapters.servicebus.message_codec import OutboundMessage
from shared.errors import ConfigError, MessageFormatError, PreconditionFailed, System

__all__ = [
    "DB_FILE", "LOCK_EXPIRED", "MAX_DELIVERY_COUNT_EXCEEDED",
    "LocalQueueStore", "QueueCounts", "QueueOptions", "ReceiveResult", "SessionLock",
    "StoredMessage", "validate_queue_name",
]
DB_FILE = "queues.sqlite3"


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
            create_schema(db)

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
                "INSERT OR REPLACE INTO queue_options (queue, max_delivery_count, lock_duration_s,"
                " duplicate_window_s, requires_session) VALUES (?, ?, ?, ?, ?)",
                (queue, options.max_delivery_count, options.lock_duration_s,
                 options.duplicate_window_s, int(options.requires_session)),
            )

    def options(self, queue: str) -> QueueOptions:
        validate_queue_name(queue)
        with self._transaction() as db:
            return self._options(db, queue)

    def _options(self, db: sqlite3.Connection, queue: str) -> QueueOptions:
        row = db.execute(
            "SELECT max_delivery_count, lock_duration_s, duplicate_window_s, requires_session"
            " FROM queue_options WHERE queue = ?", (queue,),
        ).fetchone()
        if row is None:
            return self._defaults
        return QueueOptions(row[0], row[1], row[2], bool(row[3]))

    # --- sending ---------------------------------------------------------------------------------
    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> int:
        """Enqueue all messages in one transaction; returns how many were not duplicates."""
        validate_queue_name(queue)
        encoded = [encode_message(message) for message in messages]  # all valid before any write
        now = self._clock()
        accepted = 0
        with self._transaction() as db:
            options = self._options(db, queue)
            if options.requires_session:
                missing = [m.message_id for m in encoded if m.session_id is None]
                if missing:  # Service Bus refuses the send the same way
                    raise MessageFormatError(
                        f"queue {queue} requires sessions: message {missing[0]} has no session_id"
                    )
            window = options.duplicate_window_s
            if window:
                db.execute("DELETE FROM seen_ids WHERE queue = ? AND first_seen <= ?",
                           (queue, now - window))
            for message in encoded:
                if window:
                    inserted = db.execute(
                        "INSERT OR IGNORE INTO seen_ids VALUES (?, ?, ?)",
                        (queue, message.message_id, now),
                    ).rowcount
                    if not inserted:
                        continue  # Service Bus accepts a duplicate and silently drops it
                db.execute(
                    "INSERT INTO messages (queue, message_id, body, content_type, properties,"
                    " enqueued_at, session_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (queue, message.message_id, message.body, message.content_type,
                     message.properties, now, message.session_id),
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
        with self._transaction() as db:
            options = self._options(db, queue)
            if options.requires_session:
                raise ConfigError(f"queue {queue} requires sessions: accept a session to receive")
            return self._lock_next(
                db, options, now, now + (lock_duration_s or options.lock_duration_s),
                "queue = ?", [queue], max_messages,
            )

    def _lock_next(
        self, db: sqlite3.Connection, options: QueueOptions, now: float, until: float,
        where: str, args: list[object], max_messages: int,
    ) -> ReceiveResult:
        """Lock the oldest available messages matching ``where``, dead-lettering exhausted ones."""
        received: list[StoredMessage] = []
        expired: list[StoredMessage] = []
        while len(received) < max_messages:
            rows = db.execute(
                f"SELECT * FROM messages WHERE {where} AND dead_lettered_at IS NULL"
                " AND (locked_until IS NULL OR locked_until <= ?) ORDER BY seq LIMIT ?",
                [*args, now, max_messages - len(received)],
            ).fetchall()
            if not rows:
                break
            for row in rows:
                message = row_to_message(row)
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
                    (token, until, message.sequence_number),
                )
                received.append(replace(
                    message, delivery_count=message.delivery_count + 1, lock_token=token,
                    locked_until=until,
                ))
        return ReceiveResult(received, expired)

    # --- sessions --------------------------------------------------------------------------------
    # A session is held by one receiver at a time. Its messages are locked until the session lock
    # runs out and renewed with it, so a lost session also loses its message locks.
    def accept_next_session(self, queue: str) -> SessionLock | None:
        """Hold the session with the oldest available message that nobody holds; None if none."""
        validate_queue_name(queue)
        now = self._clock()
        with self._transaction() as db:
            options = self._session_options(db, queue)
            row = db.execute(
                "SELECT m.session_id FROM messages m WHERE m.queue = ?"
                " AND m.dead_lettered_at IS NULL AND m.session_id IS NOT NULL AND NOT EXISTS"
                " (SELECT 1 FROM sessions s WHERE s.queue = m.queue"
                "  AND s.session_id = m.session_id AND s.locked_until > ?)"
                " GROUP BY m.session_id ORDER BY MIN(m.seq) LIMIT 1", (queue, now),
            ).fetchone()
            if row is None:
                return None
            session = SessionLock(queue, row[0], str(uuid.uuid4()),
                                  now + options.lock_duration_s)
            db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?)",
                       (queue, session.session_id, session.lock_token, session.locked_until))
            return session

    def receive_from_session(self, session: SessionLock, max_messages: int = 1) -> ReceiveResult:
        """The next messages of a held session, in enqueue order; none while one is locked."""
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        now = self._clock()
        with self._transaction() as db:
            options = self._session_options(db, session.queue)
            until = self._held_session(db, session, now, "receive")
            busy = db.execute(
                "SELECT 1 FROM messages WHERE queue = ? AND session_id = ?"
                " AND dead_lettered_at IS NULL AND locked_until > ? LIMIT 1",
                (session.queue, session.session_id, now),
            ).fetchone()
            if busy:  # the session's order holds: the next one waits for this one's settlement
                return ReceiveResult([])
            return self._lock_next(db, options, now, until, "queue = ? AND session_id = ?",
                                   [session.queue, session.session_id], max_messages)

    def renew_session_lock(self, session: SessionLock) -> SessionLock:
        """Extend the session lock, and its messages' locks, by the queue's lock duration."""
        now = self._clock()
        with self._transaction() as db:
            options = self._session_options(db, session.queue)
            self._held_session(db, session, now, "renew session lock")
            until = now + options.lock_duration_s
            db.execute("UPDATE sessions SET locked_until = ? WHERE queue = ? AND session_id = ?",
                       (until, session.queue, session.session_id))
            db.execute(
                "UPDATE messages SET locked_until = ? WHERE queue = ? AND session_id = ?"
                " AND dead_lettered_at IS NULL AND locked_until > ?",
                (until, session.queue, session.session_id, now),
            )
        return replace(session, locked_until=until)

    def release_session(self, session: SessionLock) -> None:
        """Let another receiver take the session; its unsettled messages become available."""
        now = self._clock()
        with self._transaction() as db:
            self._held_session(db, session, now, "release session")
            db.execute("DELETE FROM sessions WHERE queue = ? AND session_id = ?",
                       (session.queue, session.session_id))
            db.execute(
                "UPDATE messages SET lock_token = NULL, locked_until = NULL WHERE queue = ?"
                " AND session_id = ? AND dead_lettered_at IS NULL AND locked_until > ?",
                (session.queue, session.session_id, now),
            )

    def _session_options(self, db: sqlite3.Connection, queue: str) -> QueueOptions:
        options = self._options(db, queue)
        if not options.requires_session:
            raise ConfigError(f"queue {queue} does not require sessions: receive without one")
        return options

    @staticmethod
    def _held_session(
        db: sqlite3.Connection, session: SessionLock, now: float, operation: str
    ) -> float:
        row = db.execute(
            "SELECT locked_until FROM sessions WHERE queue = ? AND session_id = ?"
            " AND lock_token = ? AND locked_until > ?",
            (session.queue, session.session_id, session.lock_token, now),
        ).fetchone()
        if row is None:
            raise PreconditionFailed(
                System.SERVICEBUS,
                f"session {session.session_id} on {session.queue}: the session lock was lost",
                operation=operation,
            )
        return float(row[0])

    def complete(self, message: StoredMessage) -> None:
        with self._transaction() as db:
            self._locked_row(db, message, "complete")
            db.execute("DELETE FROM messages WHERE seq = ?", (message.sequence_number,))

    def renew_lock(self, message: StoredMessage) -> float:
        """Extend the lock by the queue's lock duration; returns the new ``locked_until``."""
        if message.session_id is not None and self.options(message.queue).requires_session:
            # As in the SDK: a session message's lock is the session's; renew that instead.
            raise TypeError("renew the session lock of a session message, not its own lock")
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
    def peek(self, queue: str) -> list[StoredMessage]:
        """The queue's messages that are not dead-lettered, oldest first, without locking them
        or counting a delivery (Service Bus's peek): for reports on a queue nobody receives
        from, such as the ``-deadletter`` queue the app parks messages in."""
        validate_queue_name(queue)
        with self._transaction() as db:
            rows = db.execute(
                "SELECT * FROM messages WHERE queue = ? AND dead_lettered_at IS NULL"
                " ORDER BY seq", (queue,),
            ).fetchall()
        return [row_to_message(row) for row in rows]

    def dead_letters(self, queue: str) -> list[StoredMessage]:
        validate_queue_name(queue)
        with self._transaction() as db:
            rows = db.execute(
                "SELECT * FROM messages WHERE queue = ? AND dead_lettered_at IS NOT NULL"
                " ORDER BY seq", (queue,),
            ).fetchall()
        return [row_to_message(row) for row in rows]

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

    def delete(self, queue: str, sequence_number: int) -> bool:
        """Remove one message that nobody holds: a dead letter, or one on a queue nobody receives
        from (the app's ``-deadletter`` queues). What completing it on the dead-letter receiver
        does on Service Bus, without a lock, as the local queues have no dead-letter receiver.
        False when it is gone already or a receiver holds its lock."""
        validate_queue_name(queue)
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM messages WHERE queue = ? AND seq = ? AND (dead_lettered_at IS NOT NULL"
                " OR locked_until IS NULL OR locked_until <= ?)",
                (queue, sequence_number, self._clock()),
            ).rowcount > 0

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
