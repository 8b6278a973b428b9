"""Timer triggers: the sync cycle that runs every tick."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import azure.functions as func

from shared import bootstrap
from shared.services.connectivity import check_connectivity

logger = logging.getLogger(__name__)
bp = func.Blueprint()


def new_run_id(now: dt.datetime | None = None) -> str:
    """Time-ordered, unique run ids: they sort oldest first in the run journal."""
    moment = now or dt.datetime.now(dt.UTC)
    return f"{moment:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@bp.function_name("SyncTimer")
@bp.timer_trigger(arg_name="timer", schedule="%SYNC_TIMER_SCHEDULE%", use_monitor=True)
def sync_timer(timer: func.TimerRequest) -> None:
    services = bootstrap.services()
    run_id = new_run_id()
    report = check_connectivity(services.crm_settings, services.email_platform)
    services.run_journal.record(run_id, "connectivity", report.summary())
    for check in report.accounts:
        logger.info(
            "connectivity run=%s account=%s schedules=%d ok=%s",
            run_id,
            check.email_account,
            len(check.schedules),
            check.ok,
        )
    if not report.ok:
        # Failing the invocation makes the problem visible in monitoring; the next tick retries.
        raise RuntimeError(f"connectivity check failed for run {run_id}")
