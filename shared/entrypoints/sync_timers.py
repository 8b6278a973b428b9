"""Timer triggers: the sync cycle that runs every tick."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence

import azure.functions as func

from shared import bootstrap
from shared.entrypoints.messages import OptInBatch, OptInChange, chunk_optin_changes, encode
from shared.services.optin.reader import OptInReader
from shared.services.ports import ContactOptIn, OutboundMessage
from shared.services.sync.cycle import run_sync_cycle

logger = logging.getLogger(__name__)
bp = func.Blueprint()


def new_run_id(now: dt.datetime | None = None) -> str:
    """Time-ordered, unique run ids: they sort oldest first in the run journal."""
    moment = now or dt.datetime.now(dt.UTC)
    return f"{moment:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def encode_optin_batches(
    *, run_id: str, account: str, first_batch: int, changes: Sequence[ContactOptIn],
    observed_at: dt.datetime, dry_run: bool,
) -> list[OutboundMessage]:
    """One shard's changes as ``OptInBatch`` messages numbered from ``first_batch``."""
    # dotdigital's v2 contacts carry no change time: the run's `until` is when they were seen.
    items = (OptInChange(c.email, c.opt_in_type, observed_at) for c in changes)
    return [
        encode(OptInBatch(run_id, account, first_batch + offset, group, dry_run))
        for offset, group in enumerate(chunk_optin_changes(items))
    ]


@bp.function_name("SyncTimer")
@bp.timer_trigger(arg_name="timer", schedule="%SYNC_TIMER_SCHEDULE%", use_monitor=True)
def sync_timer(timer: func.TimerRequest) -> None:
    services = bootstrap.services()
    now = dt.datetime.now(dt.UTC)
    run_id = new_run_id(now)
    reader = OptInReader(
        crm=services.crm_settings, platform=services.email_platform, state=services.sync_state,
        publisher=services.publisher, encode_batches=encode_optin_batches,
        queue=services.settings.queues.optin_queue, settings=services.settings.sync,
    )
    cycle = run_sync_cycle(reader, run_id, now)
    services.run_journal.record(run_id, "connectivity", cycle.connectivity.summary())
    services.run_journal.record(run_id, "sync-cycle", cycle.summary())
    if not cycle.ok:
        # Failing the invocation makes the problem visible in monitoring; the next tick retries.
        raise RuntimeError(f"sync cycle {run_id} failed; see the run journal")
