"""One process's shared pause for a service that has asked a request to wait (429)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ThrottleGate:
    """Holds a process's new requests to a service while it has asked one of them to wait.

    Service protection limits the app's identity, not a connection: while one request waits out
    a 429, the other threads' requests would be refused too, and every refusal is a request
    spent (Dataverse counts them) that moves nothing on.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._closed_until = 0.0

    def close_for(self, seconds: float) -> None:
        with self._lock:
            self._closed_until = max(self._closed_until, self._clock() + seconds)

    def wait(self) -> None:
        with self._lock:
            remaining = self._closed_until - self._clock()
        if remaining > 0:
            self._sleep(remaining)
