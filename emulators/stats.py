"""Request statistics of one emulator: what ``GET /_emulator/stats`` reports."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self._requests = 0
            self._by_route: Counter[str] = Counter()
            self._by_status: Counter[int] = Counter()
            self._throttled = 0
            self._faults = 0
            self._bytes_in = 0
            self._bytes_out = 0
            self._busy_seconds = 0.0

    def record(
        self,
        *,
        route: str,
        status: int,
        bytes_in: int,
        bytes_out: int,
        throttled: bool,
        fault: bool,
        seconds: float,
    ) -> None:
        with self._lock:
            self._requests += 1
            self._by_route[route] += 1
            self._by_status[status] += 1
            self._throttled += int(throttled)
            self._faults += int(fault)
            self._bytes_in += bytes_in
            self._bytes_out += bytes_out
            self._busy_seconds += seconds

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "by_route": dict(self._by_route),
                "by_status": {str(k): v for k, v in self._by_status.items()},
                "throttled": self._throttled,
                "faults_injected": self._faults,
                "bytes_in": self._bytes_in,
                "bytes_out": self._bytes_out,
                "busy_seconds": round(self._busy_seconds, 6),
            }
