"""Deterministic timestamps: everything is placed relative to a fixed ``as_of`` moment."""

from __future__ import annotations

import datetime as dt
import random

DEFAULT_AS_OF = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    """UTC with milliseconds and ``Z``, as dotdigital writes dates."""
    # isoformat is several times faster than strftime, which matters at 200,000 contacts.
    text = moment.isoformat(timespec="milliseconds")
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def days_before(rng: random.Random, as_of: dt.datetime, low: float, high: float) -> dt.datetime:
    return as_of - dt.timedelta(days=rng.uniform(low, high))


def between(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    span = max(0.0, (end - start).total_seconds())
    return start + dt.timedelta(seconds=rng.uniform(0, span))


def dataverse_time(moment: dt.datetime) -> str:
    """UTC to the second with ``Z``, as the Dataverse Web API writes date-times."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
