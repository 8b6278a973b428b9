"""Run rows of the sync state store: the header, the per-batch outcome rows, and ``RunState``.

The header holds the run's window and how many batches were published; each applied batch has
its own outcome row with its counters, written once and never updated. A run's totals are the
sum of its outcome rows, so no two appliers ever write the same row and no count can be lost in
a race; the sum is written into the header once, when the run completes. (One exception: an
operator's replay of a given-up batch takes its row back first, ``batch_reopening.py``.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.storage import codec
from shared.services.ports import RunState, RunStatus, SyncKey

BATCH_INFIX = "|batch|"


def run_row_key(run_id: str) -> str:
    return f"run|{codec.check_run_id(run_id)}"


def batch_row_key(run_id: str, batch: int) -> str:
    return f"{run_row_key(run_id)}{BATCH_INFIX}{batch:07d}"


def counter_properties(counters: Mapping[str, int]) -> dict[str, Any]:
    return {codec.COUNTER_PREFIX + name: codec.int64(value) for name, value in counters.items()}


def read_counters(entity: Mapping[str, Any]) -> dict[str, int]:
    prefix = codec.COUNTER_PREFIX
    return {name[len(prefix):]: codec.read_int(entity, name)
            for name in sorted(entity) if name.startswith(prefix)}


@dataclass(frozen=True, slots=True)
class BatchOutcomes:
    """The outcome rows of one run: how many, the highest batch number, their summed counters."""

    count: int
    highest: int  # -1 for none
    totals: dict[str, int]

    @classmethod
    def of(cls, rows: Iterable[Mapping[str, Any]]) -> BatchOutcomes:
        count, highest = 0, -1
        totals: dict[str, int] = {}
        for row in rows:
            count += 1
            highest = max(highest, int(str(row["RowKey"]).rsplit("|", 1)[1]))
            for name, value in read_counters(row).items():
                totals[name] = totals.get(name, 0) + value
        return cls(count, highest, dict(sorted(totals.items())))


def header_entity(
    run: RunState, *, status: RunStatus, published: int | None = None,
    completed_at: datetime | None = None, counters: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": codec.partition_key(run.key), "RowKey": run_row_key(run.run_id),
        "Status": status.value, "Since": run.since, "Until": run.until, "DryRun": run.dry_run,
        "StartedAt": run.started_at,
        "BatchesPublished": codec.int64(run.batches_published if published is None else published),
    }
    if completed_at is not None:
        entity["CompletedAt"] = completed_at
        entity["BatchesApplied"] = codec.int64(run.batches_published)
        entity.update(counter_properties(counters or {}))
    return entity


def run_from_entity(
    key: SyncKey, run_id: str, entity: Mapping[str, Any], etag: str,
    outcomes: BatchOutcomes | None,
) -> RunState:
    """The run; a completed run's totals come from its header, an open run's from ``outcomes``."""
    completed_at = entity.get("CompletedAt")
    status = RunStatus(entity["Status"])
    if status is RunStatus.COMPLETED or outcomes is None:
        applied = codec.read_int(entity, "BatchesApplied")
        counters = read_counters(entity)
    else:
        applied, counters = outcomes.count, outcomes.totals
    return RunState(
        key=key, run_id=run_id, status=status,
        since=codec.plain_utc(entity["Since"]), until=codec.plain_utc(entity["Until"]),
        dry_run=bool(entity["DryRun"]), started_at=codec.plain_utc(entity["StartedAt"]),
        batches_published=codec.read_int(entity, "BatchesPublished"),
        batches_applied=applied,
        completed_at=None if completed_at is None else codec.plain_utc(completed_at),
        counters=counters, etag=etag,
    )


def new_header_entity(
    key: SyncKey, run_id: str, *, since: datetime, until: datetime, dry_run: bool,
    started_at: datetime,
) -> dict[str, Any]:
    return {
        "PartitionKey": codec.partition_key(key), "RowKey": run_row_key(run_id),
        "Status": RunStatus.PUBLISHING.value, "Since": since, "Until": until,
        "DryRun": bool(dry_run), "StartedAt": started_at,
        "BatchesPublished": codec.int64(0),
    }
