from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest

from devhost.local_publisher import LocalQueuePublisher
from devhost.local_queue import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    LocalQueueStore,
    QueueOptions,
)
from shared.adapters.servicebus.message_codec import OutboundMessage, decode, encode
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.errors import ConfigError, MessageFormatError, PreconditionFailed
from shared.services.ports import BatchPublisher, ReceivedMessage


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def time_now() -> FakeTime:
    return FakeTime()


@pytest.fixture
def store(tmp_path: Path, time_now: FakeTime) -> LocalQueueStore:
    return LocalQueueStore(tmp_path, clock=time_now)


def message(message_id: str, body: bytes = b"{}", **properties: str | int) -> OutboundMessage:
    return OutboundMessage(message_id, body, application_properties=properties)


class TestSend:
    def test_keeps_body_content_type_and_properties(self, store: LocalQueueStore) -> None:
        store.send("q", [OutboundMessage("m1", b"\x00bytes", "application/octet-stream",
                                         {"schema": 1, "kind": "optin"})])
        (got,) = store.receive("q").messages
        assert (got.message_id, got.body, got.content_type) == (
            "m1", b"\x00bytes", "application/octet-stream")
        assert got.application_properties == {"schema": 1, "kind": "optin"}
        assert got.delivery_count == 1 and got.lock_token

    def test_duplicates_within_the_window_are_dropped(
        self, store: LocalQueueStore, time_now: FakeTime
    ) -> None:
        assert store.send("q", [message("a"), message("b"), message("a")]) == 2
        time_now.now += 599
        assert store.send("q", [message("a", b"again")]) == 0
        assert [m.body for m in store.receive("q", 10).messages] == [b"{}", b"{}"]

    def test_same_id_is_accepted_after_the_window(
        self, store: LocalQueueStore, time_now: FakeTime
    ) -> None:
        store.send("q", [message("a")])
        time_now.now += 601
        assert store.send("q", [message("a", b"later")]) == 1

    def test_duplicate_detection_is_per_queue_and_can_be_off(self, store: LocalQueueStore) -> None:
        store.send("q", [message("a")])
        assert store.send("other", [message("a")]) == 1
        store.configure("nodedup", QueueOptions(duplicate_window_s=0))
        assert store.send("nodedup", [message("a"), message("a")]) == 2

    @pytest.mark.parametrize(
        "bad",
        [
            OutboundMessage("", b"x"),
            OutboundMessage("   ", b"x"),
            OutboundMessage("x" * 129, b"x"),
            OutboundMessage("ok", "not bytes"),  # type: ignore[arg-type]
            OutboundMessage("ok", b"x", application_properties={"nested": {"a": 1}}),  # type: ignore[dict-item]
        ],
    )
    def test_bad_message_is_refused_and_nothing_of_the_batch_is_sent(
        self, store: LocalQueueStore, bad: OutboundMessage
    ) -> None:
        with pytest.raises(MessageFormatError):
            store.send("q", [message("good"), bad])
        assert store.counts("q").active == 0
        assert store.send("q", [message("good")]) == 1  # its id was not recorded either

    @pytest.mark.parametrize("queue", ["", "a/b", "../up", "q$deadletter", "-x", "x" * 261])
    def test_bad_queue_name_is_a_config_error(self, store: LocalQueueStore, queue: str) -> None:
        with pytest.raises(ConfigError, match="invalid queue name"):
            store.send(queue, [message("m")])
        assert not list(store.directory.glob("*/"))

    def test_publisher_is_a_batch_publisher(self, store: LocalQueueStore) -> None:
        publisher: BatchPublisher = LocalQueuePublisher(store)
        command = ApplyOptInBatch(BatchRef("acct", "run", 0), (OptInChange("a@b.org", "Double"),))
        publisher.publish("q", [command, command], session_id="optin-1")
        (got,) = store.receive("q").messages  # the repeat was a duplicate
        assert got.message_id == encode(command).message_id
        assert got.session_id == "optin-1" and decode(got.body) == command
        assert got.application_properties == dict(encode(command).application_properties)
        changes = [OptInChange(f"{n}@b.org", "Single") for n in range(5)]
        assert [len(group) for group in publisher.fit(changes, max_items=2)] == [2, 2, 1]

    def test_a_dead_letter_is_parked_beside_its_queue_when_the_app_gives_up(
        self, store: LocalQueueStore
    ) -> None:
        publisher = LocalQueuePublisher(store)
        received = ReceivedMessage("m-1", b"{", {"schema": "optin-batch"}, "optin-2", 1)
        for _ in range(2):  # a repeated move adds nothing
            publisher.dead_letter("q", received, reason="MessageFormatError", description="bad")
        assert store.counts("q").active == 0  # the queue itself is untouched
        (parked,) = store.receive("q-deadletter", 10).messages
        assert (parked.message_id, parked.body) == ("m-1", b"{")
        assert parked.application_properties == {
            "schema": "optin-batch", "DeadLetterReason": "MessageFormatError",
            "DeadLetterErrorDescription": "bad", "DeliveryCount": 1, "SessionId": "optin-2"}


