"""The one place that decides error classes and retries for outbound HTTP.

``send`` performs a request through a ``requests.Session``, turns the result into either a
response or a typed error (``classify``), and retries what is safe to repeat under one
``RetryPolicy``: capped exponential backoff with jitter that honours ``Retry-After`` and
dotdigital's ``X-RateLimit-Reset``. When the server asks for a longer wait than a function may
hold, it raises ``WaitTooLong`` instead of sleeping, so the work goes back to the queue.
``ServiceCaller`` adds a ``ThrottleGate``: once the service throttles one request, the process's
other new requests to it wait out the same ``Retry-After`` instead of being refused in turn, then
ramp up one at a time until the service admits one again.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from shared.adapters.http.throttle_gate import ThrottleGate
from shared.config import HttpSettings
from shared.errors import (
    AuthFailed,
    BadRequest,
    IntegrationError,
    NotFound,
    PreconditionFailed,
    RateLimited,
    System,
    TransientError,
    WaitTooLong,
)

logger = logging.getLogger(__name__)

# Headers in which each service returns its request id (first present wins).
REQUEST_ID_HEADERS = (
    "x-ms-service-request-id",
    "REQ_ID",
    "x-ms-request-id",
    "request-id",
    "x-request-id",
)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_wait_s: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based), with equal jitter in [d/2, d]."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return float(ceiling / 2 + (ceiling / 2) * self.random())

    def delay_for(self, error: IntegrationError, attempt: int) -> float:
        if isinstance(error, RateLimited):
            # A little jitter above the server's figure keeps parallel workers from returning
            # in lockstep and being throttled again together.
            return error.retry_after_s + min(1.0, error.retry_after_s * 0.1) * self.random()
        return self.backoff(attempt)


@dataclass
class CallStats:
    """Counts of one client's calls, for run reports and metrics (thread-safe enough for ints)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0


