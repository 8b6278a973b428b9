"""Schedule rows in CRM: make sure they exist, pick the usable ones, write run status.

Administrators edit these rows by hand, so a row the connector cannot follow (an unknown email
account, a duplicate, an impossible window) is skipped with a log line naming the row, and
never stops the other accounts' syncs.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence

from shared.domain.model import EmailAccount, ScheduleUpdate, SyncSchedule, SyncStatus, SyncType
from shared.domain.schedule import next_sync_after, schedule_problem
from shared.services.ports import CrmSettings

logger = logging.getLogger(__name__)


def ensure_schedules(
    crm: CrmSettings, accounts: Iterable[EmailAccount], schedules: Sequence[SyncSchedule]
) -> list[SyncSchedule]:
    """``schedules`` plus a manual default row for every account × sync type that has none."""
    present = {(schedule.email_account_id, schedule.sync_type) for schedule in schedules}
    rows = list(schedules)
    for account in accounts:
        for sync_type in SyncType:
            if (account.row_id, sync_type) in present:
                continue
            created = crm.create_schedule(account.row_id, sync_type)
            logger.info("created manual %s schedule %s for email account %s",
                        sync_type.label, created.row_id, account.row_id)
            rows.append(created)
    return rows


def usable_schedules(
    schedules: Iterable[SyncSchedule], accounts: Iterable[EmailAccount]
) -> dict[tuple[str, SyncType], SyncSchedule]:
    """One followable row per (email account, sync type); the others are logged and skipped."""
    known = {account.row_id for account in accounts}
    chosen: dict[tuple[str, SyncType], SyncSchedule] = {}
    for schedule in sorted(schedules, key=lambda s: s.row_id):
        if schedule.email_account_id not in known:
            logger.warning("schedule %s ignored: email account %r is not configured",
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


def mark_added_to_queue(crm: CrmSettings, schedule: SyncSchedule, now: dt.datetime) -> None:
    """A run started: status ``Added to Queue``, Sync Now cleared, the next sync planned."""
    next_sync = next_sync_after(schedule, now)
    crm.update_schedule(
        schedule.row_id,
        ScheduleUpdate(
            status=SyncStatus.ADDED_TO_QUEUE,
            sync_now=False if schedule.sync_now else None,
            next_sync=next_sync,
            # A manual schedule has no next sync: an old value would only mislead an admin.
            clear_next_sync=next_sync is None and schedule.next_sync is not None,
        ),
    )


def mark_in_progress(crm: CrmSettings, schedule: SyncSchedule) -> None:
    """Every batch of the run is published; the appliers are working on them."""
    crm.update_schedule(schedule.row_id, ScheduleUpdate(status=SyncStatus.IN_PROGRESS))
