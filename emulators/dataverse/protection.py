"""Service protection limits per user and the cost model that gives requests a duration.

Three facets, each per user (the token's ``oid``) over a sliding window read from the shared
clock: number of requests, combined execution time, concurrent requests. A request is admitted or
refused with the documented 429 before it runs; its execution time is booked when it finishes.
Refused requests are not counted (they did not execute).

The cost model makes a request take time: ``request_ms`` for each call plus a cost per record read
or written, with bulk messages cheaper per record than single writes. The modelled time is slept
by the caller (outside the data lock) and is what counts as execution time; with the model off the
measured handler time counts instead.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from emulators.clock import Clock
from emulators.dataverse.errors import DataverseError


@dataclass(frozen=True)
class ProtectionLimits:
    requests: int = 6000
    execution_ms: float = 1_200_000.0
    concurrent: int = 52
    window_seconds: float = 300.0


@dataclass(frozen=True)
class CostModel:
    request_ms: float = 0.0
    per_record_read_ms: float = 0.0
    per_record_write_ms: float = 0.0
    bulk_per_record_write_ms: float = 0.0

    @property
    def enabled(self) -> bool:
        return any(value > 0 for value in asdict(self).values())

    def cost_ms(self, *, requests: int, read: int, written: int, bulk_written: int) -> float:
        return (
            requests * self.request_ms + read * self.per_record_read_ms
            + written * self.per_record_write_ms + bulk_written * self.bulk_per_record_write_ms
        )


def parse_settings(current: Any, raw: Any, what: str) -> Any:
    """``current`` with the fields of ``raw`` replaced, checked; ``ValueError`` on bad input."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{what} must be a JSON object")
    known = set(asdict(current))
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown {what} settings: {sorted(unknown)}")
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{what}.{name} must be a non-negative number")
        if isinstance(getattr(current, name), int) and not isinstance(getattr(current, name), bool):
            if value != int(value):
                raise ValueError(f"{what}.{name} must be a whole number")
            value = int(value)
        changes[name] = value
    updated = replace(current, **changes)
    if isinstance(updated, ProtectionLimits) and (
        updated.window_seconds <= 0 or updated.requests < 1 or updated.concurrent < 1
    ):
        raise ValueError("requests, concurrent and window_seconds must be positive")
    return updated


@dataclass
class _UserUsage:
    requests: deque[float] = field(default_factory=deque)
    executions: deque[tuple[float, float]] = field(default_factory=deque)
    execution_total: float = 0.0
    in_flight: int = 0


class ServiceProtection:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.limits = ProtectionLimits()
        self._users: dict[str, _UserUsage] = {}

    def reset(self) -> None:
        with self._lock:
            self.limits = ProtectionLimits()
            self._users = {}

    def configure(self, limits: ProtectionLimits) -> None:
        with self._lock:
            self.limits = limits

    def admit(self, user: str) -> None:
        """Count the request in, or raise the 429 of the first limit it breaks."""
        with self._lock:
            limits = self.limits
            now = self._clock.monotonic()
            usage = self._users.setdefault(user, _UserUsage())
            self._expire(usage, now, limits.window_seconds)
            if usage.in_flight >= limits.concurrent:
                raise _throttled(
                    "0x80072326",
                    f"Number of concurrent requests exceeded the limit of {limits.concurrent}.",
                    1,
                )
            if len(usage.requests) >= limits.requests:
                wait = usage.requests[0] + limits.window_seconds - now
                raise _throttled(
                    "0x80072322",
                    f"Number of requests exceeded the limit of {limits.requests} over time window "
                    f"of {_number(limits.window_seconds)} seconds.",
                    wait,
                )
            if usage.execution_total >= limits.execution_ms:
                raise _throttled(
                    "0x80072321",
                    "Combined execution time of incoming requests exceeded limit of "
                    f"{_number(limits.execution_ms)} milliseconds over time window of "
                    f"{_number(limits.window_seconds)} seconds. Decrease number of concurrent "
                    "requests or reduce the duration of requests and try again later.",
                    self._execution_wait(usage, now, limits),
                )
            usage.requests.append(now)
            usage.in_flight += 1

    def release(self, user: str, execution_ms: float) -> None:
        with self._lock:
            usage = self._users.setdefault(user, _UserUsage())
            usage.in_flight = max(0, usage.in_flight - 1)
            usage.executions.append((self._clock.monotonic(), execution_ms))
            usage.execution_total += execution_ms

    def remaining(self, user: str) -> tuple[int, float]:
        """Requests and execution milliseconds left in the window (the x-ms-ratelimit headers)."""
        with self._lock:
            limits = self.limits
            usage = self._users.get(user)
            if usage is None:
                return limits.requests, limits.execution_ms
            self._expire(usage, self._clock.monotonic(), limits.window_seconds)
            return (
                max(0, limits.requests - len(usage.requests)),
                max(0.0, limits.execution_ms - usage.execution_total),
            )

    @staticmethod
    def _expire(usage: _UserUsage, now: float, window: float) -> None:
        horizon = now - window
        while usage.requests and usage.requests[0] <= horizon:
            usage.requests.popleft()
        while usage.executions and usage.executions[0][0] <= horizon:
            usage.execution_total -= usage.executions.popleft()[1]
        if not usage.executions:
            usage.execution_total = 0.0  # no float drift once the window is empty

    @staticmethod
    def _execution_wait(usage: _UserUsage, now: float, limits: ProtectionLimits) -> float:
        # Time until enough old executions leave the window to bring the total under the limit.
        total = usage.execution_total
        for finished, spent in usage.executions:
            total -= spent
            if total < limits.execution_ms:
                return finished + limits.window_seconds - now
        return limits.window_seconds


def _throttled(code: str, message: str, wait_seconds: float) -> DataverseError:
    retry_after = max(1, math.ceil(wait_seconds))
    return DataverseError(429, code, message, [("Retry-After", str(retry_after))])


def _number(value: float) -> str:
    """Numbers as the messages print them: ``1,200,000`` and ``300``."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,}"
