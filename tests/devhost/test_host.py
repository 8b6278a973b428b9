from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest

from devhost.host import DevHost
from devhost.host_config import HostConfig
from devhost.local_queue import MAX_DELIVERY_COUNT_EXCEEDED, QueueOptions
from devhost.local_settings import LocalSettings
from shared.adapters.servicebus.message_codec import OutboundMessage
from shared.errors import ConfigError
from tests.devhost.conftest import ManualClock
from tests.devhost.fixture_app import SETTINGS, Recorder, build_app

MakeHost = Callable[..., DevHost]


class TestIndexing:
    def test_reads_every_function_with_resolved_bindings(self, make_host: MakeHost) -> None:
        host = make_host(started=False)
        (timer,) = host.index.timers
        (queue,) = host.index.queues
        assert (timer.name, timer.arg_name, timer.schedule.expression) == (
            "Tick", "timer", "0 */5 * * * *")
        assert (queue.name, queue.queue, queue.connection, queue.many) == (
            "Work", "work-items", "ServiceBusConnection", False)
        routes = {f.name: (f.route, f.methods, f.auth_level) for f in host.index.http}
        assert routes == {
            "GetItem": ("items/{id:int}/{*rest}", frozenset({"GET"}), "function"),
            "Ping": ("ping", None, "anonymous"),
            "Fail": ("fail", frozenset({"POST"}), "anonymous"),
        }

    def test_missing_setting_is_named(self, recorder: Recorder) -> None:
        values = {k: v for k, v in SETTINGS.items() if k != "WORK_QUEUE"}
        with pytest.raises(ConfigError, match="missing app setting WORK_QUEUE.*function Work"):
            DevHost(build_app(recorder), LocalSettings(values), options=_no_io())

    def test_settings_values_reach_the_environment(self, make_host: MakeHost) -> None:
        import os

        make_host(started=False, values={"SOMETHING_ELSE": "x"})
        assert os.environ["SOMETHING_ELSE"] == "x" and os.environ["WORK_QUEUE"] == "work-items"

    def test_get_functions_is_called_once_per_app(self, recorder: Recorder, tmp_path) -> None:
        app = build_app(recorder)
        settings = LocalSettings({**SETTINGS, "LOCAL_QUEUE_DIR": str(tmp_path)})
        first = DevHost(app, settings, options=_no_io())
        second = DevHost(app, settings, options=_no_io())  # a second call would raise
        assert first.index.names() == second.index.names()


