"""NCRONTAB schedules, as the Functions timer trigger reads them (UTC).

Six fields ``{second} {minute} {hour} {day} {month} {day-of-week}``, or five without seconds.
Each field takes ``*``, numbers, month/day names, lists ``a,b``, ranges ``a-b`` and steps ``*/n``,
``a-b/n``, ``a/n``. As in NCrontab (and unlike Vixie cron), a restricted day *and* a restricted
day-of-week must both match. A ``hh:mm:ss`` TimeSpan (App Service plans) means "every interval".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.errors import ConfigError

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")
# Long enough for any valid schedule (Feb 29 on a given weekday recurs within 28 years).
_SEARCH_LIMIT = timedelta(days=366 * 29)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, tuple(_MONTHS), 1),
    _Field("day-of-week", 0, 7, tuple(_DAYS), 0),  # 7 is Sunday too, as in most crons
)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed schedule; ``next_after`` gives the first occurrence strictly after a moment."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    def matches(self, moment: datetime) -> bool:
        return (
            moment.second in self.seconds
            and moment.minute in self.minutes
            and moment.hour in self.hours
            and self._day_matches(moment)
        )

    def _day_matches(self, moment: datetime) -> bool:
        return (
            moment.month in self.months
            and moment.day in self.days
            and (moment.isoweekday() % 7) in self.weekdays
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence after ``moment`` (UTC); raises ``ConfigError`` if there is none."""
        start = _as_utc(moment).replace(microsecond=0) + timedelta(seconds=1)
        candidate = start
        while candidate - start <= _SEARCH_LIMIT:
            if not self._day_matches(candidate):
                candidate = (candidate + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif candidate.hour not in self.hours:
                candidate = (candidate + timedelta(hours=1)).replace(minute=0, second=0)
            elif candidate.minute not in self.minutes:
                candidate = (candidate + timedelta(minutes=1)).replace(second=0)
            elif candidate.second not in self.seconds:
                candidate += timedelta(seconds=1)
            else:
                return candidate
        raise ConfigError(f"NCRONTAB schedule {self.expression!r} never fires")


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """A TimeSpan schedule: every ``interval`` counted from the previous occurrence."""

    expression: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return _as_utc(moment) + self.interval


Schedule = CronSchedule | IntervalSchedule


def parse_schedule(expression: str) -> Schedule:
    """Parse a timer schedule; raises ``ConfigError`` naming the schedule and the bad field."""
    if not isinstance(expression, str) or not expression.strip():
        raise ConfigError("empty timer schedule")
    text = expression.strip()
    span = _TIMESPAN.match(text)
    if span:
        days, hours, minutes, seconds = (int(part or 0) for part in span.groups())
        interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if hours > 23 or minutes > 59 or seconds > 59 or interval <= timedelta(0):
            raise ConfigError(f"invalid TimeSpan schedule {expression!r}")
        return IntervalSchedule(text, interval)
    parts = text.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise ConfigError(
            f"invalid NCRONTAB schedule {expression!r}: expected 6 fields "
            "'{second} {minute} {hour} {day} {month} {day-of-week}' (or 5 without seconds)"
        )
    values = [_parse_field(spec, part, expression)
              for spec, part in zip(_FIELDS, parts, strict=True)]
    schedule = CronSchedule(text, *values)
    schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # refuse schedules that never fire
    return schedule


def _parse_field(spec: _Field, text: str, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        try:
            values.update(value % 7 if spec is _FIELDS[5] else value
                          for value in _parse_item(spec, item))
        except ValueError as error:
            raise ConfigError(
                f"invalid NCRONTAB schedule {expression!r}: {spec.name} field {text!r}: {error}"
            ) from None
    return frozenset(values)


def _parse_item(spec: _Field, item: str) -> range:
    range_part, _, step_part = item.partition("/")
    step = 1
    if step_part:
        step = int(step_part) if step_part.isdigit() else 0
        if step < 1:
            raise ValueError(f"step {step_part!r} must be a positive number")
    if range_part == "*":
        low, high = spec.low, spec.high
    elif "-" in range_part:
        first, _, last = range_part.partition("-")
        low, high = _value(spec, first), _value(spec, last)
        if low > high:
            raise ValueError(f"range {range_part!r} runs backwards")
    else:
        low = _value(spec, range_part)
        high = spec.high if step_part else low  # NCrontab reads "a/n" as "a-max/n"
    return range(low, high + 1, step)


def _value(spec: _Field, text: str) -> int:
    upper = text.strip().upper()
    if upper in spec.names:
        return spec.names.index(upper) + spec.name_base
    if not upper.isdigit():
        raise ValueError(f"{text!r} is not a number" + (" or a name" if spec.names else ""))
    value = int(upper)
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{value} is outside {spec.low}-{spec.high}")
    return value


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timer schedules work on timezone-aware (UTC) datetimes")
    return moment.astimezone(UTC)
