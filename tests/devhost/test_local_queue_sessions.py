"""Service Bus sessions on the local queue: exclusive sessions, order, locks, dead letters."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from devhost.local_publisher import LocalQueuePublisher
from devhost.local_queue import (
    DB_FILE,
    LOCK_EXPIRED,
    MAX_DELIVERY_COUNT_EXCEEDED,
    LocalQueueStore,
    QueueOptions,
    SessionLock,
)
from shared.adapters.servicebus.message_codec import OutboundMessage
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.errors import ConfigError, MessageFormatError, PreconditionFailed
from tests.devhost.test_local_queue import FakeTime

SESSIONS = QueueOptions(requires_session=True, lock_duration_s=30, max_delivery_count=3)


@pytest.fixture
def time_now() -> FakeTime:
    return FakeTime()


@pytest.fixture
def store(tmp_path: Path, time_now: FakeTime) -> LocalQueueStore:
    store = LocalQueueStore(tmp_path, clock=time_now)
    store.configure("s", SESSIONS)
    return store


def msg(message_id: str, session: str | None) -> OutboundMessage:
    return OutboundMessage(message_id, message_id.encode(), session_id=session)


def accept(store: LocalQueueStore) -> SessionLock:
    session = store.accept_next_session("s")
    assert session is not None
    return session


def next_id(store: LocalQueueStore, session: SessionLock) -> str | None:
    got = store.receive_from_session(session).messages
    return got[0].message_id if got else None


class TestSending:
    def test_a_session_queue_refuses_messages_without_a_session_and_keeps_none(
        self, store: LocalQueueStore
    ) -> None:
        with pytest.raises(MessageFormatError, match="requires sessions: message b"):
            store.send("s", [msg("a", "one"), msg("b", None)])
        assert store.counts("s").active == 0
        assert store.send("s", [msg("a", "one")]) == 1  # "a" was not recorded as seen

    @pytest.mark.parametrize("session", ["", "   ", "x" * 129])
    def test_an_unusable_session_id_is_refused(
        self, store: LocalQueueStore, session: str
    ) -> None:
        with pytest.raises(MessageFormatError, match="session_id"):
            store.send("s", [msg("a", "one"), msg("b", session)])
        assert store.counts("s").active == 0

    def test_receivers_must_match_the_queue_kind(self, store: LocalQueueStore) -> None:
        store.send("s", [msg("a", "one")])
        store.send("plain", [msg("b", "ignored")])
        with pytest.raises(ConfigError, match="requires sessions"):
            store.receive("s")
        with pytest.raises(ConfigError, match="does not require sessions"):
            store.accept_next_session("plain")
        (plain,) = store.receive("plain").messages  # a plain queue keeps the id but ignores it
        assert plain.session_id == "ignored"

    def test_the_publisher_keeps_session_ids(self, store: LocalQueueStore) -> None:
        command = ApplyOptInBatch(BatchRef("acct", "run", 0), (OptInChange("a@b.org", "Double"),))
        LocalQueuePublisher(store).publish("s", [command], session_id="optin-3")
        session = accept(store)
        (got,) = store.receive_from_session(session).messages
        assert (session.session_id, got.session_id) == ("optin-3", "optin-3")

    def test_the_publisher_refuses_commands_without_a_session_on_a_session_queue(
        self, store: LocalQueueStore
    ) -> None:
        command = ApplyOptInBatch(BatchRef("acct", "run", 0), ())
        with pytest.raises(MessageFormatError, match="requires sessions"):
            LocalQueuePublisher(store).publish("s", [command])


class TestSessionOrder:
    def test_one_message_at_a_time_in_enqueue_order(self, store: LocalQueueStore) -> None:
        store.send("s", [msg("a1", "a"), msg("b1", "b"), msg("a2", "a"), msg("a3", "a")])
        session = accept(store)
        assert session.session_id == "a"  # the session with the oldest message comes first
        seen: list[str] = []
        while (got := store.receive_from_session(session, 5).messages):
            assert len(got) == 3 or seen  # several at once only when nothing is in flight
            assert store.receive_from_session(session).messages == []  # in flight: wait
            for held in got:
                store.complete(held)
                seen.append(held.message_id)
        assert seen == ["a1", "a2", "a3"]

    def test_one_message_per_receive_keeps_order_too(self, store: LocalQueueStore) -> None:
        store.send("s", [msg(f"m{i}", "a") for i in range(5)])
        session = accept(store)
        seen: list[str] = []
        while (got := store.receive_from_session(session).messages):
            assert store.receive_from_session(session).messages == []
            store.complete(got[0])
            seen.append(got[0].message_id)
        assert seen == [f"m{i}" for i in range(5)]

    def test_an_abandoned_message_comes_back_first(self, store: LocalQueueStore) -> None:
        store.send("s", [msg("a1", "a"), msg("a2", "a")])
        session = accept(store)
        (first,) = store.receive_from_session(session).messages
        assert store.abandon(first, "ValueError: boom") is False
        (again,) = store.receive_from_session(session).messages
        assert (again.message_id, again.delivery_count) == ("a1", 2)

    def test_a_held_session_is_given_to_nobody_else(self, store: LocalQueueStore) -> None:
        store.send("s", [msg("a1", "a"), msg("b1", "b"), msg("a2", "a")])
        first, second = accept(store), accept(store)
        assert (first.session_id, second.session_id) == ("a", "b")
        assert store.accept_next_session("s") is None
        store.release_session(first)
        assert accept(store).session_id == "a"

    def test_a_released_session_gives_back_its_unsettled_message(
        self, store: LocalQueueStore
    ) -> None:
        store.send("s", [msg("a1", "a")])
        session = accept(store)
        store.receive_from_session(session)
        store.release_session(session)
        with pytest.raises(PreconditionFailed, match="session lock was lost"):
            store.receive_from_session(session)
        (got,) = store.receive_from_session(accept(store)).messages
        assert (got.message_id, got.delivery_count) == ("a1", 2)

    def test_an_empty_queue_has_no_session(self, store: LocalQueueStore) -> None:
        assert store.accept_next_session("s") is None
        store.send("s", [msg("a1", "a")])
        session = accept(store)
        store.complete(store.receive_from_session(session).messages[0])
        store.release_session(session)
        assert store.accept_next_session("s") is None


class TestSessionLocks:
    def test_an_expired_session_lock_lets_another_receiver_in(
        self, store: LocalQueueStore, time_now: FakeTime
    ) -> None:
        store.send("s", [msg("a1", "a"), msg("a2", "a")])
        stale = accept(store)
        (held,) = store.receive_from_session(stale).messages
        time_now.now += 29
        assert store.accept_next_session("s") is None
        time_now.now += 2
        fresh = accept(store)
        assert fresh.session_id == "a" and fresh.lock_token != stale.lock_token
        (again,) = store.receive_from_session(fresh).messages
        assert (again.message_id, again.delivery_count) == ("a1", 2)
        with pytest.raises(PreconditionFailed, match="lock was lost"):
            store.complete(held)
        with pytest.raises(PreconditionFailed, match="session lock was lost"):
            store.receive_from_session(stale)

    def test_renewing_the_session_renews_its_message_locks(
        self, store: LocalQueueStore, time_now: FakeTime
    ) -> None:
        store.send("s", [msg("a1", "a")])
        session = accept(store)
        (held,) = store.receive_from_session(session).messages
        with pytest.raises(TypeError, match="session lock"):
            store.renew_lock(held)
        time_now.now += 25
        renewed = store.renew_session_lock(session)
        assert renewed.locked_until == time_now.now + 30
        time_now.now += 25  # past the first lock, within the renewed one
        assert store.accept_next_session("s") is None
        store.complete(held)
        assert store.counts("s").active == 0


class TestSessionDeadLetters:
    def test_a_poison_message_dead_letters_and_lets_the_next_one_through(
        self, store: LocalQueueStore
    ) -> None:
        store.send("s", [msg("poison", "a"), msg("good", "a")])
        session = accept(store)
        for attempt in range(1, 4):
            (held,) = store.receive_from_session(session).messages
            assert (held.message_id, held.delivery_count) == ("poison", attempt)
            assert store.abandon(held, f"ValueError: {attempt}") is (attempt == 3)
        assert next_id(store, session) == "good"
        (letter,) = store.dead_letters("s")
        assert (letter.session_id, letter.dead_letter_reason, letter.dead_letter_description) == (
            "a", MAX_DELIVERY_COUNT_EXCEEDED, "ValueError: 3")

    def test_lock_expiry_on_the_last_delivery_dead_letters_on_the_next_receive(
        self, store: LocalQueueStore, time_now: FakeTime
    ) -> None:
        store.send("s", [msg("slow", "a"), msg("next", "a")])
        for _ in range(3):
            store.receive_from_session(accept(store))
            time_now.now += 31
        result = store.receive_from_session(accept(store))
        assert [m.message_id for m in result.dead_lettered] == ["slow"]
        assert [m.message_id for m in result.messages] == ["next"]
        assert store.dead_letters("s")[0].dead_letter_description == LOCK_EXPIRED

    def test_replayed_dead_letters_keep_their_session(self, store: LocalQueueStore) -> None:
        store.configure("s", QueueOptions(requires_session=True, max_delivery_count=1))
        store.send("s", [msg("a1", "a")])
        session = accept(store)
        store.abandon(store.receive_from_session(session).messages[0], "boom")
        store.release_session(session)
        assert store.replay("s") == 1
        assert accept(store).session_id == "a"


class TestSessionDurability:
    def test_session_ids_options_and_locks_survive_reopening(
        self, store: LocalQueueStore, tmp_path: Path, time_now: FakeTime
    ) -> None:
        store.send("s", [msg("a1", "a"), msg("b1", "b")])
        held = accept(store)
        store.receive_from_session(held)
        reopened = LocalQueueStore(tmp_path, clock=time_now)
        assert reopened.options("s") == SESSIONS
        assert accept(reopened).session_id == "b"  # "a" is still held
        assert reopened.accept_next_session("s") is None
        time_now.now += 31  # both holders died: their session locks run out
        session = accept(reopened)
        (again,) = reopened.receive_from_session(session).messages
        assert (session.session_id, again.message_id, again.delivery_count) == ("a", "a1", 2)

    def test_a_killed_session_holder_keeps_it_until_the_lock_expires(self, tmp_path: Path) -> None:
        store = LocalQueueStore(tmp_path)
        store.configure("s", QueueOptions(requires_session=True, lock_duration_s=600))
        store.send("s", [msg("a1", "a"), msg("a2", "a")])
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        process = context.Process(target=_hold_a_session, args=(str(tmp_path), ready))
        process.start()
        assert ready.wait(30)
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        assert store.accept_next_session("s") is None  # the dead holder's lock still stands
        later = LocalQueueStore(tmp_path, clock=lambda: time.time() + 601)
        session = later.accept_next_session("s")
        assert session is not None
        (again,) = later.receive_from_session(session).messages
        assert (again.message_id, again.delivery_count) == ("a1", 2)

    def test_a_queue_file_from_before_sessions_is_upgraded(
        self, tmp_path: Path, time_now: FakeTime
    ) -> None:
        with sqlite3.connect(tmp_path / DB_FILE) as db:
            db.executescript(
                "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,"
                " message_id TEXT NOT NULL, body BLOB NOT NULL, content_type TEXT,"
                " properties TEXT NOT NULL, enqueued_at REAL NOT NULL,"
                " delivery_count INTEGER NOT NULL DEFAULT 0, lock_token TEXT, locked_until REAL,"
                " last_error TEXT, dead_lettered_at REAL, dead_letter_reason TEXT,"
                " dead_letter_description TEXT);"
                "CREATE TABLE queue_options (queue TEXT PRIMARY KEY,"
                " max_delivery_count INTEGER NOT NULL, lock_duration_s REAL NOT NULL,"
                " duplicate_window_s REAL NOT NULL);"
                "INSERT INTO queue_options VALUES ('old', 4, 20, 0);"
                "INSERT INTO messages (queue, message_id, body, properties, enqueued_at)"
                " VALUES ('old', 'kept', x'00', '{}', 1);"
            )
        db.close()
        store = LocalQueueStore(tmp_path, clock=time_now)
        assert store.options("old") == QueueOptions(4, 20, 0, requires_session=False)
        (kept,) = store.receive("old").messages
        assert (kept.message_id, kept.session_id) == ("kept", None)
        store.configure("s", SESSIONS)
        store.send("s", [msg("new", "a")])
        assert accept(store).session_id == "a"


def test_concurrent_session_receivers_never_share_a_session_and_keep_order(
    tmp_path: Path,
) -> None:
    store = LocalQueueStore(tmp_path)
    store.configure("s", QueueOptions(requires_session=True))
    store.send("s", [msg(f"{s}:{i}", f"session-{s}") for i in range(15) for s in range(6)])
    holders: dict[str, int] = {}
    seen: dict[str, list[int]] = {}
    overlaps: list[str] = []
    guard = threading.Lock()

    def work() -> None:
        while (session := store.accept_next_session("s")) is not None:
            with guard:
                if session.session_id in holders:
                    overlaps.append(session.session_id)
                holders[session.session_id] = threading.get_ident()
            while (got := store.receive_from_session(session).messages):
                with guard:
                    seen.setdefault(session.session_id, []).append(
                        int(got[0].message_id.split(":")[1]))
                store.complete(got[0])
            with guard:
                del holders[session.session_id]
            store.release_session(session)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert overlaps == []
    assert seen == {f"session-{s}": list(range(15)) for s in range(6)}


def _hold_a_session(directory: str, ready: object) -> None:
    store = LocalQueueStore(directory)
    session = store.accept_next_session("s")
    assert session is not None and store.receive_from_session(session).messages
    ready.set()  # type: ignore[attr-defined]
    threading.Event().wait(60)  # killed while holding the session and its message