class TestAppPublisher:
    def test_the_app_publishes_to_the_hosts_queues_while_the_host_runs(
        self, make_host: MakeHost, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from devhost.local_publisher import LocalQueuePublisher
        from shared import bootstrap
        from shared.domain.commands import ApplyOptInBatch, BatchRef

        built: list[object] = []

        def build_services(environ: dict[str, str], *, publisher: object = None) -> object:
            built.append(publisher)
            return object()

        monkeypatch.setattr(bootstrap, "build_services", build_services)
        host = make_host(queues=False)
        bootstrap.services()
        host.stop(timeout_s=10)
        bootstrap.services()  # built again: the host's stop forgot the services it handed on
        [hosted, after] = built
        assert isinstance(hosted, LocalQueuePublisher)
        hosted.publish("work-items", [ApplyOptInBatch(BatchRef("acct", "run", 0), ())])
        assert host.store.counts("work-items").active == 1  # the host's own store
        assert after is None  # Service Bus again, as under Azure
        bootstrap.reset()


def _no_io():  # type: ignore[no-untyped-def]
    from devhost.host import HostOptions

    return HostOptions(http=False, timers=False, queues=False, queue_dir=None)


class TestTimers:
    def test_fires_on_schedule_with_a_timer_request(
        self, make_host: MakeHost, clock: ManualClock, recorder: Recorder
    ) -> None:
        host = make_host(queues=False)
        assert host.timers.next_due("Tick") == clock.moment.replace(minute=0, hour=10)
        assert host.timers.tick() == []
        clock.advance(seconds=60)
        assert host.timers.tick() == ["Tick"]
        host.timers.join()
        (request,) = recorder.timer_calls
        assert isinstance(request, TimerRequest) and request.past_due is False
        assert host.timers.next_due("Tick") == clock.moment + timedelta(minutes=5)
        assert host.timers.tick() == []  # once per occurrence

    def test_a_late_tick_is_past_due_and_fires_once(
        self, make_host: MakeHost, clock: ManualClock, recorder: Recorder
    ) -> None:
        host = make_host(queues=False)
        clock.advance(minutes=31)  # six occurrences missed
        assert host.timers.tick() == ["Tick"]
        host.timers.join()
        assert host.timers.tick() == []
        assert [r.past_due for r in recorder.timer_calls] == [True]

    def test_never_two_invocations_of_one_timer(
        self, make_host: MakeHost, clock: ManualClock, recorder: Recorder
    ) -> None:
        recorder.gate = threading.Event()
        host = make_host(queues=False)
        clock.advance(minutes=1)
        assert host.timers.tick() == ["Tick"]
        clock.advance(minutes=5)
        assert host.timers.tick() == []  # the first invocation still runs
        recorder.gate.set()
        host.timers.join()
        clock.advance(minutes=2)
        assert host.timers.tick() == ["Tick"]  # the held-back occurrence, now past due
        host.timers.join()
        assert [r.past_due for r in recorder.timer_calls] == [False, True]
        assert recorder.max_running == 1

    def test_trigger_now_by_name(self, make_host: MakeHost, recorder: Recorder) -> None:
        host = make_host()
        outcome = host.trigger_timer("Tick")
        assert outcome.succeeded and len(recorder.timer_calls) == 1
        with pytest.raises(ConfigError, match="no timer function named 'Nope'"):
            host.trigger_timer("Nope")

    def test_run_on_startup(self, recorder: Recorder, tmp_path) -> None:
        import azure.functions as func

        from devhost.host import HostOptions

        app = func.FunctionApp()
        fired = threading.Event()

        @app.timer_trigger(arg_name="t", schedule="0 0 0 1 1 *", run_on_startup=True)
        def startup(t: func.TimerRequest) -> None:
            fired.set()

        host = DevHost(app, LocalSettings({}), options=HostOptions(
            http=False, queues=False, queue_dir=tmp_path))
        host.start()
        try:
            assert fired.wait(10)
        finally:
            host.stop()


class TestQueues:
    def test_delivers_a_real_service_bus_message_and_completes_it(
        self, make_host: MakeHost, recorder: Recorder
    ) -> None:
        host = make_host()
        host.store.send("work-items", [OutboundMessage("m-1", b'{"a": 1}', "application/json",
                                                       {"schema": 1})])
        assert host.wait_idle(10)
        (msg,) = recorder.messages
        assert isinstance(msg, ServiceBusMessage)
        assert (msg.message_id, msg.get_body(), msg.delivery_count) == ("m-1", b'{"a": 1}', 1)
        assert msg.application_properties == {"schema": 1}
        assert msg.content_type == "application/json" and msg.lock_token
        assert msg.enqueued_time_utc is not None and msg.enqueued_time_utc.tzinfo is not None
        assert msg.metadata is not None and msg.metadata["DeliveryCount"] == 1
        counters = host.counters.snapshot()
        assert (counters["completed"], counters["failures"]) == (1, 0)

    def test_failing_message_is_retried_then_dead_lettered_with_the_exception(
        self, make_host: MakeHost, recorder: Recorder
    ) -> None:
        host = make_host(queue_options={"work-items": QueueOptions(max_delivery_count=3)})
        host.store.send("work-items", [OutboundMessage("bad", b"poison"),
                                       OutboundMessage("good", b"fine")])
        assert host.wait_idle(10)
        deliveries = sorted((m.message_id, m.delivery_count) for m in recorder.messages)
        assert deliveries == [("bad", 1), ("bad", 2), ("bad", 3), ("good", 1)]
        (letter,) = host.dead_letters("work-items")
        assert letter.message_id == "bad"
        assert letter.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED
        assert letter.dead_letter_description == "ValueError: cannot apply this batch"
        counters = host.counters.snapshot()
        settled = (counters["abandoned"], counters["dead_lettered"], counters["completed"])
        assert settled == (2, 1, 1)
        assert counters["functions"]["Work"] == {"invocations": 4, "failures": 3, "timeouts": 0}

    def test_concurrency_is_max_concurrent_calls(
        self, make_host: MakeHost, recorder: Recorder
    ) -> None:
        recorder.gate = threading.Event()
        host = make_host(config=HostConfig(max_concurrent_calls=3))
        host.store.send("work-items", [OutboundMessage(f"m{i}", b"x") for i in range(8)])
        _wait_until(lambda: recorder.running == 3)
        assert host.dispatcher.in_flight() == 3
        recorder.gate.set()
        assert host.wait_idle(10)
        assert recorder.max_running == 3 and len(recorder.messages) == 8

    def test_function_timeout_abandons_the_message(
        self, make_host: MakeHost, recorder: Recorder
    ) -> None:
        recorder.gate = threading.Event()
        host = make_host(config=HostConfig(function_timeout_s=0.05))
        host.store.send("work-items", [OutboundMessage("slow", b"x")])
        _wait_until(lambda: host.counters.snapshot()["timeouts"] == 1)
        _wait_until(lambda: host.counters.snapshot()["abandoned"] == 1)
        recorder.gate.set()
        assert host.wait_idle(10)
        assert [m.delivery_count for m in recorder.messages][:2] == [1, 2]

    def test_timer_output_flows_through_the_queue(
        self, make_host: MakeHost, recorder: Recorder
    ) -> None:
        host = make_host()
        host.trigger_timer("Tick")
        host.trigger_timer("Tick")
        assert host.wait_idle(10)
        assert sorted(m.message_id for m in recorder.messages) == ["tick-1", "tick-2"]


def _wait_until(condition: Callable[[], bool], attempts: int = 1000) -> None:
    event = threading.Event()
    for _ in range(attempts):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition never became true")
