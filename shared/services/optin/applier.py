"""Apply one batch of opt-in changes to Dynamics (architecture §1.1 C1), once per batch.

Safe under at-least-once delivery: values only ever rise (``optin.higher``), so a redelivered
batch writes nothing new, and the run's accounting counts each batch once (``SyncStateStore``).
How a delivery is accounted, retried or dead-lettered is the same for every sync
(``shared/services/sync/delivery.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.domain.commands import ApplyOptInBatch
from shared.domain.email import match_key
from shared.domain.model import OptInType, SyncType
from shared.domain.optin import decide_updates, strongest_per_address
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import (
    BatchPublisher,
    CrmRecords,
    MessageCodec,
    ReceivedMessage,
    SyncStateStore,
)
from shared.services.sync.delivery import (
    ApplyResult,
    BatchKind,
    DeliveryDeps,
    handle_delivery,
)
from shared.services.sync.schedules import ScheduleKeeper

__all__ = ["COUNTERS", "Applier", "ApplyResult", "apply_optin_delivery"]

# items: as received; invalid_email / unknown_opt_in: items skipped; unmatched: distinct valid
# addresses with no record in any table; changed_<table>: records raised (or that would be, in a
# dry run); failed: items of a batch given up on.
COUNTERS = ("items", "invalid_email", "unknown_opt_in", "unmatched", "changed_contact",
            "changed_lead", "changed_account", "failed")


@dataclass(frozen=True, slots=True)
class Applier:
    crm_records: CrmRecords
    schedules: ScheduleKeeper
    state: SyncStateStore
    publisher: BatchPublisher
    codec: MessageCodec
    queue: str
    max_delivery_count: int
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


def apply_optin_delivery(received: ReceivedMessage, applier: Applier) -> ApplyResult:
    """Decode, apply and account one delivery of an opt-in batch."""
    deps = DeliveryDeps(applier.schedules, applier.state, applier.publisher, applier.queue,
                        applier.max_delivery_count, applier.clock)
    kind = BatchKind(
        label="opt-in", sync_type=SyncType.CONTACT_OPT_IN, counters=COUNTERS,
        decode=applier.codec.decode_optin, unreadable=applier.codec.unreadable,
        key=lambda ref: optin_sync_key(ref.account, dry_run=ref.dry_run),
        apply=lambda command: _apply(command, applier.crm_records),
    )
    return handle_delivery(received, deps, kind)


def _apply(command: ApplyOptInBatch, crm: CrmRecords) -> dict[str, int]:
    counters = dict.fromkeys(COUNTERS, 0)
    counters["items"] = len(command.items)
    changes: list[tuple[str, OptInType]] = []
    for item in command.items:
        key = match_key(item.email)
        if not isinstance(key, str):
            counters["invalid_email"] += 1
            continue
        value = OptInType.from_dotdigital(item.opt_in_type)
        if value is None:
            counters["unknown_opt_in"] += 1
            continue
        changes.append((key, value))
    incoming = strongest_per_address(changes)
    if not incoming:
        return counters
    records = crm.find_by_email_keys(list(incoming))
    counters["unmatched"] = len(incoming.keys() - {record.email_key for record in records})
    updates = decide_updates(records, incoming)
    if updates and not command.ref.dry_run:
        crm.set_opt_in(updates)
    for update in updates:
        name = f"changed_{update.record.table}"
        counters[name] = counters.get(name, 0) + 1
    return counters