def _request_id(response: requests.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``X-RateLimit-Reset``."""
    raw = headers.get("Retry-After")
    if raw:
        raw = raw.strip()
        if raw.isdigit():
            return float(raw)
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            return max(0.0, parsed.timestamp() - now)
    reset = headers.get("X-RateLimit-Reset")
    if reset and reset.strip().isdigit():
        value = float(reset)
        # dotdigital documents Reset ambiguously: seconds until reset, or an epoch timestamp.
        return max(0.0, value - now) if value > 1_000_000_000 else value
    return None


def _error_detail(response: requests.Response) -> tuple[str, str | None]:
    """(message, code) from the service's error envelope; never the whole body."""
    try:
        body: Any = response.json()
    except ValueError:
        text = (response.text or "").strip()
        return (text[:200] or response.reason or "no detail"), None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Dataverse / OData
            return str(error.get("message", ""))[:500], str(error.get("code") or "") or None
        if "error_description" in body:  # Entra ID
            return str(body["error_description"])[:500], str(body.get("error") or "") or None
        if "message" in body:  # dotdigital v2: "... ERROR_CODE" or "Error: ERROR_CODE"
            message = str(body["message"])
            code = message.rsplit(" ", 1)[-1] if "ERROR_" in message else None
            return message[:500], code
        if "errorCode" in body:  # dotdigital v3
            return str(body.get("description", ""))[:500], str(body["errorCode"])
    return (response.reason or "no detail"), None


def classify(
    system: System, response: requests.Response, operation: str, *, now: float | None = None
) -> IntegrationError | None:
    """The typed error for a response, or None when it succeeded."""
    status = response.status_code
    if status < 400:
        return None
    detail, code = _error_detail(response)
    common: dict[str, Any] = {
        "status": status,
        "request_id": _request_id(response),
        "operation": operation,
        "code": code,
    }
    if status == 429 or (system is System.DOTDIGITAL and code == "ERROR_APIUSAGE_EXCEEDED"):
        wait = parse_retry_after(response.headers, time.time() if now is None else now)
        return RateLimited(
            system, detail, retry_after_s=wait if wait is not None else 60.0, **common
        )
    if status in (401, 403):
        return AuthFailed(system, detail, **common)
    if status == 404:
        return NotFound(system, detail, **common)
    if status in (409, 412):
        return PreconditionFailed(system, detail, **common)
    if status == 408 or status >= 500:
        return TransientError(system, detail, **common)
    return BadRequest(system, detail, **common)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    system: System,
    operation: str,
    policy: RetryPolicy,
    timeout_s: float,
    verify: str | bool,
    idempotent: bool | None = None,
    on_retry: Callable[[IntegrationError, int, float], None] | None = None,
    stats: CallStats | None = None,
    pass_statuses: frozenset[int] = frozenset(),
    **kwargs: Any,
) -> requests.Response:
    """Send with retries; returns a successful response or raises a typed ``IntegrationError``.

    ``idempotent`` defaults to the method's nature. A non-idempotent request is retried only when
    the server certainly did not process it (429, or a connection that was never established).
    ``pass_statuses`` are returned to the caller instead of raised (a ``$batch`` 400 carries the
    failing operation's own error in its body).
    """
    safe_to_repeat = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
    attempt = 0
    while True:
        attempt += 1
        error: IntegrationError
        if stats is not None:
            stats.requests += 1
        try:
            response = session.request(method, url, timeout=timeout_s, verify=verify, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            error = _unreached(system, operation, exc)
        except requests.exceptions.Timeout as exc:
            error = _broken(
                system, operation, f"timed out after {timeout_s:g}s", exc, safe_to_repeat
            )
        except requests.exceptions.SSLError as exc:
            raise AuthFailed(system, f"TLS failure: {exc}", operation=operation) from exc
        except requests.exceptions.ConnectionError as exc:
            error = _broken(
                system, operation, f"connection failed: {type(exc).__name__}", exc, safe_to_repeat
            )
        else:
            classified = classify(system, response, operation)
            if classified is None or response.status_code in pass_statuses:
                return response
            error = classified
            if isinstance(error, RateLimited):
                error.retryable = True  # the request was refused, not processed
                if stats is not None:
                    stats.throttled += 1
            elif not safe_to_repeat:
                error.retryable = False
        if not error.retryable or attempt >= policy.max_attempts:
            raise error
        delay = policy.delay_for(error, attempt)
        if isinstance(error, RateLimited) and error.retry_after_s > policy.max_wait_s:
            raise WaitTooLong(
                system,
                f"server asks to wait {error.retry_after_s:g}s",
                retry_after_s=error.retry_after_s,
                status=error.status,
                request_id=error.request_id,
                operation=operation,
                code=error.code,
            ) from error
        logger.info(
            "retrying %s %s after %s (attempt %d, waiting %.2fs)",
            system.value,
            operation,
            type(error).__name__,
            attempt,
            delay,
        )
        if stats is not None:
            stats.retries += 1
        if on_retry is not None:
            on_retry(error, attempt, delay)
        policy.sleep(delay)


def _unreached(system: System, operation: str, exc: Exception) -> TransientError:
    return TransientError(system, f"could not connect: {type(exc).__name__}", operation=operation)


def _broken(
    system: System, operation: str, detail: str, exc: Exception, safe_to_repeat: bool
) -> TransientError:
    error = TransientError(system, detail, operation=operation)
    # The server may have processed a request whose connection broke afterwards.
    error.retryable = safe_to_repeat or _never_sent(exc)
    return error


def _never_sent(exc: Exception) -> bool:
    text = repr(exc)
    return "NewConnectionError" in text or "Failed to establish" in text


class ServiceCaller:
    """One service's transport: its session, retry policy, timeout, TLS trust and counters."""

    def __init__(
        self,
        system: System,
        http: HttpSettings,
        *,
        session: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        stats: CallStats | None = None,
        gate: ThrottleGate | None = None,
    ) -> None:
        self.system = system
        self.http = http
        self.session = session or requests.Session()
        self.policy = policy or RetryPolicy(
            max_attempts=http.max_attempts, max_wait_s=http.max_wait_s
        )
        self.stats = stats or CallStats()
        self.gate = gate or ThrottleGate()

    def send(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        idempotent: bool | None = None,
        pass_statuses: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> requests.Response:
        """``send`` with this service's settings; see there for what is retried."""
        sent_at = self.gate.wait()

        def on_retry(error: IntegrationError, attempt: int, delay_s: float) -> None:
            nonlocal sent_at
            if isinstance(error, RateLimited):
                # What the service asked for, without the throttled request's own jitter.
                self.gate.close_for(min(delay_s, error.retry_after_s or delay_s))
            sent_at = self.gate.now() + delay_s

        response = send(
            self.session,
            method,
            url,
            system=self.system,
            operation=operation,
            policy=self.policy,
            timeout_s=self.http.timeout_s,
            verify=self.http.verify,
            idempotent=idempotent,
            stats=self.stats,
            pass_statuses=pass_statuses,
            on_retry=on_retry,
            **kwargs,
        )
        self.gate.passed(sent_at)
        return response
