"""Apply one batch of suppression events to Dynamics (architecture §1.1 C2), once per batch.

One lookup (every account's Email Suppression rows for the batch's addresses and, when needed,
the contacts, leads and accounts with them) and one all-or-nothing write per batch. The rules
(``shared/domain/suppression.py``) compare dates, never arrival order, so a redelivered,
duplicated or reordered batch leaves the same rows, flags and Notes. How a delivery is
accounted, retried or dead-lettered is the same for every sync
(``shared/services/sync/delivery.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.domain.commands import ApplySuppressionBatch
from shared.domain.model import SyncType
from shared.domain.suppression import (
    SUPPRESSION_COUNTERS,
    AccountView,
    FlagRecord,
    SuppressionRow,
    keys_of,
    keys_to_deactivate,
    plan_batch,
)
from shared.services.ports import (
    BatchPublisher,
    CrmSuppressions,
    MessageCodec,
    ReceivedMessage,
    SyncStateStore,
)
from shared.services.suppression.reader import suppression_sync_key
from shared.services.sync.delivery import ApplyResult, BatchKind, DeliveryDeps, handle_delivery
from shared.services.sync.schedules import ScheduleKeeper


@dataclass(frozen=True, slots=True)
class SuppressionApplier:
    crm: CrmSuppressions
    schedules: ScheduleKeeper
    state: SyncStateStore
    publisher: BatchPublisher
    codec: MessageCodec
    queue: str
    max_delivery_count: int
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


def apply_suppression_delivery(
    received: ReceivedMessage, applier: SuppressionApplier
) -> ApplyResult:
    """Decode, apply and account one delivery of a suppression batch."""
    deps = DeliveryDeps(applier.schedules, applier.state, applier.publisher, applier.queue,
                        applier.max_delivery_count, applier.clock)
    kind = BatchKind(
        label="suppression", sync_type=SyncType.SUPPRESSION_LISTS,
        counters=SUPPRESSION_COUNTERS,
        decode=applier.codec.decode_suppression, unreadable=applier.codec.unreadable_suppression,
        key=lambda ref: suppression_sync_key(ref.account, dry_run=ref.dry_run),
        apply=lambda command: apply_suppression_batch(command, applier.crm),
    )
    return handle_delivery(received, deps, kind)


def apply_suppression_batch(
    command: ApplySuppressionBatch, crm: CrmSuppressions
) -> dict[str, int]:
    """Plan and write one batch; returns its counters (in a dry run: what it would write)."""
    keys = keys_of(command.items)
    account = AccountView(command.ref.account, command.account_name,
                          command.update_do_not_bulk_email, frozenset(command.dnbe_accounts))
    rows: list[SuppressionRow] = []
    records: list[FlagRecord] = []
    if keys and command.update_do_not_bulk_email:
        rows, records = crm.lookup(keys, with_records=True)
    elif keys:
        # Without the option, records are written only for Notes: read them (a second request)
        # only for the resubscriptions that deactivate a row. Most resubscription events are
        # new sign-ups with no row at all, so most batches cost one lookup.
        rows, _ = crm.lookup(keys, with_records=False)
        noted = keys_to_deactivate(command.items, account.row_id, rows)
        if noted:
            records = crm.lookup(noted, with_records=True)[1]
    plan, counters = plan_batch(command.items, account, rows, records)
    if plan and not command.ref.dry_run:
        crm.apply(account.row_id, plan)
    return counters
