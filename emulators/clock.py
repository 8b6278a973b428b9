"""A clock shared by the emulators of one cluster, so tests can move time forward.

Token expiry, throttling windows and "modified since" dates all read this clock. Moving it is an
admin action (``POST /_emulator/clock {"advance_seconds": 3600}`` or ``{"offset_seconds": 0}``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        """Seconds since the epoch, offset by what tests asked for."""
        return time.time() + self._offset

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), tz=dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic() + self._offset

    def configure(self, payload: dict[str, Any]) -> None:
        with self._lock:
            if "offset_seconds" in payload:
                self._offset = float(payload["offset_seconds"])
            if "advance_seconds" in payload:
                advance = float(payload["advance_seconds"])
                if advance < 0:
                    raise ValueError("advance_seconds must not be negative")
                self._offset += advance

    def describe(self) -> dict[str, Any]:
        return {"offset_seconds": self._offset, "now": self.now().isoformat()}
