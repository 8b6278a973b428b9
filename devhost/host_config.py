"""The parts of ``host.json`` the dev host honours."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigError

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")
DEFAULT_MAX_CONCURRENT_CALLS = 16
DEFAULT_MAX_CONCURRENT_SESSIONS = 8  # the Service Bus extension's default
DEFAULT_FUNCTION_TIMEOUT_S = 30 * 60.0  # Flex Consumption and Premium default
DEFAULT_LOCK_RENEWAL_S = 5 * 60.0


@dataclass(frozen=True, slots=True)
class HostConfig:
    route_prefix: str = "api"
    max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS
    max_concurrent_sessions: int = DEFAULT_MAX_CONCURRENT_SESSIONS  # session-enabled triggers
    max_message_batch_size: int = 1000
    function_timeout_s: float | None = DEFAULT_FUNCTION_TIMEOUT_S  # None = unbounded ("-1")
    max_auto_lock_renewal_s: float = DEFAULT_LOCK_RENEWAL_S
    auto_complete_messages: bool = True
    max_delivery_count: int | None = None  # not a host.json key in Azure; a dev host extra


def load_host_config(path: str | Path | None) -> HostConfig:
    """Read ``host.json``; a missing file gives the defaults, a bad one a ``ConfigError``."""
    if path is None or not Path(path).exists():
        return HostConfig()
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    return parse_host_config(raw, source=str(path))


def parse_host_config(raw: object, *, source: str = "host.json") -> HostConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object")
    extensions = _section(raw, "extensions", source)
    http = _section(extensions, "http", source)
    bus = _section(extensions, "serviceBus", source)
    # Extension 4.x kept the concurrency knobs under messageHandlerOptions; 5.x moved them up.
    legacy = _section(bus, "messageHandlerOptions", source)
    legacy_sessions = _section(bus, "sessionHandlerOptions", source)
    concurrency = bus.get("maxConcurrentCalls", legacy.get("maxConcurrentCalls"))
    sessions = bus.get("maxConcurrentSessions", legacy_sessions.get("maxConcurrentSessions"))
    renewal = bus.get("maxAutoLockRenewalDuration", legacy.get("maxAutoRenewDuration"))
    auto_complete = bus.get("autoCompleteMessages", legacy.get("autoComplete", True))
    timeout = raw.get("functionTimeout")
    return HostConfig(
        route_prefix=str(http.get("routePrefix", "api")).strip("/"),
        max_concurrent_calls=_positive_int(concurrency, "maxConcurrentCalls", source)
        if concurrency is not None else DEFAULT_MAX_CONCURRENT_CALLS,
        max_concurrent_sessions=_positive_int(sessions, "maxConcurrentSessions", source)
        if sessions is not None else DEFAULT_MAX_CONCURRENT_SESSIONS,
        max_message_batch_size=_positive_int(bus.get("maxMessageBatchSize", 1000),
                                             "maxMessageBatchSize", source),
        function_timeout_s=DEFAULT_FUNCTION_TIMEOUT_S if timeout is None
        else parse_timespan(timeout, "functionTimeout", source),
        max_auto_lock_renewal_s=DEFAULT_LOCK_RENEWAL_S if renewal is None
        else parse_timespan(renewal, "maxAutoLockRenewalDuration", source) or 0.0,
        auto_complete_messages=bool(auto_complete),
        max_delivery_count=None if bus.get("maxDeliveryCount") is None
        else _positive_int(bus.get("maxDeliveryCount"), "maxDeliveryCount", source),
    )


def parse_timespan(value: object, name: str, source: str = "host.json") -> float | None:
    """``[d.]hh:mm:ss[.fff]`` in seconds; ``-1`` means unbounded (None)."""
    text = str(value).strip()
    if text == "-1":
        return None
    match = _TIMESPAN.match(text)
    if not match:
        raise ConfigError(f"{source}: {name} {value!r} is not a [d.]hh:mm:ss timespan")
    days, hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 59:
        raise ConfigError(f"{source}: {name} {value!r} is out of range (use d.hh:mm:ss)")
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + float(f"0.{fraction}" if fraction else 0)


def _section(parent: Mapping[str, object], key: str, source: str) -> Mapping[str, object]:
    value = parent.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {key} must be an object")
    return value


def _positive_int(value: object, name: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{source}: {name} must be a positive integer, got {value!r}")
    return value
