"""Running one function invocation: its own thread, a timeout, logging and counters."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

logger = logging.getLogger("devhost")


@dataclass(slots=True)
class FunctionCounters:
    invocations: int = 0
    failures: int = 0
    timeouts: int = 0


@dataclass(slots=True)
class Counters:
    """What the host did since it started; read with ``snapshot()`` (thread-safe)."""

    functions: dict[str, FunctionCounters] = field(default_factory=dict)
    delivered: int = 0
    completed: int = 0
    abandoned: int = 0
    dead_lettered: int = 0
    http_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def record(self, function: str, *, failed: bool, timed_out: bool = False) -> None:
        with self._lock:
            counters = self.functions.setdefault(function, FunctionCounters())
            counters.invocations += 1
            counters.failures += int(failed)
            counters.timeouts += int(timed_out)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "invocations": sum(c.invocations for c in self.functions.values()),
                "failures": sum(c.failures for c in self.functions.values()),
                "timeouts": sum(c.timeouts for c in self.functions.values()),
                "delivered": self.delivered,
                "completed": self.completed,
                "abandoned": self.abandoned,
                "dead_lettered": self.dead_lettered,
                "http_requests": self.http_requests,
                "functions": {
                    name: {"invocations": c.invocations, "failures": c.failures,
                           "timeouts": c.timeouts}
                    for name, c in sorted(self.functions.items())
                },
            }


@dataclass(frozen=True, slots=True)
class Outcome:
    invocation_id: str
    result: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    duration_ms: float = 0.0
    # A timed-out function keeps running in its thread (Python cannot stop it); this is that thread.
    pending: threading.Thread | None = field(default=None, compare=False, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.error is None and not self.timed_out

    def describe_error(self) -> str:
        if self.timed_out:
            return "the function exceeded functionTimeout"
        if self.error is None:
            return ""
        return f"{type(self.error).__name__}: {self.error}"


class InvocationContext(func.Context):
    """The ``context`` argument a function may declare."""

    def __init__(self, invocation_id: str, function_name: str, directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._directory = directory
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


class Invoker:
    """Runs user functions with ``functionTimeout``; a heartbeat runs while they work."""

    def __init__(
        self, counters: Counters, *, timeout_s: float | None, directory: str = "."
    ) -> None:
        self.counters = counters
        self.timeout_s = timeout_s
        self.directory = directory

    def invoke(
        self,
        name: str,
        call: Callable[..., Any],
        arguments: Mapping[str, Any],
        *,
        wants_context: bool = False,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_every_s: float = 30.0,
        detail: str = "",
    ) -> Outcome:
        invocation_id = str(uuid.uuid4())
        kwargs = dict(arguments)
        if wants_context:
            kwargs["context"] = InvocationContext(invocation_id, name, self.directory)
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                value = call(**kwargs)
                if inspect.iscoroutine(value):
                    value = asyncio.run(value)
                box["result"] = value
            except BaseException as error:  # the host reports every failure, even SystemExit
                box["error"] = error

        logger.info("function %s started (id %s)%s", name, invocation_id[:8], detail)
        started = time.monotonic()
        # A daemon thread: a function stuck past its timeout cannot keep the host from exiting.
        worker = threading.Thread(target=run, name=f"fn-{name}", daemon=True)
        worker.start()
        deadline = None if self.timeout_s is None else started + self.timeout_s
        while worker.is_alive():
            wait = heartbeat_every_s if heartbeat else 3600.0
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            worker.join(wait)
            if not worker.is_alive():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if heartbeat:
                heartbeat()
        duration_ms = (time.monotonic() - started) * 1000
        if worker.is_alive():
            self.counters.record(name, failed=True, timed_out=True)
            logger.error("function %s timed out after %.0f ms (id %s)", name, duration_ms,
                         invocation_id[:8])
            return Outcome(invocation_id, timed_out=True, duration_ms=duration_ms, pending=worker)
        error = box.get("error")
        self.counters.record(name, failed=error is not None)
        if error is not None:
            logger.error("function %s failed in %.0f ms (id %s): %s: %s", name, duration_ms,
                         invocation_id[:8], type(error).__name__, error,
                         exc_info=(type(error), error, error.__traceback__))
            return Outcome(invocation_id, error=error, duration_ms=duration_ms)
        logger.info("function %s finished in %.0f ms (id %s)", name, duration_ms,
                    invocation_id[:8])
        return Outcome(invocation_id, result=box.get("result"), duration_ms=duration_ms)
