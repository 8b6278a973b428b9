"""Times as a person on call reads them: ages and durations in the largest two units."""

from __future__ import annotations

import datetime as dt

from shared.services.ports import RunState


def duration(seconds: float) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 04h``."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def seconds_taken(run: RunState, now: dt.datetime) -> float:
    """How long a run took, or has taken so far, in seconds."""
    return ((run.completed_at or now) - run.started_at).total_seconds()


def took(run: RunState, now: dt.datetime) -> str:
    """How long a run took, or has taken so far."""
    return duration(seconds_taken(run, now)) + ("" if run.completed_at else " so far")


def relative(moment: dt.datetime | None, now: dt.datetime) -> str | None:
    """``5m ago`` or ``in 3h 10m``; None when there is no time."""
    if moment is None:
        return None
    seconds = (now - moment).total_seconds()
    if seconds >= 0:
        return f"{duration(seconds)} ago"
    return f"in {duration(-seconds)}"


def utc_text(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def window(start: int | None, end: int | None) -> str:
    """A schedule's daily window, minutes after midnight UTC, as ``22:00-02:00``."""
    if start is None and end is None:
        return "any time"

    def clock(minutes: int | None, default: str) -> str:
        return default if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"

    return f"{clock(start, '00:00')}-{clock(end, '24:00')} UTC"
