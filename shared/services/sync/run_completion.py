"""Closing a sync run: the schedule row returns to ``None`` with its last result.

Called by whichever side sees the run complete (``completed_now`` is true for exactly one
caller): the applier of the last batch, or the reader when a run published nothing to apply.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from shared.domain.model import ScheduleUpdate, SyncStatus, SyncType
from shared.services.ports import CrmSettings, RunState

logger = logging.getLogger(__name__)

CHANGED_COUNTERS = ("changed_contact", "changed_lead", "changed_account")


def format_result(counters: Mapping[str, int], *, dry_run: bool = False) -> str:
    """The schedule's short last result, e.g. ``1,234 read, 456 changed, 0 failed``."""
    read = counters.get("items", 0)
    changed = sum(counters.get(name, 0) for name in CHANGED_COUNTERS)
    failed = counters.get("failed", 0)
    verb = "would change" if dry_run else "changed"
    return f"{read:,} read, {changed:,} {verb}, {failed:,} failed"


def complete_schedule(
    crm: CrmSettings, email_account_id: str, sync_type: SyncType, run: RunState, now: dt.datetime
) -> None:
    """Write status ``None``, the last sync time and the run's result to the schedule row."""
    schedules = [
        schedule
        for schedule in crm.sync_schedules()
        if schedule.email_account_id == email_account_id and schedule.sync_type == sync_type
    ]
    result = format_result(run.counters, dry_run=run.dry_run)
    for schedule in schedules:
        crm.update_schedule(
            schedule.row_id,
            ScheduleUpdate(status=SyncStatus.NONE, last_sync=now, last_result=result),
        )
    logger.info("run %s complete: %s", run.run_id, result)
