"""Schedule rows in CRM, and the one place that writes their state.

Every sync type's run moves its row through the same states, and only ``ScheduleKeeper`` writes
them:

- ``None`` → ``Added to Queue`` when a run starts (Sync Now cleared, Next Sync planned);
- → ``Synchronising In Progress`` when every batch is published;
- → ``None`` when the last batch is applied (Last Sync and Last Result written).

A run that publishes nothing goes from Added to Queue straight back to None.

Administrators edit these rows by hand, so a row the connector cannot follow (an unknown email
account, a duplicate, an impossible window) is skipped with a log line naming the row, and never
stops the other accounts' syncs.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from shared.domain.model import EmailAccount, ScheduleUpdate, SyncSchedule, SyncStatus, SyncType
from shared.domain.schedule import next_sync_after, schedule_problem
from shared.services.ports import CrmSettings, RunState
from shared.services.telemetry import Dimensions, telemetry

logger = logging.getLogger(__name__)

# Rows are created for these only: a row for a sync this version cannot run would sit at "None"
# for ever and mislead an administrator.
IMPLEMENTED_SYNC_TYPES = (SyncType.CONTACT_OPT_IN, SyncType.SUPPRESSION_LISTS,
                          SyncType.ENGAGEMENT)
# What a SuppressionLists run changes: Email Suppression rows, Do not bulk email, Notes.
# What an Engagement run changes: events stored for the first time.
_SUPPRESSION_CHANGES = ("rows_created", "rows_updated", "rows_removed", "dnbe_set",
                        "dnbe_cleared", "notes", "written")


def format_result(counters: Mapping[str, int], *, dry_run: bool = False) -> str:
    """The schedule's short last result, e.g. ``1,234 read, 456 changed, 0 failed``.

    ``items`` counts what was read; what was changed is every ``changed_<table>`` counter of an
    opt-in run, or the rows, flags and Notes a suppression run wrote.
    """
    read, changed, failed = read_changed_failed(counters)
    verb = "would change" if dry_run else "changed"
    return f"{read:,} read, {changed:,} {verb}, {failed:,} failed"


def read_changed_failed(counters: Mapping[str, int]) -> tuple[int, int, int]:
    """What a run's (or a batch's) counters read, changed and failed, as ``format_result``
    says them."""
    changed = sum(value for name, value in counters.items()
                  if name.startswith("changed_") or name in _SUPPRESSION_CHANGES)
    return counters.get("items", 0), changed, counters.get("failed", 0)


class ScheduleKeeper:
    """Creates, chooses and moves the schedule rows of every sync type."""

    def __init__(self, crm: CrmSettings) -> None:
        self._crm = crm

    def ensure(
        self, accounts: Iterable[EmailAccount], schedules: Sequence[SyncSchedule]
    ) -> list[SyncSchedule]:
        """``schedules`` plus a manual default row for every account × implemented sync type
        that has none."""
        present = {(schedule.email_account_id, schedule.sync_type) for schedule in schedules}
        rows = list(schedules)
        for account in accounts:
            for sync_type in IMPLEMENTED_SYNC_TYPES:
                if (account.row_id, sync_type) in present:
                    continue
                created = self._crm.create_schedule(account, sync_type)
                logger.info("created manual %s schedule %s for email account %s",
                            sync_type.label, created.row_id, account.row_id)
                rows.append(created)
        return rows

    def started(self, schedule: SyncSchedule, now: dt.datetime) -> SyncSchedule:
        """A run started: ``Added to Queue``, Sync Now cleared, the next sync planned."""
        next_sync = next_sync_after(schedule, now)
        self._crm.update_schedule(
            schedule.row_id,
            ScheduleUpdate(
                status=SyncStatus.ADDED_TO_QUEUE,
                sync_now=False if schedule.sync_now else None,
                next_sync=next_sync,
                # A manual schedule has no next sync: an old value would only mislead an admin.
                clear_next_sync=next_sync is None and schedule.next_sync is not None,
            ),
        )
        return replace(schedule, status=SyncStatus.ADDED_TO_QUEUE, sync_now=False,
                       next_sync=next_sync)

    def publishing_done(self, schedule: SyncSchedule) -> None:
        """Every batch of the run is published; the appliers are working on them."""
        self._crm.update_schedule(schedule.row_id, ScheduleUpdate(status=SyncStatus.IN_PROGRESS))

    def completed(
        self, email_account_id: str, sync_type: SyncType, run: RunState, now: dt.datetime,
        *, repeated: bool = False,
    ) -> None:
        """The run's last batch is applied: status ``None``, Last Sync and the run's result.

        Called by whichever side sees the run complete (the applier of the last batch, or the
        reader when a run published nothing to apply); writing it twice is harmless. A caller
        that knows it is writing a completed run again (``repeated``) keeps the run's duration
        from being measured twice.
        """
        if not repeated:
            # Before the writes: a failed write is redone by a repeated call, measured no more.
            finished = run.completed_at or now
            telemetry().run_completed(
                Dimensions(run_id=run.run_id, email_account_id=email_account_id,
                           sync_type=sync_type.label, dry_run=run.dry_run),
                duration_s=max((finished - run.started_at).total_seconds(), 0.0),
            )
        result = format_result(run.counters, dry_run=run.dry_run)
        for schedule in self._crm.sync_schedules():
            if schedule.email_account_id == email_account_id and schedule.sync_type == sync_type:
                self._crm.update_schedule(
                    schedule.row_id,
                    ScheduleUpdate(status=SyncStatus.NONE, last_sync=now, last_result=result),
                )
        logger.info("run %s complete: %s", run.run_id, result)


def usable_schedules(
    schedules: Iterable[SyncSchedule], accounts: Iterable[EmailAccount]
) -> dict[tuple[str, SyncType], SyncSchedule]:
    """One followable row per (email account id, sync type); the others are logged and skipped."""
    known = {account.row_id for account in accounts}
    chosen: dict[tuple[str, SyncType], SyncSchedule] = {}
    for schedule in sorted(schedules, key=lambda s: s.row_id):
        if not schedule.active:
            # An administrator's choice, not a fault: no warning every tick.
            logger.debug("schedule %s is deactivated", schedule.row_id)
            continue
        if schedule.email_account_id not in known:
            logger.warning("schedule %s ignored: email account %r is not configured or active",
                           schedule.row_id, schedule.email_account_id)
            continue
        problem = schedule_problem(schedule)
        if problem is not None:
            logger.warning("schedule %s ignored: %s", schedule.row_id, problem)
            continue
        slot = (schedule.email_account_id, schedule.sync_type)
        if slot in chosen:
            # Deterministic choice so every tick follows the same row.
            logger.warning("schedule %s ignored: %s of email account %s already has row %s",
                           schedule.row_id, schedule.sync_type.label,
                           schedule.email_account_id, chosen[slot].row_id)
            continue
        chosen[slot] = schedule
    return chosen
