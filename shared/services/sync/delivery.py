"""The queue side of every sync: one delivery of a batch, applied and accounted exactly once.

A delivery ends in one of three ways:

- applied (or found already applied): the message is completed;
- a failure that may heal (throttling, timeouts, 5xx, a lost race): raised, so Service Bus
  redelivers; on the last allowed delivery the batch is first counted as failed in its run, and
  the broker dead-letters it after the raise;
- a failure that cannot heal (``errors.is_permanent``: an unreadable body, our request refused,
  a missing table or column): counted as failed and moved to the dead letters with its reason on
  that very delivery, without the redeliveries (each a full lookup) that could not succeed.

The run completes, and its schedule returns to ``None``, with whichever batch is applied last.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from shared.domain.commands import BatchRef, UnreadableBatch
from shared.domain.model import SyncType
from shared.errors import MessageFormatError, is_permanent
from shared.services.ports import (
    BatchOutcome,
    BatchPublisher,
    ReceivedMessage,
    RunStatus,
    SyncKey,
    SyncStateStore,
)
from shared.services.sync.schedules import ScheduleKeeper, read_changed_failed
from shared.services.telemetry import batch_scope, current, telemetry

logger = logging.getLogger(__name__)


class Batch(Protocol):
    @property
    def ref(self) -> BatchRef: ...

    @property
    def items(self) -> tuple[object, ...]: ...


B = TypeVar("B", bound=Batch)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What a delivery did; ``dead_lettered`` names the reason when it was moved aside."""

    ref: BatchRef | None
    counters: dict[str, int]
    applied_now: bool
    dead_lettered: str | None = None


@dataclass(frozen=True)
class BatchKind(Generic[B]):
    """What differs between the syncs' batches: how to read, key, apply and count them."""

    label: str
    sync_type: SyncType
    counters: tuple[str, ...]  # every counter of the kind; "items" and "failed" among them
    decode: Callable[[bytes | str], B]
    unreadable: Callable[[Mapping[str, object] | None], UnreadableBatch | None]
    key: Callable[[BatchRef], SyncKey]
    apply: Callable[[B], dict[str, int]]

    def failed(self, items: int) -> dict[str, int]:
        counters = dict.fromkeys(self.counters, 0)
        counters["items"] = counters["failed"] = items
        return counters


@dataclass(frozen=True)
class DeliveryDeps:
    schedules: ScheduleKeeper
    state: SyncStateStore
    publisher: BatchPublisher
    queue: str
    max_delivery_count: int
    clock: Callable[[], dt.datetime]


def handle_delivery(
    received: ReceivedMessage, deps: DeliveryDeps, kind: BatchKind[B]
) -> ApplyResult:
    """Decode, apply and account one delivery (see the module docstring).

    What it logs, counts and requests is attributed to the batch's run (``batch_scope``).
    """
    try:
        command = kind.decode(received.body)
    except MessageFormatError as error:
        # Found by the run and batch its properties name, so the run still completes.
        unreadable = kind.unreadable(received.application_properties)
        ref = None if unreadable is None else unreadable.ref
        with batch_scope(ref, kind.sync_type, "sync.apply", queue=deps.queue):
            counters = kind.failed(unreadable.items if unreadable else 0)
            if unreadable is not None:
                _count_as_failed(deps, kind, unreadable.ref, counters, error, permanent=True,
                                 delivery_count=received.delivery_count)
            return _dead_letter(deps, received, ref, counters, error)
    with batch_scope(command.ref, kind.sync_type, "sync.apply", queue=deps.queue):
        return _apply(received, deps, kind, command)


def _apply(
    received: ReceivedMessage, deps: DeliveryDeps, kind: BatchKind[B], command: B
) -> ApplyResult:
    ref = command.ref
    try:
        counters = kind.apply(command)
        outcome = deps.state.mark_batch_applied(kind.key(ref), ref.run_id, ref.batch, counters)
    except Exception as error:
        permanent = is_permanent(error)
        if not permanent and received.delivery_count < deps.max_delivery_count:
            raise
        counters = kind.failed(len(command.items))
        if not permanent:
            # The last delivery: the broker dead-letters it once it is abandoned, even if the
            # counting below fails.
            telemetry().dead_lettered(current(), reason=type(error).__name__)
        _count_as_failed(deps, kind, ref, counters, error, permanent=permanent,
                         delivery_count=received.delivery_count)
        if permanent:
            return _dead_letter(deps, received, ref, counters, error)
        raise  # the last delivery: the broker dead-letters it
    _count_records(outcome, counters)
    _complete_if_last(deps, kind, ref, outcome, received.delivery_count)
    return ApplyResult(ref, counters, outcome.applied_now)


def _count_records(outcome: BatchOutcome, counters: dict[str, int]) -> None:
    # Once per batch: a redelivered batch was counted by the delivery that applied it.
    if outcome.applied_now:
        read, changed, failed = read_changed_failed(counters)
        telemetry().records(current(), read=read, changed=changed, failed=failed)


def _count_as_failed(
    deps: DeliveryDeps, kind: BatchKind[B], ref: BatchRef, counters: dict[str, int],
    error: Exception, *, permanent: bool, delivery_count: int,
) -> None:
    """Count the batch's items as failed in its run (completing it if it was the last one).

    If the counting itself fails in a way that may heal, the delivery is retried (the count must
    not be lost); if it can never succeed (the run is unknown, say), a batch headed for the dead
    letters still goes there rather than looping through redeliveries.
    """
    logger.error("%s batch %d of run %s given up: %s", kind.label, ref.batch, ref.run_id, error)
    try:
        outcome = deps.state.mark_batch_applied(kind.key(ref), ref.run_id, ref.batch, counters)
        _count_records(outcome, counters)
        # A given-up batch may be the one that completes its run: its schedule is written here.
        _complete_if_last(deps, kind, ref, outcome, delivery_count)
    except Exception as counting_error:
        logger.exception("could not record batch %d of run %s as failed", ref.batch, ref.run_id)
        if not (permanent and is_permanent(counting_error)):
            raise


def _dead_letter(
    deps: DeliveryDeps, received: ReceivedMessage, ref: BatchRef | None,
    counters: dict[str, int], error: Exception,
) -> ApplyResult:
    reason = type(error).__name__
    deps.publisher.dead_letter(deps.queue, received, reason=reason,
                               description=str(error)[:1000])
    logger.error("message %s dead-lettered on delivery %d: %s", received.message_id,
                 received.delivery_count, reason)
    telemetry().dead_lettered(current(), reason=reason)
    return ApplyResult(ref, counters, applied_now=False, dead_lettered=reason)


def _complete_if_last(
    deps: DeliveryDeps, kind: BatchKind[B], ref: BatchRef, outcome: BatchOutcome,
    delivery_count: int,
) -> None:
    # A redelivered batch of a completed run writes the schedule again: the delivery that
    # completed the run may have failed while writing it, and a schedule left "in progress"
    # would never be due again. Rewriting None and the same result is harmless otherwise.
    redelivered = not outcome.applied_now and delivery_count > 1
    if outcome.completed_now or (redelivered and outcome.run.status is RunStatus.COMPLETED):
        deps.schedules.completed(ref.account, kind.sync_type, outcome.run, deps.clock(),
                                 repeated=not outcome.completed_now)
