"""Column values between the Web API's JSON and Python: dates, choices and optional text."""

from __future__ import annotations

import datetime as dt
from enum import IntEnum
from typing import Any, TypeVar

Choice = TypeVar("Choice", bound=IntEnum)


def read_datetime(value: Any) -> dt.datetime | None:
    """A date column as read (``2024-01-31T10:00:00Z``), or None when it is empty."""
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def write_datetime(value: dt.datetime) -> str:
    """A date for a write, in UTC to the second (Dataverse keeps no fractions)."""
    if value.tzinfo is None:
        # A naive date would be read as the machine's local time: refuse rather than guess.
        raise ValueError("dates written to Dataverse must carry a time zone")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_optional_datetime(value: dt.datetime | None) -> str | None:
    return None if value is None else write_datetime(value)


def read_text(value: Any) -> str | None:
    """A text column as read, trimmed; blank (empty or only whitespace) is None."""
    text = value.strip() if isinstance(value, str) else ""
    return text or None


def read_choice(kind: type[Choice], value: Any) -> Choice | None:
    """A choice column as ``kind``; a value ``kind`` lacks (an option an administrator added,
    or a value this version does not know) reads as not set."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return kind(value)
    except ValueError:
        return None