class TestPeekLock:
    def test_peek_lists_messages_without_locking_or_counting_a_delivery_when_reporting(
        self, store: LocalQueueStore
    ) -> None:
        store.configure("q", QueueOptions(max_delivery_count=1))
        store.send("q", [message("a"), message("b"), message("c")])
        locked = store.receive("q").messages[0]
        store.dead_letter(locked, "BadSchema")
        store.receive("q")  # "b" is locked: still listed
        assert [(m.message_id, m.lock_token is None) for m in store.peek("q")] == [
            ("b", False), ("c", True)]
        assert [m.delivery_count for m in store.peek("q")] == [1, 0]
        assert store.counts("q").active == 2 and store.peek("empty") == []

    def test_locked_message_is_invisible_until_the_lock_expires(
        self, store: LocalQueueStore, time_now: FakeTime
    ) -> None:
        store.configure("q", QueueOptions(lock_duration_s=30))
        store.send("q", [message("m")])
        first = store.receive("q").messages[0]
        assert store.receive("q").messages == []
        time_now.now += 29
        assert store.receive("q").messages == []
        time_now.now += 2
        again = store.receive("q").messages[0]
        assert again.message_id == "m" and again.delivery_count == 2
        assert again.lock_token != first.lock_token
        with pytest.raises(PreconditionFailed, match="lock was lost"):
            store.complete(first)  # the old lock expired: settling with it fails

    def test_complete_removes_and_abandon_redelivers_with_a_higher_count(
        self, store: LocalQueueStore
    ) -> None:
        store.send("q", [message("a"), message("b")])
        a, b = store.receive("q", 2).messages
        store.complete(a)
        assert store.abandon(b, "ValueError: boom") is False
        redelivered = store.receive("q", 5).messages
        assert [(m.message_id, m.delivery_count) for m in redelivered] == [("b", 2)]

    def test_two_receivers_never_get_the_same_message(self, store: LocalQueueStore) -> None:
        store.send("q", [message(f"m{i}") for i in range(20)])
        got = [m.message_id for _ in range(30) for m in store.receive("q").messages]
        assert sorted(got) == sorted(f"m{i}" for i in range(20))

    def test_concurrent_receivers_in_threads_share_the_work_exactly_once(
        self, tmp_path: Path
    ) -> None:
        store = LocalQueueStore(tmp_path)
        store.send("q", [message(f"m{i}") for i in range(200)])
        seen: list[str] = []

        def drain() -> None:
            while batch := store.receive("q", 3).messages:
                for held in batch:
                    store.complete(held)
                    seen.append(held.message_id)

        workers = [threading.Thread(target=drain) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert sorted(seen) == sorted(f"m{i}" for i in range(200))

    def test_renew_lock_extends_it(self, store: LocalQueueStore, time_now: FakeTime) -> None:
        store.send("q", [message("m")])
        held = store.receive("q").messages[0]
        time_now.now += 50
        store.renew_lock(held)
        time_now.now += 50
        assert store.receive("q").messages == []
        store.complete(held)
        assert store.counts("q").active == 0


class TestDeadLetter:
    def test_abandon_on_the_last_delivery_dead_letters_with_reason_and_error(
        self, store: LocalQueueStore
    ) -> None:
        store.configure("q", QueueOptions(max_delivery_count=3))
        store.send("q", [message("poison", b"bad")])
        for attempt in range(1, 4):
            (held,) = store.receive("q").messages
            assert held.delivery_count == attempt
            moved = store.abandon(held, f"ValueError: attempt {attempt}")
            assert moved is (attempt == 3)
        assert store.receive("q").messages == []
        (letter,) = store.dead_letters("q")
        assert letter.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED
        assert letter.dead_letter_description == "ValueError: attempt 3"
        assert letter.body == b"bad"
        assert store.counts("q").dead_lettered == 1 and store.counts("q").active == 0

    def test_lock_expiry_on_the_last_delivery_dead_letters_on_next_receive(
        self, store: LocalQueueStore, time_now: FakeTime
    ) -> None:
        store.configure("q", QueueOptions(max_delivery_count=2, lock_duration_s=10))
        store.send("q", [message("slow")])
        for _ in range(2):
            store.receive("q")
            time_now.now += 11
        result = store.receive("q")
        assert result.messages == [] and [m.message_id for m in result.dead_lettered] == ["slow"]
        assert store.dead_letters("q")[0].dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED

    def test_poison_message_does_not_block_the_others(self, store: LocalQueueStore) -> None:
        store.configure("q", QueueOptions(max_delivery_count=1))
        store.send("q", [message("poison"), message("good")])
        poison, good = store.receive("q", 2).messages
        store.abandon(poison, "boom")
        store.complete(good)
        assert store.counts("q").active == 0 and len(store.dead_letters("q")) == 1

    def test_replay_moves_dead_letters_back_as_fresh_deliveries(
        self, store: LocalQueueStore
    ) -> None:
        store.configure("q", QueueOptions(max_delivery_count=1))
        store.send("q", [message("a"), message("b")])
        for held in store.receive("q", 2).messages:
            store.abandon(held, "boom")
        assert store.replay("q", ["b"]) == 1
        assert [m.message_id for m in store.dead_letters("q")] == ["a"]
        (replayed,) = store.receive("q").messages
        assert replayed.message_id == "b" and replayed.delivery_count == 1
        assert store.replay("q") == 1
        assert store.replay("q") == 0

    def test_explicit_dead_letter(self, store: LocalQueueStore) -> None:
        store.send("q", [message("m")])
        store.dead_letter(store.receive("q").messages[0], "BadSchema", "schema 9 unknown")
        assert store.dead_letters("q")[0].dead_letter_reason == "BadSchema"


class TestDurability:
    def test_everything_survives_reopening(self, tmp_path: Path, time_now: FakeTime) -> None:
        first = LocalQueueStore(tmp_path, clock=time_now)
        first.configure("q", QueueOptions(max_delivery_count=1, lock_duration_s=5))
        first.send("q", [message("a"), message("b"), message("c")])
        a, b = first.receive("q", 2).messages
        first.abandon(a, "boom")  # dead-lettered
        del first
        reopened = LocalQueueStore(tmp_path, clock=time_now)
        assert reopened.options("q") == QueueOptions(max_delivery_count=1, lock_duration_s=5)
        assert reopened.send("q", [message("c")]) == 0  # duplicate history survived too
        assert [m.message_id for m in reopened.dead_letters("q")] == ["a"]
        assert [m.message_id for m in reopened.receive("q", 5).messages] == ["c"]  # b is locked
        reopened.complete(b)  # the lock survived the reopen as well

    def test_a_killed_sender_leaves_only_whole_batches(self, tmp_path: Path) -> None:
        ready = multiprocessing.get_context("spawn").Event()
        process = multiprocessing.get_context("spawn").Process(
            target=_send_forever, args=(str(tmp_path), ready)
        )
        process.start()
        assert ready.wait(30)
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        store = LocalQueueStore(tmp_path)
        ids = [m.message_id for m in store.receive("q", 100_000).messages]
        assert ids, "the sender committed at least one batch"
        batches = {i.split(":")[0] for i in ids}
        assert len(ids) == len(batches) * 10  # batches are all or nothing
        assert len(set(ids)) == len(ids)


def _send_forever(directory: str, ready: object) -> None:
    store = LocalQueueStore(directory)
    batch = 0
    while True:
        store.send("q", [message(f"{batch}:{i}") for i in range(10)])
        batch += 1
        if batch == 3:
            ready.set()  # type: ignore[attr-defined]
