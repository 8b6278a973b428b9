"""Session-enabled queue triggers on the dev host: order, exclusivity, concurrency, locks, DLQ."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import azure.functions as func
import pytest

from devhost.app_index import index_functions
from devhost.host import DevHost
from devhost.host_config import HostConfig, load_host_config, parse_host_config
from devhost.local_queue import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    LocalQueueStore,
    QueueOptions,
)
from devhost.local_settings import LocalSettings
from shared.adapters.servicebus.message_codec import OutboundMessage
from shared.errors import ConfigError, MessageFormatError
from tests.devhost.conftest import ManualClock, host_factory
from tests.devhost.test_host import _wait_until

REPO = Path(__file__).resolve().parents[2]
QUEUE = "ordered-items"
SETTINGS = {"ORDERED_QUEUE": QUEUE, "ServiceBusConnection": "local"}


@dataclass
class SessionRecorder:
    """Per-session calls in order, plus any moment two calls ran for one session at once."""

    calls: list[func.ServiceBusMessage] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    gate: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_enter: Callable[[], None] | None = None  # e.g. time passing in each call

    def enter(self, msg: func.ServiceBusMessage) -> None:
        session = str(msg.session_id)
        if self.on_enter is not None:
            self.on_enter()
        with self.lock:
            self.calls.append(msg)
            if self.active.get(session):
                self.overlaps.append(session)
            self.active[session] = self.active.get(session, 0) + 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)

    def leave(self, msg: func.ServiceBusMessage) -> None:
        with self.lock:
            self.active[str(msg.session_id)] -= 1
            self.running -= 1

    def order(self) -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {}
        for msg in self.calls:
            seen.setdefault(str(msg.session_id), []).append(str(msg.message_id))
        return seen


def build_session_app(recorder: SessionRecorder) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.function_name("Ordered")
    @app.service_bus_queue_trigger(arg_name="msg", queue_name="%ORDERED_QUEUE%",
                                   connection="ServiceBusConnection", is_sessions_enabled=True)
    def ordered(msg: func.ServiceBusMessage) -> None:
        recorder.enter(msg)
        try:
            if recorder.gate is not None and not recorder.gate.wait(10):
                raise TimeoutError("the test never opened the gate")
            threading.Event().wait(0.001)  # widen the window in which an overlap would show
            if msg.get_body() == b"poison":
                raise ValueError("cannot apply this batch")
        finally:
            recorder.leave(msg)

    return app


@pytest.fixture
def session_recorder() -> SessionRecorder:
    return SessionRecorder()


@pytest.fixture
def make_session_host(
    tmp_path: Path, session_recorder: SessionRecorder, clock: ManualClock
) -> Iterator[Callable[..., DevHost]]:
    def release() -> None:
        if session_recorder.gate is not None:
            session_recorder.gate.set()

    yield from host_factory(tmp_path, clock, lambda: build_session_app(session_recorder),
                            SETTINGS, release, timers=False, http=False)


def in_session(message_id: str, session: str, body: bytes = b"{}") -> OutboundMessage:
    return OutboundMessage(message_id, body, session_id=session)


MakeHost = Callable[..., DevHost]


class TestSessionConfig:
    def test_max_concurrent_sessions_from_host_json(self) -> None:
        assert HostConfig().max_concurrent_sessions == 8
        current = {"extensions": {"serviceBus": {"maxConcurrentSessions": 3}}}
        legacy = {"extensions": {"serviceBus": {
            "sessionHandlerOptions": {"maxConcurrentSessions": 5}}}}
        assert parse_host_config(current).max_concurrent_sessions == 3
        assert parse_host_config(legacy).max_concurrent_sessions == 5
        assert load_host_config(REPO / "host.json").max_concurrent_sessions == 10

    @pytest.mark.parametrize("value", [0, -1, "8", 2.5, True])
    def test_a_bad_max_concurrent_sessions_is_refused(self, value: object) -> None:
        with pytest.raises(ConfigError, match="maxConcurrentSessions"):
            parse_host_config({"extensions": {"serviceBus": {"maxConcurrentSessions": value}}})

    def test_the_trigger_and_its_queue_require_sessions(self, make_session_host: MakeHost) -> None:
        host = make_session_host(started=False)
        (function,) = host.index.queues
        assert function.sessions and function.queue == QUEUE
        assert host.store.options(QUEUE).requires_session
        with pytest.raises(MessageFormatError, match="requires sessions"):
            LocalQueueStore(host.store.directory).send(QUEUE, [OutboundMessage("m", b"")])

    def test_explicit_queue_options_are_kept_with_sessions_on(
        self, make_session_host: MakeHost
    ) -> None:
        host = make_session_host(started=False,
                                 queue_options={QUEUE: QueueOptions(max_delivery_count=2)})
        assert host.store.options(QUEUE) == QueueOptions(max_delivery_count=2,
                                                          requires_session=True)

    def test_each_start_writes_that_runs_options_for_a_session_queue(
        self, make_session_host: MakeHost
    ) -> None:
        make_session_host(started=False, default_queue_options=QueueOptions(lock_duration_s=5))
        host = make_session_host(started=False,
                                 default_queue_options=QueueOptions(lock_duration_s=9))
        assert host.store.options(QUEUE) == QueueOptions(lock_duration_s=9,
                                                          requires_session=True)

    def test_a_queue_left_session_enabled_is_reset_for_a_plain_trigger(
        self, make_session_host: MakeHost, make_host: MakeHost
    ) -> None:
        session_host = make_session_host(started=False)
        session_host.store.configure("work-items", QueueOptions(requires_session=True))
        plain = make_host(started=False)
        assert plain.store.options("work-items") == QueueOptions()

    def test_triggers_of_one_queue_must_agree_on_sessions(self) -> None:
        app = func.FunctionApp()

        @app.function_name("Plain")
        @app.service_bus_queue_trigger(arg_name="msg", queue_name=QUEUE, connection="c")
        def plain(msg: func.ServiceBusMessage) -> None: ...

        @app.function_name("Sessions")
        @app.service_bus_queue_trigger(arg_name="msg", queue_name=QUEUE, connection="c",
                                       is_sessions_enabled=True)
        def sessions(msg: func.ServiceBusMessage) -> None: ...

        with pytest.raises(ConfigError, match="Plain and Sessions.*is_sessions_enabled"):
            index_functions(app, LocalSettings({}))


class TestSessionDelivery:
    def test_the_function_gets_the_session_id_and_order_holds_per_session(
        self, make_session_host: MakeHost, session_recorder: SessionRecorder
    ) -> None:
        host = make_session_host(config=HostConfig(max_concurrent_sessions=4))
        LocalQueueStore(host.store.directory).send(QUEUE, [
            in_session(f"{s}-{i}", f"optin-{s}") for i in range(12) for s in range(6)])
        assert host.wait_idle(20)
        assert session_recorder.overlaps == []
        assert session_recorder.order() == {
            f"optin-{s}": [f"{s}-{i}" for i in range(12)] for s in range(6)}
        first = session_recorder.calls[0]
        assert first.metadata is not None and first.metadata["SessionId"] == first.session_id
        assert host.counters.snapshot()["completed"] == 72

    def test_sessions_run_in_parallel_up_to_the_limit(
        self, make_session_host: MakeHost, session_recorder: SessionRecorder
    ) -> None:
        session_recorder.gate = threading.Event()
        host = make_session_host(config=HostConfig(max_concurrent_sessions=3))
        host.store.send(QUEUE, [in_session(f"{s}-{i}", f"s{s}") for i in range(2)
                                for s in range(5)])
        _wait_until(lambda: session_recorder.running == 3)
        assert len({m.session_id for m in session_recorder.calls}) == 3
        session_recorder.gate.set()
        assert host.wait_idle(10)
        assert session_recorder.max_running == 3 and len(session_recorder.calls) == 10
        assert session_recorder.overlaps == []

    def test_one_session_is_never_delivered_to_two_receivers_at_once(
        self, make_session_host: MakeHost, session_recorder: SessionRecorder
    ) -> None:
        session_recorder.gate = threading.Event()
        host = make_session_host(config=HostConfig(max_concurrent_sessions=4))
        host.store.send(QUEUE, [in_session(f"m{i}", "only") for i in range(5)])
        _wait_until(lambda: session_recorder.running == 1)
        assert host.store.accept_next_session(QUEUE) is None  # held by the busy receiver
        session_recorder.gate.set()
        assert host.wait_idle(10)
        assert session_recorder.max_running == 1
        assert session_recorder.order() == {"only": [f"m{i}" for i in range(5)]}

    def test_a_poison_message_is_retried_in_place_then_dead_lettered_and_the_session_goes_on(
        self, make_session_host: MakeHost, session_recorder: SessionRecorder
    ) -> None:
        host = make_session_host(queue_options={QUEUE: QueueOptions(max_delivery_count=3)})
        host.store.send(QUEUE, [in_session("bad", "a", b"poison"), in_session("good", "a"),
                                in_session("other", "b")])
        assert host.wait_idle(10)
        assert session_recorder.order()["a"] == ["bad", "bad", "bad", "good"]
        assert [m.delivery_count for m in session_recorder.calls if m.message_id == "bad"] == [
            1, 2, 3]
        (letter,) = host.dead_letters(QUEUE)
        assert (letter.message_id, letter.session_id, letter.dead_letter_reason) == (
            "bad", "a", MAX_DELIVERY_COUNT_EXCEEDED)
        assert letter.dead_letter_description == "ValueError: cannot apply this batch"
        counters = host.counters.snapshot()
        assert (counters["abandoned"], counters["dead_lettered"], counters["completed"]) == (
            2, 1, 2)

    def test_an_expired_session_lock_lets_another_receiver_redeliver(
        self, make_session_host: MakeHost, session_recorder: SessionRecorder, clock: ManualClock
    ) -> None:
        session_recorder.gate = threading.Event()
        host = make_session_host(
            config=HostConfig(max_concurrent_sessions=2, max_auto_lock_renewal_s=0),
            queue_options={QUEUE: QueueOptions(lock_duration_s=30)},
        )
        host.store.send(QUEUE, [in_session("m1", "a"), in_session("m2", "a")])
        _wait_until(lambda: session_recorder.running == 1)
        clock.advance(seconds=31)  # no renewal: the session lock runs out under the function
        _wait_until(lambda: session_recorder.running == 2)
        assert [(m.message_id, m.delivery_count) for m in session_recorder.calls] == [
            ("m1", 1), ("m1", 2)]
        session_recorder.gate.set()
        assert host.wait_idle(10)
        assert [m.message_id for m in session_recorder.calls] == ["m1", "m1", "m2"]
        assert host.store.counts(QUEUE).active == 0

    def test_the_session_lock_is_renewed_while_the_function_runs(
        self, make_session_host: MakeHost, session_recorder: SessionRecorder, clock: ManualClock
    ) -> None:
        session_recorder.gate = threading.Event()
        host = make_session_host(
            config=HostConfig(max_concurrent_sessions=2),
            queue_options={QUEUE: QueueOptions(lock_duration_s=0.2)},
        )
        host.store.send(QUEUE, [in_session("m1", "a")])
        _wait_until(lambda: session_recorder.running == 1)
        for _ in range(3):  # each step passes the last lock; the heartbeat renews from "now"
            before = _session_locked_until(host)
            clock.advance(seconds=0.15)
            _wait_until(_renewed_after(host, before))
        assert len(session_recorder.calls) == 1
        session_recorder.gate.set()
        assert host.wait_idle(10)
        assert host.counters.snapshot()["completed"] == 1

    def test_a_session_serving_many_short_calls_keeps_its_lock_past_its_duration(
        self, make_session_host: MakeHost, session_recorder: SessionRecorder, clock: ManualClock
    ) -> None:
        # Each call takes 10 s of the session's 30 s lock, too short for an in-call renewal:
        # the lock must still be renewed between calls, or the fourth would lose it.
        session_recorder.on_enter = lambda: clock.advance(seconds=10)
        host = make_session_host(config=HostConfig(max_concurrent_sessions=2),
                                 queue_options={QUEUE: QueueOptions(lock_duration_s=30)})
        host.store.send(QUEUE, [in_session(f"m{i}", "a") for i in range(6)])
        assert host.wait_idle(10)
        assert [(m.message_id, m.delivery_count) for m in session_recorder.calls] == [
            (f"m{i}", 1) for i in range(6)]
        assert host.counters.snapshot()["completed"] == 6

    def test_messages_left_by_a_stopped_host_are_delivered_in_order_by_the_next(
        self, make_session_host: MakeHost, session_recorder: SessionRecorder
    ) -> None:
        make_session_host(queues=False).stop()
        LocalQueueStore(os.environ["LOCAL_QUEUE_DIR"]).send(
            QUEUE, [in_session(f"m{i}", "a") for i in range(4)])
        again = make_session_host()
        assert again.wait_idle(10)
        assert session_recorder.order() == {"a": ["m0", "m1", "m2", "m3"]}


def _renewed_after(host: DevHost, before: float) -> Callable[[], bool]:
    return lambda: _session_locked_until(host) > before


def _session_locked_until(host: DevHost) -> float:
    store: LocalQueueStore = host.store
    with store._transaction() as db:  # test-only peek at the stored session lock
        row = db.execute("SELECT locked_until FROM sessions").fetchone()
    return float(row[0]) if row else 0.0

