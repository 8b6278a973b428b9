"""A sync of one email account run now, in-process, in dry-run mode, writing nothing.

The app's own reader and appliers run as a timer tick and the queue triggers would, with the
dry-run setting on (their ``ref.dry_run`` skips every write) and with ports that refuse writes
anyway (``write_guards``): the run's bookkeeping lives in memory (``scratch_state``), batches
are applied as they are published (``inline_delivery``), and the schedule row is left as it is.
So the counts are those the app would record for a run started now: what it would change.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ops.inline_delivery import DeadLetterNote, InlinePublisher
from ops.scratch_state import ScratchState
from ops.syncs import KINDS
from ops.write_guards import (
    ReadingPlatform,
    ReadingSource,
    ReadOnlyEvents,
    ReadOnlyJournal,
    ReadOnlyRecords,
    ReadOnlySettings,
    ReadOnlySuppressions,
)
from shared.bootstrap import Services
from shared.domain.model import EmailAccount, SyncSchedule, SyncType
from shared.services.engagement.applier import apply_engagement_delivery
from shared.services.optin.applier import apply_optin_delivery
from shared.services.ports import RunState
from shared.services.suppression.applier import apply_suppression_delivery
from shared.services.sync.cycle import SyncReader
from shared.services.sync.delivery import ApplyResult
from shared.services.sync.paged_run import ReaderProgress


@dataclass(frozen=True)
class DryRunResult:
    account: EmailAccount
    sync_type: SyncType
    run: RunState
    reader: ReaderProgress  # ``extra``: a sync's start-up counts (the CRM step of suppressions)
    dead_letters: list[DeadLetterNote]
    seconds: float


def run_dry(
    services: Services, account: EmailAccount, sync_type: SyncType, *,
    on_page: Callable[[int], None] = lambda items: None,
    on_batch: Callable[[ApplyResult], None] = lambda result: None,
) -> DryRunResult:
    started = time.monotonic()
    publisher = InlinePublisher(on_batch)
    scratch = ScratchState(services.sync_state)
    dry = replace(
        services,
        settings=replace(services.settings,
                         sync=replace(services.settings.sync, dry_run=True)),
        crm_settings=ReadOnlySettings(services.crm_settings),
        crm_records=ReadOnlyRecords(services.crm_records),
        crm_suppressions=ReadOnlySuppressions(services.crm_suppressions),
        email_platform=ReadingPlatform(services.email_platform, on_page),
        engagement_source=ReadingSource(services.engagement_source, on_page),
        event_store=ReadOnlyEvents(services.event_store),
        run_journal=ReadOnlyJournal(),
        sync_state=scratch,
        publisher=publisher,
    )
    _route(dry, publisher)
    readers: dict[SyncType, Callable[[], SyncReader]] = {
        SyncType.CONTACT_OPT_IN: dry.optin_reader,
        SyncType.SUPPRESSION_LISTS: dry.suppression_reader,
        SyncType.ENGAGEMENT: dry.engagement_reader,
    }
    reader = readers[sync_type]()
    now = dt.datetime.now(dt.UTC)
    run_id = f"{now:%Y%m%dT%H%M%S}-console"
    # The app's schedule row is neither needed nor touched: Sync Now, interval and window
    # decide when a run starts, not what it changes.
    schedule = SyncSchedule(row_id="console-dry-run", email_account_id=account.row_id,
                            sync_type=sync_type)
    opened = reader.start(account, schedule, run_id, now)
    if opened is None:  # only another instance on the same cursor could: there is none
        raise RuntimeError("the dry run could not open its run")
    cursor, schedule = opened
    progress = reader.resume(account, schedule, cursor, now, deadline=math.inf)
    run = scratch.get_run(KINDS[sync_type].key(account.row_id, dry_run=True), run_id)
    if run is None:
        raise RuntimeError("the dry run's run is missing")
    return DryRunResult(account, sync_type, run, progress, publisher.dead_letters,
                        time.monotonic() - started)


def _route(dry: Services, publisher: InlinePublisher) -> None:
    queues, sync = dry.settings.queues, dry.settings.sync
    optin, suppression, engagement = (dry.optin_applier(), dry.suppression_applier(),
                                      dry.engagement_applier())
    publisher.route(queues.optin_queue, lambda received: apply_optin_delivery(received, optin),
                    sync.optin_max_delivery_count)
    publisher.route(queues.suppression_queue,
                    lambda received: apply_suppression_delivery(received, suppression),
                    sync.suppression_max_delivery_count)
    publisher.route(queues.engagement_queue,
                    lambda received: apply_engagement_delivery(received, engagement),
                    sync.engagement_max_delivery_count)
