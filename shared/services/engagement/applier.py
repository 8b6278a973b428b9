"""Store one batch of engagement events (architecture §1.1 C4), once per batch.

The event store writes each event once and counts it in its person's summary in the same
transaction, so a redelivered, duplicated or reordered batch changes nothing twice; how a
delivery is accounted, retried or dead-lettered is every sync's
(``shared/services/sync/delivery.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.domain.commands import ApplyEngagementBatch
from shared.domain.engagement import EventKind
from shared.domain.model import SyncType
from shared.services.engagement.reader import engagement_sync_key
from shared.services.ports import (
    BatchPublisher,
    EventStore,
    MessageCodec,
    ReceivedMessage,
    SyncStateStore,
)
from shared.services.sync.delivery import ApplyResult, BatchKind, DeliveryDeps, handle_delivery
from shared.services.sync.schedules import ScheduleKeeper

# items: as received, and read_<kind> by kind; written: events stored for the first time (none
# in a dry run); existing: events the store already had (a replay, or read again by an
# overlapping run); failed: items of a batch given up on.
ENGAGEMENT_COUNTERS = ("items", *(f"read_{kind}" for kind in EventKind), "written", "existing",
                       "failed")


@dataclass(frozen=True, slots=True)
class EngagementApplier:
    store: EventStore
    schedules: ScheduleKeeper
    state: SyncStateStore
    publisher: BatchPublisher
    codec: MessageCodec
    queue: str
    max_delivery_count: int
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


def apply_engagement_delivery(
    received: ReceivedMessage, applier: EngagementApplier
) -> ApplyResult:
    """Decode, store and account one delivery of an engagement batch."""
    deps = DeliveryDeps(applier.schedules, applier.state, applier.publisher, applier.queue,
                        applier.max_delivery_count, applier.clock)
    kind = BatchKind(
        label="engagement", sync_type=SyncType.ENGAGEMENT, counters=ENGAGEMENT_COUNTERS,
        decode=applier.codec.decode_engagement, unreadable=applier.codec.unreadable_engagement,
        key=lambda ref: engagement_sync_key(ref.account, dry_run=ref.dry_run),
        apply=lambda command: apply_engagement_batch(command, applier.store),
    )
    return handle_delivery(received, deps, kind)


def apply_engagement_batch(command: ApplyEngagementBatch, store: EventStore) -> dict[str, int]:
    counters = dict.fromkeys(ENGAGEMENT_COUNTERS, 0)
    counters["items"] = len(command.items)
    for event in command.items:
        counters[f"read_{event.kind}"] += 1
    if command.ref.dry_run or not command.items:
        return counters
    result = store.write(command.items)
    counters["written"], counters["existing"] = result.new, result.existing
    return counters
