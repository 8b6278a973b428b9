"""A small function app for the dev host tests: one of each trigger, all with %SETTING% names."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from devhost.local_queue import LocalQueueStore
from shared.adapters.servicebus.message_codec import OutboundMessage


@dataclass
class Recorder:
    """What the functions saw; ``gate`` lets a test hold functions inside their invocation."""

    timer_calls: list[func.TimerRequest] = field(default_factory=list)
    messages: list[func.ServiceBusMessage] = field(default_factory=list)
    gate: threading.Event | None = None
    running: int = 0
    max_running: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1

    def hold(self) -> None:
        if self.gate is not None and not self.gate.wait(10):
            raise TimeoutError("the test never opened the gate")


def build_app(recorder: Recorder) -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.function_name("Tick")
    @app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%", run_on_startup=False)
    def tick(timer: func.TimerRequest) -> None:
        recorder.enter()
        try:
            recorder.timer_calls.append(timer)
            recorder.hold()
            stamp = datetime.now(UTC).isoformat()
            LocalQueueStore(os.environ["LOCAL_QUEUE_DIR"]).send(
                os.environ["WORK_QUEUE"],
                [OutboundMessage(f"tick-{len(recorder.timer_calls)}", stamp.encode())],
            )
        finally:
            recorder.leave()

    @app.function_name("Work")
    @app.service_bus_queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%",
                                   connection="ServiceBusConnection")
    def work(msg: func.ServiceBusMessage) -> None:
        recorder.enter()
        try:
            recorder.messages.append(msg)
            recorder.hold()
            if msg.get_body() == b"poison":
                raise ValueError("cannot apply this batch")
        finally:
            recorder.leave()

    @app.function_name("GetItem")
    @app.route(route="items/{id:int}/{*rest}", methods=["GET"])
    def get_item(req: func.HttpRequest) -> func.HttpResponse:
        payload: dict[str, Any] = {"route": dict(req.route_params), "params": dict(req.params)}
        return func.HttpResponse(json.dumps(payload), mimetype="application/json")

    @app.function_name("Ping")
    @app.route(route="%PING_ROUTE%", auth_level=func.AuthLevel.ANONYMOUS)
    def ping(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse(f"pong from {context.function_name}", status_code=200)

    @app.function_name("Fail")
    @app.route(route="fail", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    def fail(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("broken on purpose")

    return app


SETTINGS = {
    "TICK_SCHEDULE": "0 */5 * * * *",
    "WORK_QUEUE": "work-items",
    "PING_ROUTE": "ping",
    "ServiceBusConnection": "local",
    "DEVHOST_FUNCTION_KEY": "function-key-1",
    "DEVHOST_MASTER_KEY": "master-key-1",
}
