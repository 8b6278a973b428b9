"""Run accounting of the sync state store (see ``sync_state`` for the row layout and why a
count can never be lost): run headers, per-batch outcome rows, completion and retention."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableEntity

from shared.adapters.storage import codec
from shared.adapters.storage import run_header as headers
from shared.adapters.storage.rows import TableRows, etag_of
from shared.errors import DomainError, NotFound, PreconditionFailed, System
from shared.services.ports import BatchOutcome, RunState, RunStatus, RunUpdate, SyncKey

# Only the reader and the completion write a run's header, so races on it are rare and short;
# randomised back-off, and if even this fails the error is retryable (redelivery, next tick).
_MAX_ATTEMPTS = 16
_MAX_BACK_OFF_S = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TableRuns:
    """The run half of ``TableSyncStateStore``."""

    def __init__(
        self,
        rows: TableRows,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rows = rows
        self._clock = clock
        self._sleep = sleep

    # --- runs -------------------------------------------------------------------------------
    def start_run(
        self, key: SyncKey, run_id: str, *, since: datetime, until: datetime, dry_run: bool = False
    ) -> RunState:
        since, until = codec.utc(since, "since"), codec.utc(until, "until")
        if since > until:
            raise ValueError(f"run {run_id}: since {since.isoformat()} is after until")
        entity = headers.new_header_entity(
            key, run_id, since=since, until=until, dry_run=dry_run,
            started_at=codec.utc(self._clock(), "clock"),
        )
        try:
            etag = self._rows.create(entity)
            return headers.run_from_entity(key, run_id, entity, etag, headers.BatchOutcomes.of([]))
        except PreconditionFailed:
            existing = self._run_with_outcomes(key, run_id, "start_run")
        if (existing.since, existing.until, existing.dry_run) != (since, until, bool(dry_run)):
            raise DomainError(f"run {run_id} already exists with another window or mode")
        return existing

    def get_run(self, key: SyncKey, run_id: str) -> RunState | None:
        entity = self._rows.get(codec.partition_key(key), headers.run_row_key(run_id))
        if entity is None:
            return None
        return self._with_outcomes(key, run_id, entity)

    def record_published(
        self, key: SyncKey, run_id: str, *, batches: int, done: bool = False
    ) -> RunUpdate:
        codec.check_count("batch count", batches)
        for attempt in range(_MAX_ATTEMPTS):
            entity = self._load_header(key, run_id, "record_published")
            run = headers.run_from_entity(key, run_id, entity, etag_of(entity), None)
            published = max(run.batches_published, batches)
            if run.status is not RunStatus.PUBLISHING and batches > run.batches_published:
                raise DomainError(f"run {run_id} finished publishing at {run.batches_published}")
            if run.status is not RunStatus.PUBLISHING or not done:
                if published == run.batches_published:
                    return RunUpdate(self._with_outcomes(key, run_id, entity), completed_now=False)
                header = headers.header_entity(run, status=run.status, published=published)
                if not self._replaced(header, run.etag, attempt):
                    continue
                return RunUpdate(self.get_run(key, run_id) or run, completed_now=False)
            outcomes = self._outcomes(key, run_id)
            if outcomes.highest >= published:
                raise DomainError(f"run {run_id} has applied batch {outcomes.highest}, beyond "
                                  f"the {published} published")
            if outcomes.count == published:
                completed = self._write_completed(replace(run, batches_published=published),
                                                  outcomes)
                if completed is None:
                    self._back_off(attempt)
                    continue
                return RunUpdate(completed, completed_now=True)
            header = headers.header_entity(run, status=RunStatus.APPLYING, published=published)
            if not self._replaced(header, run.etag, attempt):
                continue
            # A batch applied after the count above saw "publishing" and left the run to us.
            return self._complete_if_all_applied(key, run_id)
        raise _lost("record_published", f"run {run_id} kept changing; try again")

    def mark_batch_applied(
        self, key: SyncKey, run_id: str, batch: int, counters: Mapping[str, int]
    ) -> BatchOutcome:
        codec.check_batch_number(batch)
        counts = codec.check_counters(counters)
        partition = codec.partition_key(key)
        entity = self._load_header(key, run_id, "mark_batch_applied")
        run = headers.run_from_entity(key, run_id, entity, etag_of(entity), None)
        if run.status is not RunStatus.PUBLISHING and batch >= run.batches_published:
            raise DomainError(
                f"batch {batch} is beyond run {run_id}'s last batch {run.batches_published - 1}"
            )
        outcome_row = {"PartitionKey": partition, "RowKey": headers.batch_row_key(run_id, batch),
                       "AppliedAt": codec.utc(self._clock(), "clock"),
                       **headers.counter_properties(counts)}
        try:
            # Its own row, written once: concurrent appliers never contend, so nothing is lost.
            self._rows.create(outcome_row)
            applied_now = True
        except PreconditionFailed:
            applied_now = False  # a redelivery: the batch was counted before
        # Also on a redelivery: the delivery that counted the batch may have died before
        # completing the run.
        update = self._complete_if_all_applied(key, run_id)
        return BatchOutcome(applied_now=applied_now, run=update.run,
                            completed_now=update.completed_now)

    def purge_runs(self, before: datetime) -> int:
        """Delete completed runs (header and outcome rows) that completed before ``before``,
        and outcome rows left without a header; returns how many runs went. Watermarks,
        checkpoints and runs still open are never touched."""
        before = codec.utc(before, "before")
        rows = self._rows.query(
            "RowKey ge @low and RowKey lt @high", {"low": "run|", "high": "run}"},
            select=["PartitionKey", "RowKey", "Status", "CompletedAt", "AppliedAt"],
        )
        runs: dict[tuple[str, str], list[TableEntity]] = {}
        for row in rows:
            run_key = str(row["RowKey"]).split(headers.BATCH_INFIX, 1)[0]
            runs.setdefault((str(row["PartitionKey"]), run_key), []).append(row)
        purged = 0
        for (partition, run_key), members in sorted(runs.items()):
            header = next((row for row in members if row["RowKey"] == run_key), None)
            if header is not None:
                completed_at = header.get("CompletedAt")
                if header.get("Status") != RunStatus.COMPLETED.value or completed_at is None:
                    continue
                if codec.plain_utc(completed_at) >= before:
                    continue
            elif any(codec.plain_utc(row["AppliedAt"]) >= before for row in members):
                continue
            # Outcome rows first: a header is never left without the rows it was summed from
            # while it can still be read as open.
            names = sorted((str(row["RowKey"]) for row in members), key=lambda k: k == run_key)
            self._rows.delete_rows(partition, names)
            purged += 1
        return purged

    # --- helpers ----------------------------------------------------------------------------
    def _complete_if_all_applied(self, key: SyncKey, run_id: str) -> RunUpdate:
        """Complete an ``applying`` run whose every published batch has its outcome row; exactly
        one caller sees ``completed_now`` (the header write is conditional)."""
        for attempt in range(_MAX_ATTEMPTS):
            entity = self._load_header(key, run_id, "complete run")
            run = headers.run_from_entity(key, run_id, entity, etag_of(entity), None)
            if run.status is RunStatus.COMPLETED:
                return RunUpdate(run, completed_now=False)
            outcomes = self._outcomes(key, run_id)
            open_run = headers.run_from_entity(key, run_id, entity, run.etag, outcomes)
            if run.status is RunStatus.PUBLISHING or outcomes.count < run.batches_published:
                return RunUpdate(open_run, completed_now=False)
            completed = self._write_completed(run, outcomes)
            if completed is not None:
                return RunUpdate(completed, completed_now=True)
            self._back_off(attempt)
        raise _lost("complete run", f"run {run_id} kept changing; try again")

    def _write_completed(
        self, run: RunState, outcomes: headers.BatchOutcomes
    ) -> RunState | None:
        """The run completed with ``outcomes``' totals; None when the header changed first."""
        now = codec.utc(self._clock(), "clock")
        header = headers.header_entity(run, status=RunStatus.COMPLETED, completed_at=now,
                                       counters=outcomes.totals)
        try:
            etag = self._rows.replace(header, run.etag)
        except PreconditionFailed:
            return None
        return headers.run_from_entity(run.key, run.run_id, header, etag, outcomes)

    def _outcomes(self, key: SyncKey, run_id: str) -> headers.BatchOutcomes:
        low = headers.run_row_key(run_id) + headers.BATCH_INFIX
        rows = self._rows.query(
            "PartitionKey eq @partition and RowKey gt @low and RowKey lt @high",
            {"partition": codec.partition_key(key), "low": low, "high": low[:-1] + "}"},
        )
        return headers.BatchOutcomes.of(rows)

    def _load_header(self, key: SyncKey, run_id: str, operation: str) -> TableEntity:
        entity = self._rows.get(codec.partition_key(key), headers.run_row_key(run_id))
        if entity is None:
            raise NotFound(System.TABLES, f"run {run_id} of {key.account}/{key.sync_type} "
                           "is unknown", operation=operation)
        return entity

    def _with_outcomes(self, key: SyncKey, run_id: str, entity: TableEntity) -> RunState:
        outcomes = None
        if entity.get("Status") != RunStatus.COMPLETED.value:
            outcomes = self._outcomes(key, run_id)
        return headers.run_from_entity(key, run_id, entity, etag_of(entity), outcomes)

    def _run_with_outcomes(self, key: SyncKey, run_id: str, operation: str) -> RunState:
        return self._with_outcomes(key, run_id, self._load_header(key, run_id, operation))

    def _replaced(self, header: Mapping[str, Any], etag: str, attempt: int) -> bool:
        """Write ``header`` if ``etag`` still matches; after a lost race, back off (False)."""
        try:
            self._rows.replace(header, etag)
        except PreconditionFailed:
            self._back_off(attempt)
            return False
        return True

    def _back_off(self, attempt: int) -> None:
        self._sleep(min(0.02 * 2**attempt, _MAX_BACK_OFF_S) * random.random())



def _lost(operation: str, detail: str) -> PreconditionFailed:
    return PreconditionFailed(System.TABLES, detail, operation=operation)
