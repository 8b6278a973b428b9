"""Timer triggers: the sync cycle that runs every tick."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import azure.functions as func

from shared import bootstrap
from shared.services.sync.cycle import run_sync_cycle
from shared.services.sync.retention import purge_old_state
from shared.services.telemetry import run_scope

logger = logging.getLogger(__name__)
bp = func.Blueprint()


def new_run_id(now: dt.datetime) -> str:
    """Time-ordered, unique run ids: they sort oldest first in the run journal."""
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@bp.function_name("SyncTimer")
@bp.timer_trigger(arg_name="timer", schedule="%SYNC_TIMER_SCHEDULE%", use_monitor=True)
def sync_timer(timer: func.TimerRequest) -> None:
    services = bootstrap.services()
    now = dt.datetime.now(dt.UTC)
    run_id = new_run_id(now)
    with run_scope("sync.cycle", run_id=run_id):
        cycle = run_sync_cycle(services.crm_settings, services.readers(), run_id, now,
                               programs=services.programs_mirror())
        services.run_journal.record(run_id, "sync-cycle", cycle.summary())
        if not cycle.ok:
            # Failing the invocation makes the problem visible in monitoring; the next tick
            # retries.
            raise RuntimeError(f"sync cycle {run_id} failed; see the run journal")


@bp.function_name("PurgeOldState")
@bp.timer_trigger(arg_name="timer", schedule="%RETENTION_TIMER_SCHEDULE%", use_monitor=True)
def purge_old_state_timer(timer: func.TimerRequest) -> None:
    services = bootstrap.services()
    purge_old_state(
        services.sync_state, services.run_journal, now=dt.datetime.now(dt.UTC),
        retention_days=services.settings.sync.retention_days,
        events=services.event_store,
        events_retention_days=services.settings.sync.engagement_retention_days,
    )
