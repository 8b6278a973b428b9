"""Fault injection rules: ``POST /_emulator/faults``.

Body::

    {"seed": 7, "rules": [
        {"method": "GET", "path": "/api/data/v9.2/contacts*", "status": 429, "retry_after": 2,
         "probability": 0.1},
        {"path": "*", "reset": true, "count": 3},
        {"method": "POST", "path": "/r1/v2/*", "delay_ms": 1500, "count": 1}
    ]}

``path`` is a shell-style pattern over the raw path (no query string); ``method`` defaults to
any. A rule fires with ``probability`` (default 1) until it has fired ``count`` times (default
unlimited); the first matching rule that fires wins. ``delay_ms`` delays the request (and then
serves it normally unless ``status`` or ``reset`` is set too). The random source is seeded, so a
given seed and request sequence inject the same faults every time.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class FaultRule:
    path: str = "*"
    method: str = "*"
    status: int | None = None
    retry_after: float | None = None
    delay_ms: int = 0
    reset: bool = False
    probability: float = 1.0
    count: int | None = None
    fired: int = 0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> FaultRule:
        known = {
            "path",
            "method",
            "status",
            "retry_after",
            "delay_ms",
            "reset",
            "probability",
            "count",
        }
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        rule = cls(
            path=str(raw.get("path", "*")),
            method=str(raw.get("method", "*")).upper(),
            status=int(raw["status"]) if raw.get("status") is not None else None,
            retry_after=float(raw["retry_after"]) if raw.get("retry_after") is not None else None,
            delay_ms=int(raw.get("delay_ms", 0)),
            reset=bool(raw.get("reset", False)),
            probability=float(raw.get("probability", 1.0)),
            count=int(raw["count"]) if raw.get("count") is not None else None,
        )
        if not 0.0 <= rule.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if rule.status is None and not rule.reset and not rule.delay_ms:
            raise ValueError("a fault rule needs status, reset or delay_ms")
        if rule.status is not None and not 100 <= rule.status <= 599:
            raise ValueError("status must be an HTTP status code")
        return rule

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        return (self.method in ("*", method.upper())) and fnmatch.fnmatchcase(path, self.path)

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay_ms": self.delay_ms,
            "reset": self.reset,
            "probability": self.probability,
            "count": self.count,
            "fired": self.fired,
        }


@dataclass(frozen=True)
class Fault:
    status: int | None
    retry_after: float | None
    delay_seconds: float
    reset_connection: bool


class FaultInjector:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._random = random.Random(seed)
        self._rules: list[FaultRule] = []

    def configure(self, payload: dict[str, Any]) -> None:
        """Replace the rules (and optionally the seed) atomically; bad input changes nothing."""
        if not isinstance(payload, dict):
            raise ValueError("faults body must be a JSON object")
        raw_rules = payload.get("rules", [])
        if not isinstance(raw_rules, list):
            raise ValueError("rules must be a list")
        rules = [FaultRule.parse(raw) for raw in raw_rules]
        with self._lock:
            if "seed" in payload:
                self._seed = int(payload["seed"])
            self._random = random.Random(self._seed)
            self._rules = rules

    def clear(self) -> None:
        with self._lock:
            self._rules = []
            self._random = random.Random(self._seed)

    def match(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return Fault(
                    status=rule.status,
                    retry_after=rule.retry_after,
                    delay_seconds=rule.delay_ms / 1000.0,
                    reset_connection=rule.reset,
                )
        return None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"seed": self._seed, "rules": [rule.describe() for rule in self._rules]}
