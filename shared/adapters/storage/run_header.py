"""The run header row of the sync state store: ``RunState`` to entity and back.

``HighestApplied`` is kept beside the counts (not exposed in ``RunState``) so that a reader
cannot declare publishing finished below a batch that was already applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.adapters.storage import codec
from shared.services.ports import RunState, RunStatus, SyncKey

HIGHEST_APPLIED = "HighestApplied"


def run_row_key(run_id: str) -> str:
    return f"run|{codec.check_run_id(run_id)}"


def counter_properties(counters: Mapping[str, int]) -> dict[str, Any]:
    return {codec.COUNTER_PREFIX + name: codec.int64(value) for name, value in counters.items()}


def header_entity(
    run: RunState, highest: int, *, status: RunStatus, completed_at: datetime | None,
    published: int | None = None, applied: int | None = None,
    counters: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": codec.partition_key(run.key), "RowKey": run_row_key(run.run_id),
        "Status": status.value, "Since": run.since, "Until": run.until, "DryRun": run.dry_run,
        "StartedAt": run.started_at,
        "BatchesPublished": codec.int64(run.batches_published if published is None else published),
        "BatchesApplied": codec.int64(run.batches_applied if applied is None else applied),
        HIGHEST_APPLIED: codec.int64(highest),
        **counter_properties(run.counters if counters is None else counters),
    }
    if completed_at is not None:
        entity["CompletedAt"] = completed_at
    return entity


def run_from_entity(key: SyncKey, run_id: str, entity: Mapping[str, Any], etag: str) -> RunState:
    completed_at = entity.get("CompletedAt")
    prefix = codec.COUNTER_PREFIX
    return RunState(
        key=key, run_id=run_id, status=RunStatus(entity["Status"]),
        since=codec.plain_utc(entity["Since"]), until=codec.plain_utc(entity["Until"]),
        dry_run=bool(entity["DryRun"]), started_at=codec.plain_utc(entity["StartedAt"]),
        batches_published=codec.read_int(entity, "BatchesPublished"),
        batches_applied=codec.read_int(entity, "BatchesApplied"),
        completed_at=None if completed_at is None else codec.plain_utc(completed_at),
        counters={name[len(prefix):]: codec.read_int(entity, name)
                  for name in sorted(entity) if name.startswith(prefix)},
        etag=etag,
    )


def new_header_entity(
    key: SyncKey, run_id: str, *, since: datetime, until: datetime, dry_run: bool,
    started_at: datetime,
) -> dict[str, Any]:
    return {
        "PartitionKey": codec.partition_key(key), "RowKey": run_row_key(run_id),
        "Status": RunStatus.PUBLISHING.value, "Since": since, "Until": until,
        "DryRun": bool(dry_run), "StartedAt": started_at,
        "BatchesPublished": codec.int64(0), "BatchesApplied": codec.int64(0),
        HIGHEST_APPLIED: codec.int64(-1),
    }
