"""The dev host: runs a Functions app's timers, queue triggers and HTTP routes in one process.

Python API (tests, scripts, ``make run``)::

    host = DevHost.from_files("local.settings.json", script="function_app")
    host.start()
    host.trigger_timer("SyncTimer")        # run a timer function now and wait for it
    host.wait_idle(timeout_s=60)           # until every queue is empty and nothing runs
    host.counters.snapshot()               # invocations, failures, dead_lettered, ...
    host.stop()

Queue triggers with ``is_sessions_enabled=True`` run on session queues: the host marks their
queues as requiring sessions (a publish without ``session_id`` is then refused, as Service Bus
does) and runs up to host.json ``extensions.serviceBus.maxConcurrentSessions`` sessions at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from azure.functions.decorators.function_app import FunctionRegister

from devhost.app_index import FunctionIndex, index_functions, load_function_app
from devhost.host_config import HostConfig, load_host_config
from devhost.http_frontend import (
    FUNCTION_KEY_SETTING,
    HTTP_TIMEOUT_S,
    MASTER_KEY_SETTING,
    HttpFrontend,
)
from devhost.invocation import Counters, Invoker, Outcome
from devhost.local_publisher import LocalQueuePublisher
from devhost.local_queue import LocalQueueStore, QueueOptions
from devhost.local_settings import LocalSettings, load_local_settings
from devhost.queue_dispatch import QueueDispatcher
from devhost.timers import Clock, SystemClock, TimerScheduler
from shared import bootstrap
from shared.errors import ConfigError

logger = logging.getLogger("devhost")
DEFAULT_QUEUE_DIR = ".run/queues"
_TIMER_POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class HostOptions:
    """How to run: which parts, where, and per-queue properties (as Bicep sets them)."""

    queue_dir: str | Path | None = None  # default: LOCAL_QUEUE_DIR, else .run/queues
    http: bool = True
    http_port: int | None = None  # None: Host.LocalHttpPort from the settings, else 7071
    timers: bool = True  # fire on schedule; trigger_timer() works either way
    queues: bool = True
    queue_options: Mapping[str, QueueOptions] = field(default_factory=dict)
    default_queue_options: QueueOptions | None = None
    environ: MutableMapping[str, str] | None = None  # where Values go (default os.environ)


class DevHost:
    def __init__(
        self,
        app: FunctionRegister,
        settings: LocalSettings,
        *,
        host_config: HostConfig | None = None,
        options: HostOptions | None = None,
        clock: Clock | None = None,
        app_dir: str | Path = ".",
    ) -> None:
        self.options = options or HostOptions()
        self.settings = settings
        self.config = host_config or HostConfig()
        self.clock = clock or SystemClock()
        self.app_dir = Path(app_dir)
        self.counters = Counters()
        # Functions read their settings from the environment, like under the real host.
        settings.apply_to(os.environ if self.options.environ is None else self.options.environ)
        self.index: FunctionIndex = index_functions(app, settings)
        self.store = LocalQueueStore(self._queue_dir(), clock=lambda: self.clock.now().timestamp(),
                                     default_options=self._default_queue_options())
        for queue, queue_options in self.options.queue_options.items():
            self.store.configure(queue, queue_options)
        self._match_session_queues()
        invoker = Invoker(self.counters, timeout_s=self.config.function_timeout_s,
                          directory=str(self.app_dir))
        self.timers = TimerScheduler(self.index.timers, invoker, self.clock)
        self.dispatcher = QueueDispatcher(self.index.queues, self.store, invoker, self.counters,
                                          self.config)
        self.http: HttpFrontend | None = None
        if self.options.http and self.index.http:
            http_timeout = min(self.config.function_timeout_s or HTTP_TIMEOUT_S, HTTP_TIMEOUT_S)
            self.http = HttpFrontend(
                self.index.http, Invoker(self.counters, timeout_s=http_timeout,
                                         directory=str(self.app_dir)),
                self.counters, route_prefix=self.config.route_prefix,
                keys={name: settings.values.get(name, "")
                      for name in (FUNCTION_KEY_SETTING, MASTER_KEY_SETTING)},
                port=self._http_port(), trigger_timer=self._trigger_from_admin,
                # The CRM origin the ribbon's pages call from, as the Functions host reads it.
                cors_origins=str(settings.host.get("CORS") or ""),
            )
        self._stop = threading.Event()
        self._timer_thread: threading.Thread | None = None

    @classmethod
    def from_files(
        cls,
        settings_path: str | Path,
        *,
        script: str = "function_app",
        app_dir: str | Path = ".",
        host_json: str | Path | None = None,
        options: HostOptions | None = None,
        clock: Clock | None = None,
    ) -> DevHost:
        """Load settings first (the app may read them at import), then the app and host.json."""
        settings = load_local_settings(settings_path)
        environ = os.environ if options is None or options.environ is None else options.environ
        settings.apply_to(environ)
        app = load_function_app(script, app_dir=app_dir)
        config = load_host_config(host_json or Path(app_dir) / "host.json")
        return cls(app, settings, host_config=config, options=options, clock=clock,
                   app_dir=app_dir)

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        logger.info("dev host starting: %d timer, %d queue, %d HTTP functions",
                    len(self.index.timers), len(self.index.queues), len(self.index.http))
        # The app publishes to this host's queues, as under Azure it would to Service Bus.
        bootstrap.use_publisher(LocalQueuePublisher(self.store))
        bootstrap.reset()
        if self.http is not None:
            self.http.start()
        if self.options.queues:
            self.dispatcher.start()
        if self.options.timers:
            self.timers.start()
            self._stop.clear()
            self._timer_thread = threading.Thread(target=self._timer_loop, name="timers",
                                                  daemon=True)
            self._timer_thread.start()

    def stop(self, timeout_s: float | None = 30.0) -> None:
        """Stop taking work, let running invocations finish, close the HTTP port."""
        self._stop.set()
        if self._timer_thread is not None:
            self._timer_thread.join(timeout_s)
            self._timer_thread = None
        self.dispatcher.stop(timeout_s)
        self.timers.join(timeout_s)
        if self.http is not None:
            self.http.stop()
        bootstrap.use_publisher(None)
        bootstrap.reset()
        logger.info("dev host stopped: %s", _summary(self.counters.snapshot()))

    def __enter__(self) -> DevHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- API for tests and scripts ---------------------------------------------------------------
    def trigger_timer(self, name: str) -> Outcome:
        """Run a timer function now (waiting for a running invocation of it to end first)."""
        outcome = self.timers.trigger(name, wait=True)
        assert outcome is not None
        return outcome

    def is_idle(self) -> bool:
        queues = set(self.dispatcher.queues)
        busy = self.timers.running() or self.dispatcher.in_flight()
        return not busy and all(self.store.counts(q).active == 0 for q in queues)

    def wait_idle(self, timeout_s: float = 60.0, *, settle_s: float = 0.1) -> bool:
        """Wait until every trigger queue is empty and nothing runs; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # Idle twice in a row: a function that just finished may have published more work.
            if self.is_idle():
                time.sleep(settle_s)
                if self.is_idle():
                    return True
            time.sleep(0.02)
        return False

    def dead_letters(self, queue: str) -> list[Any]:
        return self.store.dead_letters(queue)

    # --- internals -------------------------------------------------------------------------------
    def _timer_loop(self) -> None:
        while not self._stop.wait(_TIMER_POLL_S):
            try:
                self.timers.tick()
            except Exception:
                logger.exception("timer scheduling failed")

    def _trigger_from_admin(self, name: str) -> bool:
        if name not in self.timers.names:
            return False
        self.timers.trigger(name, wait=False)
        return True

    def _match_session_queues(self) -> None:
        """A queue requires sessions exactly when its triggers enable them, as Bicep sets both.

        Its options are written on every start (from this run's options, not a previous run's).
        """
        for function in self.index.queues:
            if function.sessions or self.store.options(function.queue).requires_session:
                base = (self.options.queue_options.get(function.queue)
                        or self._default_queue_options())
                self.store.configure(function.queue,
                                     replace(base, requires_session=function.sessions))

    def _queue_dir(self) -> Path:
        configured = self.options.queue_dir or self.settings.values.get("LOCAL_QUEUE_DIR")
        path = Path(configured or DEFAULT_QUEUE_DIR)
        return path if path.is_absolute() else self.app_dir / path

    def _default_queue_options(self) -> QueueOptions:
        base = self.options.default_queue_options or QueueOptions()
        if self.config.max_delivery_count is None or self.options.default_queue_options:
            return base
        return QueueOptions(max_delivery_count=self.config.max_delivery_count,
                            lock_duration_s=base.lock_duration_s,
                            duplicate_window_s=base.duplicate_window_s)

    def _http_port(self) -> int:
        if self.options.http_port is not None:
            return self.options.http_port
        raw = self.settings.host.get("LocalHttpPort", 7071)
        try:
            return int(str(raw))
        except ValueError:
            raise ConfigError(f"Host.LocalHttpPort must be a port number, got {raw!r}") from None


def _summary(snapshot: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in snapshot.items() if k != "functions")
