"""When a sync schedule runs (architecture §1.1 C5). Pure: standard library only.

- **Manual** (``interval_minutes`` 0): runs only when Sync Now is ticked.
- **Interval** N > 0: runs when ``next_sync`` is empty or has passed.
- **Sync Now** runs a manual or scheduled sync at the next tick. It bypasses the interval but
  *not* the window: an administrator who keeps a sync to night hours means it, so a Sync Now
  ticked at noon waits for the window to open (and stays ticked until then).
- **Window** ``[window_start, window_end)`` in minutes after midnight UTC. Start > end wraps past
  midnight (22:00-02:00). Both null: any time. Only start: until midnight; only end: from
  midnight. Start == end is refused as a bad row (it could mean "never" or "always").
- A schedule whose status is not ``None`` has a run in flight and is never due.
"""

from __future__ import annotations

import datetime as dt

from shared.domain.model import SyncSchedule, SyncStatus

MINUTES_PER_DAY = 24 * 60


def schedule_problem(schedule: SyncSchedule) -> str | None:
    """Why a row cannot be followed (shown in the log), or None when it is usable."""
    if schedule.interval_minutes < 0:
        return "negative interval"
    for name, value, highest in (("window start", schedule.window_start, MINUTES_PER_DAY - 1),
                                 ("window end", schedule.window_end, MINUTES_PER_DAY)):
        if value is not None and not 0 <= value <= highest:
            return f"{name} {value} is not between 0 and {highest} minutes"
    if schedule.window_start is not None and schedule.window_start == schedule.window_end:
        return "window start equals window end"
    return None


def _minute_of_day(moment: dt.datetime) -> int:
    utc = _utc(moment)
    return utc.hour * 60 + utc.minute


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("schedule times must be timezone-aware")
    return moment.astimezone(dt.UTC)


def in_window(schedule: SyncSchedule, now: dt.datetime) -> bool:
    """Whether ``now`` is inside the schedule's daily window."""
    start, end = schedule.window_start, schedule.window_end
    if start is None and end is None:
        return True
    start = 0 if start is None else start
    end = MINUTES_PER_DAY if end is None else end
    minute = _minute_of_day(now)
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps past midnight


def is_due(schedule: SyncSchedule, now: dt.datetime) -> bool:
    """Whether a new run starts at ``now`` (see the module docstring for the rules)."""
    now = _utc(now)
    if not schedule.active:
        return False
    if schedule.status is not SyncStatus.NONE or schedule_problem(schedule) is not None:
        return False
    if not in_window(schedule, now):
        return False
    if schedule.sync_now:
        return True
    if schedule.interval_minutes <= 0:
        return False
    return schedule.next_sync is None or _utc(now) >= _utc(schedule.next_sync)


def next_window_opening(schedule: SyncSchedule, moment: dt.datetime) -> dt.datetime:
    """``moment`` if it is inside the window, else the next time the window opens."""
    moment = _utc(moment)
    if in_window(schedule, moment):
        return moment
    start = schedule.window_start or 0
    opening = moment.replace(hour=start // 60, minute=start % 60, second=0, microsecond=0)
    return opening if opening > moment else opening + dt.timedelta(days=1)


def next_sync_after(schedule: SyncSchedule, started: dt.datetime) -> dt.datetime | None:
    """When the next run is due after one started at ``started``; None for a manual schedule."""
    if schedule.interval_minutes <= 0:
        return None
    return next_window_opening(
        schedule, _utc(started) + dt.timedelta(minutes=schedule.interval_minutes)
    )
