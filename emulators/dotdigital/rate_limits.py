"""dotdigital's two call-rate schemes: the flat hourly cap per account and per-minute tiers.

Flat: calls per rolling hour per account (2000 by default), counted in one-second buckets so the
count costs O(1) per call however many calls there are. Over the cap the v2 body carries
``ERROR_APIUSAGE_EXCEEDED`` (status 400 by default, as the reference advises).

Tiered: calls per API user in fixed clock-minute windows; over the limit → 429 with
``X-RateLimit-Limit/Remaining/Reset/Scope`` and ``Retry-After``. ``X-RateLimit-Reset`` is the
number of whole seconds until the window resets (the official PHP SDK reads it that way).
Every response gets the ``X-RateLimit-*`` headers while the tier limit is on.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any

from emulators.clock import Clock
from emulators.dotdigital.contracts import v2_error
from emulators.http import Response

HOUR = 3600
MINUTE = 60
APIUSAGE_EXCEEDED = (
    "Your account has generated excess API activity and is being temporarily capped. "
    "Please contact support. ERROR_APIUSAGE_EXCEEDED"
)
TOO_MANY_REQUESTS = "Too many requests. ERROR_RATE_LIMIT_EXCEEDED"


@dataclass(frozen=True)
class RateLimitSettings:
    hourly: int = 2000  # 0 turns the flat limit off
    hourly_status: int = 400
    per_minute: int = 0  # 0 turns the tier limit off
    scope: str = "lowCallRate"

    def updated(self, payload: Any) -> RateLimitSettings:
        """A copy with ``payload`` applied; raises ``ValueError`` and changes nothing if bad."""
        if not isinstance(payload, dict):
            raise ValueError("rate_limits must be an object")
        unknown = set(payload) - set(asdict(self))
        if unknown:
            raise ValueError(f"unknown rate_limits keys: {sorted(unknown)}")
        for name in ("hourly", "per_minute", "hourly_status"):
            if name in payload:
                value = payload[name]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"rate_limits.{name} must be a non-negative integer")
        if "hourly_status" in payload and not 400 <= payload["hourly_status"] <= 599:
            raise ValueError("rate_limits.hourly_status must be a 4xx or 5xx status")
        if "scope" in payload and (not isinstance(payload["scope"], str) or not payload["scope"]):
            raise ValueError("rate_limits.scope must be a non-empty string")
        return replace(self, **payload)


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.settings = RateLimitSettings()
        self._hourly: dict[int, tuple[deque[list[int]], list[int]]] = {}
        self._minute: dict[str, list[int]] = {}

    def reset(self) -> None:
        self.settings = RateLimitSettings()
        self._hourly.clear()
        self._minute.clear()

    def calls_in_last_hour(self, account_id: int) -> int:
        _, total = self._hour_of(account_id)
        return total[0]

    def remaining_this_hour(self, account_id: int) -> int:
        limit = self.settings.hourly or RateLimitSettings.hourly
        return max(0, limit - self.calls_in_last_hour(account_id))

    def admit(
        self, account_id: int, username: str, counts_hourly: bool = True
    ) -> tuple[Response | None, list[tuple[str, str]]]:
        """Count one call. Returns (refusal or None, headers for whatever response goes out)."""
        headers: list[tuple[str, str]] = []
        if self.settings.per_minute:
            refusal, headers = self._admit_minute(username)
            if refusal is not None:
                return refusal, headers
        if counts_hourly:
            buckets, total = self._hour_of(account_id)
            if self.settings.hourly and total[0] >= self.settings.hourly:
                return v2_error(self.settings.hourly_status, APIUSAGE_EXCEEDED), headers
            second = int(self.clock.time())
            if buckets and buckets[-1][0] == second:
                buckets[-1][1] += 1
            else:
                buckets.append([second, 1])
            total[0] += 1
        return None, headers

    def _admit_minute(self, username: str) -> tuple[Response | None, list[tuple[str, str]]]:
        now = self.clock.time()
        window = int(now // MINUTE) * MINUTE
        state = self._minute.setdefault(username, [window, 0])
        if state[0] != window:
            state[0], state[1] = window, 0
        limit = self.settings.per_minute
        reset_in = max(1, math.ceil(window + MINUTE - now))
        if state[1] >= limit:
            headers = self.headers(limit, 0, reset_in)
            return self.too_many(headers, reset_in), headers
        state[1] += 1
        return None, self.headers(limit, limit - state[1], reset_in)

    def headers(self, limit: int, remaining: int, reset_in: int) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset_in)), ("X-RateLimit-Scope", self.settings.scope),
        ]

    @staticmethod
    def too_many(headers: list[tuple[str, str]], retry_after: int) -> Response:
        return Response.json(
            429, {"message": TOO_MANY_REQUESTS}, [*headers, ("Retry-After", str(retry_after))]
        )

    def _hour_of(self, account_id: int) -> tuple[deque[list[int]], list[int]]:
        buckets, total = self._hourly.setdefault(account_id, (deque(), [0]))
        horizon = int(self.clock.time()) - HOUR
        while buckets and buckets[0][0] <= horizon:
            total[0] -= buckets.popleft()[1]
        return buckets, total

    def describe(self) -> dict[str, Any]:
        return asdict(self.settings)
