"""Fires timer functions on their schedules, never two invocations of one timer at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import azure.functions as func

from devhost.app_index import TimerFunction
from devhost.invocation import Invoker, Outcome
from shared.errors import ConfigError

logger = logging.getLogger("devhost")
# The real host marks an invocation past due when it starts late; a tick of slack is not "late".
PAST_DUE_AFTER = timedelta(seconds=1)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(slots=True)
class _TimerState:
    function: TimerFunction
    next_due: datetime
    last_due: datetime | None = None
    busy: threading.Lock = field(default_factory=threading.Lock)


class TimerScheduler:
    """Call ``tick()`` to fire due timers (the host calls it from a loop; tests drive it)."""

    def __init__(self, timers: Sequence[TimerFunction], invoker: Invoker, clock: Clock) -> None:
        self._invoker = invoker
        self._clock = clock
        now = clock.now()
        self._timers = {
            t.name: _TimerState(t, t.schedule.next_after(now)) for t in timers
        }
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._timers)

    def next_due(self, name: str) -> datetime:
        return self._state(name).next_due

    def start(self) -> None:
        """Fire the ``run_on_startup`` timers, as the host does on every start."""
        for state in self._timers.values():
            if state.function.run_on_startup:
                self._launch(state, past_due=False, scheduled=self._clock.now())

    def tick(self) -> list[str]:
        """Fire every timer that is due and not running; returns the names fired."""
        now = self._clock.now()
        fired = []
        for state in self._timers.values():
            if state.next_due > now:
                continue
            if not state.busy.acquire(blocking=False):
                continue  # still running: fires when it ends (coalesced, past due)
            due = state.next_due
            state.last_due = due
            # Missed occurrences collapse into this one invocation, as with the real host.
            state.next_due = state.function.schedule.next_after(now)
            self._launch(state, past_due=now - due > PAST_DUE_AFTER, scheduled=due, locked=True)
            fired.append(state.function.name)
        return fired

    def trigger(self, name: str, *, wait: bool = True) -> Outcome | None:
        """Run a timer now (like POST /admin/functions/{name}); waits for a running one first."""
        state = self._state(name)
        if not wait:
            self._launch(state, past_due=False, scheduled=self._clock.now())
            return None
        state.busy.acquire()
        return self._run(state, past_due=False, scheduled=self._clock.now())

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the invocations already started."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout_s)

    def running(self) -> int:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            return len(self._threads)

    def _state(self, name: str) -> _TimerState:
        try:
            return self._timers[name]
        except KeyError:
            raise ConfigError(
                f"no timer function named {name!r} (timers: {', '.join(self._timers) or 'none'})"
            ) from None

    def _launch(
        self, state: _TimerState, *, past_due: bool, scheduled: datetime, locked: bool = False
    ) -> None:
        def run() -> None:
            if not locked:
                state.busy.acquire()
            self._run(state, past_due=past_due, scheduled=scheduled)

        thread = threading.Thread(target=run, name=f"timer-{state.function.name}")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _run(self, state: _TimerState, *, past_due: bool, scheduled: datetime) -> Outcome:
        """Runs with ``state.busy`` held; releases it when the function has really ended."""
        try:
            function = state.function
            logger.info("timer fired: %s (scheduled %s, past_due=%s)", function.name,
                        scheduled.isoformat(timespec="seconds"), past_due)
            request = func.timer.TimerRequest(
                past_due=past_due,
                schedule_status={
                    "Last": state.last_due.isoformat() if state.last_due else None,
                    "Next": state.next_due.isoformat(),
                    "LastUpdated": self._clock.now().isoformat(),
                },
                schedule={"AdjustForDST": True},
            )
            outcome = self._invoker.invoke(
                function.name, function.call, {function.arg_name: request},
                wants_context=function.wants_context,
            )
            if outcome.pending is not None:
                outcome.pending.join()  # never overlap, even with a timed-out invocation
            return outcome
        finally:
            state.busy.release()
