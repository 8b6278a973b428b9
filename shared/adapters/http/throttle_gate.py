"""One process's shared pause for a service that has asked a request to wait (429)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# How far apart the held requests go once the hold is over (see ``ThrottleGate``).
RAMP_STEP_S = 0.1


def _pause(opened: threading.Event, seconds: float) -> None:
    opened.wait(seconds)


class ThrottleGate:
    """Holds a process's new requests to a service while it has asked one of them to wait.

    Service protection limits the app's identity, not a connection: while one request waits out
    a 429, the other threads' requests would be refused too, and every refusal is a request
    spent (Dataverse counts them) that moves nothing on.

    Once the hold is over the held requests go one at a time, ``ramp_step_s`` apart, until one
    sent after the latest 429 is admitted; then the gate is open. Dataverse asks clients to ramp
    up gradually after throttling, and ``Retry-After`` is whole seconds while the limits are
    sliding windows: requests that all go at the end of the hold are all refused together and
    all told the same rounded-up wait, while requests spread over that second find the moment
    the budget is back to within a step. A refusal during the ramp does not hold the others
    again: that request waits out its own ``Retry-After``, so a ramp costs at most one refusal
    per held request, as sending them all at once did.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[threading.Event, float], None] = _pause,
        ramp_step_s: float = RAMP_STEP_S,
    ) -> None:
        self._clock = clock
        self._pause = pause
        self._ramp_step_s = ramp_step_s
        self._lock = threading.Lock()
        self._closed_at = float("-inf")
        self._closed_until = float("-inf")
        self._next_release = float("-inf")
        self._open = threading.Event()
        self._open.set()

    def now(self) -> float:
        return self._clock()

    def close_for(self, seconds: float) -> None:
        with self._lock:
            now = self._clock()
            self._closed_at = now
            if self._open.is_set():
                # A new hold: the end of one the gate opened early from no longer applies.
                self._closed_until = now + seconds
            elif now < self._closed_until:
                self._closed_until = max(self._closed_until, now + seconds)
            self._open.clear()

    def passed(self, sent_at: float) -> None:
        """A request sent at ``sent_at`` was admitted: if that was after the latest 429, open."""
        with self._lock:
            if sent_at >= self._closed_at and not self._open.is_set():
                self._open.set()

    def wait(self) -> float:
        """Return once the caller may send; the time its request goes."""
        while True:
            with self._lock:
                now = self._clock()
                if self._open.is_set():
                    return now
                release = max(self._closed_until, self._next_release)
                if release <= now:
                    self._next_release = now + self._ramp_step_s
                    return now
            self._pause(self._open, release - now)
