"""Apply one batch of opt-in changes to Dynamics (architecture §1.1 C1), once per batch.

Safe under at-least-once delivery: values only ever rise (``optin.higher``), so a redelivered
batch writes nothing new, and the run's accounting counts each batch once (``SyncStateStore``).
The run completes, and its schedule returns to ``None``, with whichever batch is applied last.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shared.domain.email import match_key
from shared.domain.model import OptInType, SyncType
from shared.domain.optin import decide_updates, strongest_per_address
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import (
    BatchOutcome,
    CrmRecords,
    CrmSettings,
    RunStatus,
    SyncKey,
    SyncStateStore,
)
from shared.services.sync.run_completion import complete_schedule

logger = logging.getLogger(__name__)

SYNC_TYPE = SyncType.CONTACT_OPT_IN
# items: as received; invalid_email / unknown_opt_in: items skipped; unmatched: distinct valid
# addresses with no record in any table; changed_<table>: records raised (or that would be, in a
# dry run); failed: items of a batch given up on at its last delivery.
COUNTERS = ("items", "invalid_email", "unknown_opt_in", "unmatched", "changed_contact",
            "changed_lead", "changed_account", "failed")


class OptInChangeLike(Protocol):
    @property
    def email(self) -> str: ...
    @property
    def opt_in_type(self) -> str: ...


class OptInBatchLike(Protocol):
    """What the applier reads from a decoded ``optin-batch`` message (structurally)."""

    @property
    def run_id(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def batch(self) -> int: ...
    @property
    def items(self) -> Sequence[OptInChangeLike]: ...
    @property
    def dry_run(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ApplyResult:
    counters: dict[str, int]
    outcome: BatchOutcome
    failed: bool = False  # the batch was given up on (last delivery) and counted as failed


@dataclass(frozen=True, slots=True)
class Applier:
    crm_records: CrmRecords
    crm_settings: CrmSettings
    state: SyncStateStore
    max_delivery_count: int
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


def apply_optin_batch(
    batch: OptInBatchLike, applier: Applier, *, delivery_count: int
) -> ApplyResult:
    """Apply ``batch`` and count it in its run; on the last allowed delivery a failure is first
    recorded as ``failed`` items (so the run still completes) and then re-raised."""
    key = optin_sync_key(batch.account, dry_run=batch.dry_run)
    try:
        counters = _apply(batch, applier.crm_records)
        outcome = applier.state.mark_batch_applied(key, batch.run_id, batch.batch, counters)
    except Exception as error:
        if delivery_count < applier.max_delivery_count:
            raise
        _count_as_failed(applier, key, batch.run_id, batch.batch, len(batch.items), error,
                         delivery_count)
        raise
    _complete_if_last(batch.account, applier, outcome, delivery_count)
    return ApplyResult(counters, outcome)


def count_undecodable_batch(
    applier: Applier, error: Exception, *, account: str, run_id: str, batch: int, items: int,
    dry_run: bool, delivery_count: int,
) -> None:
    """On its last allowed delivery, count a batch whose body cannot be decoded (``items`` of
    batch ``batch`` of ``run_id``, as its message's properties say) as failed in its run, so the
    run still completes and its result shows the loss (the caller re-raises, and the message is
    dead-lettered with its reason)."""
    if delivery_count < applier.max_delivery_count:
        return
    key = optin_sync_key(account, dry_run=dry_run)
    _count_as_failed(applier, key, run_id, batch, items, error, delivery_count)


def _apply(batch: OptInBatchLike, crm: CrmRecords) -> dict[str, int]:
    counters = dict.fromkeys(COUNTERS, 0)
    counters["items"] = len(batch.items)
    changes: list[tuple[str, OptInType]] = []
    for item in batch.items:
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
    if updates and not batch.dry_run:
        crm.set_opt_in(updates)
    for update in updates:
        name = f"changed_{update.record.table}"
        counters[name] = counters.get(name, 0) + 1
    return counters


def _count_as_failed(
    applier: Applier, key: SyncKey, run_id: str, batch: int, items: int, error: Exception,
    delivery_count: int,
) -> None:
    logger.error("opt-in batch %d of run %s failed on its last delivery: %s", batch, run_id, error)
    counters = dict.fromkeys(COUNTERS, 0)
    counters["items"] = counters["failed"] = items
    try:
        outcome = applier.state.mark_batch_applied(key, run_id, batch, counters)
        _complete_if_last(key.account, applier, outcome, delivery_count)
    except Exception:  # the original error is the one to dead-letter with
        logger.exception("could not record batch %d of run %s as failed", batch, run_id)


def _complete_if_last(
    account: str, applier: Applier, outcome: BatchOutcome, delivery_count: int
) -> None:
    # A redelivered batch of a completed run writes the schedule again: the delivery that
    # completed the run may have failed while writing it, and a schedule left "in progress"
    # would never be due again. Rewriting None and the same result is harmless otherwise.
    redelivered = not outcome.applied_now and delivery_count > 1
    if outcome.completed_now or (redelivered and outcome.run.status is RunStatus.COMPLETED):
        complete_schedule(applier.crm_settings, account, SYNC_TYPE, outcome.run, applier.clock())
