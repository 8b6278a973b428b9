"""What ``status`` decides: the state of every account's syncs and of the queues, and what of
it needs a person's attention. The rules, each checked in ``attention_of``:

- **connectivity**: an account whose account-info call fails (wrong password, API user
  removed, a setting missing) or answers for another dotdigital account than CRM names;
- **stuck run**: a run still publishing or applying that started more than ``stuck`` ago;
- **stuck schedule**: a schedule row left at Added to Queue or In Progress with no run open
  and none finished within ``stuck`` (it will never be due again: the app starts a run only
  from None);
- **overdue**: an interval schedule whose Next Sync passed more than ``stuck`` ago without a
  run starting (the timer is not running, or the row cannot be followed);
- **ignored schedule**: a row the app cannot follow (an impossible window, say);
- **dead letters**: messages in a queue's dead letters (the broker's) or parked by the app in
  its ``-deadletter`` queue;
- **queues**: counts that cannot be read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ops.crm import AccountRow, ScheduleRow
from ops.history import RunRecord
from ops.humanize import duration, relative
from ops.syncs import KINDS, SyncKind
from shared.domain.model import SyncStatus
from shared.domain.schedule import schedule_problem
from shared.services.ports import RunStatus
from shared.services.sync.connectivity import AccountCheck


@dataclass(frozen=True)
class SyncHealth:
    kind: SyncKind
    schedule: ScheduleRow | None
    runs: list[RunRecord]  # of this account and sync, newest first, dry runs included
    watermark: dt.datetime | None

    @property
    def last_run(self) -> RunRecord | None:
        return self.runs[0] if self.runs else None

    @property
    def open_runs(self) -> list[RunRecord]:
        return [run for run in self.runs if run.state.status is not RunStatus.COMPLETED]


@dataclass(frozen=True)
class AccountHealth:
    row: AccountRow
    check: AccountCheck | None  # None: not checked (--no-connectivity)
    syncs: list[SyncHealth]


@dataclass(frozen=True)
class QueueHealth:
    queue: str
    waiting: int | None = None
    dead_lettered: int | None = None  # by the broker (its dead-letter sub-queue)
    parked: int | None = None  # moved aside by the app (``<queue>-deadletter``)
    error: str | None = None


@dataclass(frozen=True)
class Attention:
    kind: str
    subject: str
    message: str


@dataclass
class Health:
    checked_at: dt.datetime
    stuck: dt.timedelta
    accounts: list[AccountHealth]
    queues: list[QueueHealth]
    deactivated: list[AccountRow] = field(default_factory=list)  # not synced: shown, not judged
    attention: list[Attention] = field(default_factory=list)


def sync_health(
    account_id: str, schedules: Sequence[ScheduleRow], runs: Sequence[RunRecord],
    watermark: Callable[[SyncKind], dt.datetime | None],
) -> list[SyncHealth]:
    """Each sync type of one account: the schedule row the app follows (the first by row id,
    as ``usable_schedules`` chooses), its runs and its watermark."""
    found = []
    for kind in KINDS.values():
        rows = sorted((row for row in schedules if row.schedule.email_account_id == account_id
                       and row.schedule.sync_type == kind.sync_type),
                      key=lambda row: row.schedule.row_id)
        usable = [row for row in rows if schedule_problem(row.schedule) is None]
        chosen = usable or rows
        found.append(SyncHealth(
            kind=kind, schedule=chosen[0] if chosen else None,
            runs=[run for run in runs if run.account_id == account_id and run.kind is kind],
            watermark=watermark(kind),
        ))
    return found


def attention_of(health: Health) -> list[Attention]:
    now, stuck = health.checked_at, health.stuck
    found: list[Attention] = []
    for account in health.accounts:
        name = account.row.account.name or account.row.account.row_id
        check = account.check
        if check is not None and check.error is not None:
            found.append(Attention("connectivity", f"{name} ({account.row.account.row_id})",
                                   f"connectivity check failed: {check.error}"))
        for sync in account.syncs:
            found += _sync_attention(f"{name} · {sync.kind.label}", sync, now, stuck)
    for queue in health.queues:
        if queue.error is not None:
            found.append(Attention("queues", queue.queue, f"counts unavailable: {queue.error}"))
        elif queue.dead_lettered or queue.parked:
            found.append(Attention(
                "dead_letters", queue.queue,
                f"{queue.dead_lettered or 0} dead-lettered by the broker, {queue.parked or 0} "
                f"parked by the app: see `python -m ops dead-letters`"))
    return found


def _sync_attention(
    subject: str, sync: SyncHealth, now: dt.datetime, stuck: dt.timedelta
) -> list[Attention]:
    found = []
    for run in sync.open_runs:
        age = now - run.state.started_at
        if age > stuck:
            state = run.state
            found.append(Attention(
                "stuck_run", subject,
                f"run {run.run_id}{' (dry run)' if run.dry_run else ''} {state.status.value} "
                f"for {duration(age.total_seconds())}, {state.batches_applied} of "
                f"{state.batches_published} batches applied: see `python -m ops runs show "
                f"{run.run_id}`"))
    row = sync.schedule
    if row is None:
        return found
    schedule = row.schedule
    problem = schedule_problem(schedule)
    if problem is not None:
        found.append(Attention("schedule_ignored", subject,
                               f"the app ignores schedule '{row.name}': {problem}"))
    last = sync.last_run
    if schedule.status is not SyncStatus.NONE and not sync.open_runs:
        finished = None if last is None else last.state.completed_at
        if finished is None or now - finished > stuck:
            ended = ("no run is recorded" if last is None else
                     f"its last run {last.run_id} completed {relative(finished, now)}")
            found.append(Attention(
                "stuck_schedule", subject,
                f"schedule '{row.name}' is at {status_label(schedule.status)} but no run is "
                f"open ({ended}); the app starts no run until it is None again"))
    overdue = (schedule.interval_minutes > 0 and schedule.status is SyncStatus.NONE
               and problem is None and schedule.next_sync is not None
               and now - schedule.next_sync > stuck and not sync.open_runs)
    if overdue:
        found.append(Attention("overdue", subject,
                               f"next sync was due {relative(schedule.next_sync, now)} and has "
                               "not started: is the sync timer running?"))
    return found


def status_label(status: SyncStatus) -> str:
    return {SyncStatus.NONE: "None", SyncStatus.ADDED_TO_QUEUE: "Added to Queue",
            SyncStatus.IN_PROGRESS: "Synchronising In Progress"}[status]
