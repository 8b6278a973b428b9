"""The HTTP clients' counters, reported as they count, for the run the request was made for."""

from __future__ import annotations

from shared.adapters.http.policy import CallStats
from shared.errors import System
from shared.services.telemetry import count_requests

_REPORTED = frozenset({"requests", "throttled"})


class MeteredCallStats(CallStats):
    """``CallStats`` whose requests and throttled responses also go to the process's telemetry,
    with the dimensions of the scope the request was sent in (no telemetry: nothing more).

    The retry policy counts with ``+=`` on the calling thread, so every increment passes through
    ``__setattr__`` while that thread's scope (run, account, sync type) is the current one.
    """

    def __init__(self, system: System) -> None:
        self._system = system.value
        super().__init__()

    def __setattr__(self, name: str, value: object) -> None:
        before = getattr(self, name, 0)
        super().__setattr__(name, value)
        if name in _REPORTED and isinstance(value, int) and isinstance(before, int):
            added = value - before
            if added > 0:
                if name == "requests":
                    count_requests(self._system, sent=added)
                else:
                    count_requests(self._system, throttled=added)
