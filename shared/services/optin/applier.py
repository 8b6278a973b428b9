"""Apply one batch of opt-in changes to Dynamics (architecture §1.1 C1), once per batch.

Safe under at-least-once delivery: values only ever rise (``optin.higher``), so a redelivered
batch writes nothing new, and the run's accounting counts each batch once (``SyncStateStore``).
The run completes, and its schedule returns to ``None``, with whichever batch is applied last.

A delivery ends in one of three ways:

- applied (or found already applied): the message is completed;
- a failure that may heal (throttling, timeouts, 5xx, a lost race): raised, so Service Bus
  redelivers; on the last allowed delivery the batch is first counted as failed in its run, and
  the broker dead-letters it after the raise;
- a failure that cannot heal (``errors.is_permanent``: an unreadable body, our request refused,
  a missing table or column): counted as failed and moved to the dead letters with its reason on
  that very delivery, without the redeliveries (each a full lookup) that could not succeed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.domain.commands import ApplyOptInBatch, BatchRef
from shared.domain.email import match_key
from shared.domain.model import OptInType, SyncType
from shared.domain.optin import decide_updates, strongest_per_address
from shared.errors import MessageFormatError, is_permanent
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import (
    BatchOutcome,
    BatchPublisher,
    CrmRecords,
    MessageCodec,
    ReceivedMessage,
    RunStatus,
    SyncStateStore,
)
from shared.services.sync.schedules import ScheduleKeeper

logger = logging.getLogger(__name__)

# items: as received; invalid_email / unknown_opt_in: items skipped; unmatched: distinct valid
# addresses with no record in any table; changed_<table>: records raised (or that would be, in a
# dry run); failed: items of a batch given up on.
COUNTERS = ("items", "invalid_email", "unknown_opt_in", "unmatched", "changed_contact",
            "changed_lead", "changed_account", "failed")


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What a delivery did; ``dead_lettered`` names the reason when it was moved aside."""

    ref: BatchRef | None
    counters: dict[str, int]
    applied_now: bool
    dead_lettered: str | None = None


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
    """Decode, apply and account one delivery of an opt-in batch (see the module docstring)."""
    try:
        command = applier.codec.decode_optin(received.body)
    except MessageFormatError as error:
        # Found by the run and batch its properties name, so the run still completes.
        unreadable = applier.codec.unreadable(received.application_properties)
        counters = failed_counters(unreadable.items if unreadable else 0)
        if unreadable is not None:
            _count_as_failed(applier, unreadable.ref, counters, error, permanent=True,
                             delivery_count=received.delivery_count)
        return _dead_letter(applier, received, None if unreadable is None else unreadable.ref,
                            counters, error)
    ref = command.ref
    try:
        counters = _apply(command, applier.crm_records)
        outcome = applier.state.mark_batch_applied(
            optin_sync_key(ref.account, dry_run=ref.dry_run), ref.run_id, ref.batch, counters
        )
    except Exception as error:
        permanent = is_permanent(error)
        if not permanent and received.delivery_count < applier.max_delivery_count:
            raise
        counters = failed_counters(len(command.items))
        _count_as_failed(applier, ref, counters, error, permanent=permanent,
                         delivery_count=received.delivery_count)
        if permanent:
            return _dead_letter(applier, received, ref, counters, error)
        raise  # the last delivery: the broker dead-letters it
    _complete_if_last(applier, ref, outcome, received.delivery_count)
    return ApplyResult(ref, counters, outcome.applied_now)


def failed_counters(items: int) -> dict[str, int]:
    counters = dict.fromkeys(COUNTERS, 0)
    counters["items"] = counters["failed"] = items
    return counters


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


def _count_as_failed(
    applier: Applier, ref: BatchRef, counters: dict[str, int], error: Exception, *,
    permanent: bool, delivery_count: int,
) -> None:
    """Count the batch's items as failed in its run (completing it if it was the last one).

    If the counting itself fails in a way that may heal, the delivery is retried (the count must
    not be lost); if it can never succeed (the run is unknown, say), a batch headed for the dead
    letters still goes there rather than looping through redeliveries.
    """
    logger.error("opt-in batch %d of run %s given up: %s", ref.batch, ref.run_id, error)
    key = optin_sync_key(ref.account, dry_run=ref.dry_run)
    try:
        outcome = applier.state.mark_batch_applied(key, ref.run_id, ref.batch, counters)
        # A given-up batch may be the one that completes its run: its schedule is written here.
        _complete_if_last(applier, ref, outcome, delivery_count)
    except Exception as counting_error:
        logger.exception("could not record batch %d of run %s as failed", ref.batch, ref.run_id)
        if not (permanent and is_permanent(counting_error)):
            raise


def _dead_letter(
    applier: Applier, received: ReceivedMessage, ref: BatchRef | None,
    counters: dict[str, int], error: Exception,
) -> ApplyResult:
    reason = type(error).__name__
    applier.publisher.dead_letter(applier.queue, received, reason=reason,
                                  description=str(error)[:1000])
    logger.error("message %s dead-lettered on delivery %d: %s", received.message_id,
                 received.delivery_count, reason)
    return ApplyResult(ref, counters, applied_now=False, dead_lettered=reason)


def _complete_if_last(
    applier: Applier, ref: BatchRef, outcome: BatchOutcome, delivery_count: int
) -> None:
    # A redelivered batch of a completed run writes the schedule again: the delivery that
    # completed the run may have failed while writing it, and a schedule left "in progress"
    # would never be due again. Rewriting None and the same result is harmless otherwise.
    redelivered = not outcome.applied_now and delivery_count > 1
    if outcome.completed_now or (redelivered and outcome.run.status is RunStatus.COMPLETED):
        applier.schedules.completed(ref.account, SyncType.CONTACT_OPT_IN, outcome.run,
                                    applier.clock())
