"""The sync state store on Azure Table Storage (``SyncStateStore``).

Data model: one table (default ``syncstate``), one partition per email account and sync type,
``PartitionKey = "<account>|<sync type>"``. Keeping all of a sync's state in one partition means
every multi-row change is a single entity-group transaction (atomic), and a partition's rows stay
few and small.

| RowKey                            | Holds                                                       |
|-----------------------------------|-------------------------------------------------------------|
| ``watermark``                     | ``Value``: the time up to which changes were handed on      |
| ``checkpoint|<STATE_NAME>``       | one typed checkpoint, e.g. the reader's ``PageCursor``;     |
|                                   | one property per dataclass field (readable in Explorer)     |
| ``run|<run id>``                  | the run header: ``Status``, ``Since``, ``Until``, ``DryRun``,|
|                                   | ``StartedAt``, ``CompletedAt``, ``BatchesPublished``,       |
|                                   | ``BatchesApplied``, ``HighestApplied``, ``n_<counter>``     |
| ``run|<run id>|batch|<0000042>``  | marker that batch 42 was applied: ``AppliedAt`` and the     |
|                                   | batch's own ``n_<counter>`` values                          |

Concurrency: every write is conditional. Replacing a row needs the ETag it was read with, and
creating one fails if it exists; a lost race is ``PreconditionFailed`` (re-read, decide again).

- The watermark only moves forward: a request to move it back is a ``DomainError`` (a stale
  reader must not re-open a window that later runs have closed), an equal value is a no-op so a
  repeated final step of an interrupted run succeeds.
- A batch is counted exactly once: its marker row is inserted and the run header updated in one
  transaction, conditional on the header's ETag. A redelivered batch finds its marker and changes
  nothing; two concurrent deliveries race on the header ETag and the loser sees the marker on
  re-read. The header's totals therefore never disagree with the markers.
- A run completes (status ``completed``, ``completed_now`` returned to exactly one caller) when
  publishing is done and ``BatchesApplied == BatchesPublished``, whichever of the reader's last
  ``record_published`` or the applier's last ``mark_batch_applied`` comes second.

Intended use by a sync: the reader takes the ``PageCursor`` if one exists (resume) or creates
one (``etag=None``: a second timer instance loses with ``PreconditionFailed``) together with
``start_run``; after each page it publishes, calls ``record_published(batches=n)`` and saves the
cursor; at the end ``record_published(done=True)``, ``advance_watermark(until)``, and deletes the
cursor. Each step is idempotent, so a run killed between any two of them finishes on the next
tick. The applier calls ``mark_batch_applied`` after its writes; whoever gets
``completed_now=True`` sets the schedule's status back to None. Run rows stay as history; a
retention job can delete ``run|`` rows older than it needs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from azure.core.credentials import TokenCredential
from azure.data.tables import TableClient, TableEntity

from shared.adapters.storage import codec
from shared.adapters.storage import run_header as headers
from shared.adapters.storage.rows import TableRows
from shared.config import StateSettings
from shared.errors import ConfigError, DomainError, NotFound, PreconditionFailed, System
from shared.services.ports import (
    BatchOutcome,
    C,
    RunState,
    RunStatus,
    RunUpdate,
    SyncKey,
    Versioned,
)

DEFAULT_TABLE = "syncstate"
WATERMARK_ROW = "watermark"
# Concurrent appliers of one run contend on its header: each attempt lets one of them through,
# so with ten sessions (more with several instances) eight attempts were sometimes not enough,
# and the batch's redelivery then found its records already written and counted them unchanged.
# Randomised back-off up to 1 s a try; if even this fails the error is retryable (redelivery).
_MAX_ATTEMPTS = 32
_MAX_BACK_OFF_S = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TableSyncStateStore:
    """``SyncStateStore`` on one Table Storage table; see the module docstring for the model."""

    def __init__(
        self,
        table: TableClient,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rows = TableRows(table)
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def from_settings(
        cls,
        settings: StateSettings,
        *,
        table_name: str = DEFAULT_TABLE,
        clock: Callable[[], datetime] = _utcnow,
    ) -> TableSyncStateStore:
        """The store on the configured storage account (connection string)."""
        if not settings.connection_string:
            raise ConfigError("sync state needs STATE_STORAGE_CONNECTION or AzureWebJobsStorage")
        # The SDK's own retries stay few: a function's time is better spent on redelivery.
        table = TableClient.from_connection_string(
            settings.connection_string, table_name, retry_total=3
        )
        return cls(table, clock=clock)

    @classmethod
    def from_endpoint(
        cls,
        table_endpoint: str,
        credential: TokenCredential,
        *,
        table_name: str = DEFAULT_TABLE,
        clock: Callable[[], datetime] = _utcnow,
    ) -> TableSyncStateStore:
        """The store reached with an identity (e.g. a managed identity's credential)."""
        table = TableClient(table_endpoint, table_name, credential=credential, retry_total=3)
        return cls(table, clock=clock)

    # --- watermark --------------------------------------------------------------------------
    def get_watermark(self, key: SyncKey) -> Versioned[datetime] | None:
        entity = self._rows.get(codec.partition_key(key), WATERMARK_ROW)
        if entity is None:
            return None
        return Versioned(codec.plain_utc(entity["Value"]), _etag(entity))

    def advance_watermark(
        self, key: SyncKey, to: datetime, *, etag: str | None
    ) -> Versioned[datetime]:
        partition = codec.partition_key(key)
        to = codec.plain_utc(codec.utc(to, "watermark"))
        current = self._rows.get(partition, WATERMARK_ROW)
        entity = {"PartitionKey": partition, "RowKey": WATERMARK_ROW, "Value": to}
        if current is None:
            if etag is not None:
                raise _lost("advance_watermark", "the watermark no longer exists")
            return Versioned(to, self._rows.create(entity))
        if etag != _etag(current):
            raise _lost("advance_watermark", "the watermark changed since it was read")
        stored = codec.plain_utc(current["Value"])
        if to < stored:
            raise DomainError(
                f"watermark of {key.account}/{key.sync_type} would move back from "
                f"{stored.isoformat()} to {to.isoformat()}"
            )
        if to == stored:
            return Versioned(stored, etag)
        return Versioned(to, self._rows.replace(entity, etag))

    # --- checkpoints ------------------------------------------------------------------------
    def get_checkpoint(self, key: SyncKey, kind: type[C]) -> Versioned[C] | None:
        entity = self._rows.get(codec.partition_key(key), codec.checkpoint_row_key(kind))
        if entity is None:
            return None
        return Versioned(codec.decode_checkpoint(kind, entity), _etag(entity))

    def save_checkpoint(self, key: SyncKey, value: C, *, etag: str | None) -> Versioned[C]:
        entity = {
            "PartitionKey": codec.partition_key(key),
            "RowKey": codec.checkpoint_row_key(type(value)),
            **codec.encode_checkpoint(value),
        }
        new_etag = self._rows.create(entity) if etag is None else self._rows.replace(entity, etag)
        return Versioned(value, new_etag)

    def delete_checkpoint(self, key: SyncKey, kind: type[C], *, etag: str) -> None:
        self._rows.delete(codec.partition_key(key), codec.checkpoint_row_key(kind), etag)

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
            return headers.run_from_entity(key, run_id, entity, self._rows.create(entity))
        except PreconditionFailed:
            existing, _ = self._load_run(key, run_id, "start_run")
        if (existing.since, existing.until, existing.dry_run) != (since, until, bool(dry_run)):
            raise DomainError(f"run {run_id} already exists with another window or mode")
        return existing

    def get_run(self, key: SyncKey, run_id: str) -> RunState | None:
        entity = self._rows.get(codec.partition_key(key), headers.run_row_key(run_id))
        if entity is None:
            return None
        return headers.run_from_entity(key, run_id, entity, _etag(entity))

    def record_published(
        self, key: SyncKey, run_id: str, *, batches: int, done: bool = False
    ) -> RunUpdate:
        codec.check_count("batch count", batches)
        for attempt in range(_MAX_ATTEMPTS):
            run, highest = self._load_run(key, run_id, "record_published")
            published = max(run.batches_published, batches)
            if run.status is not RunStatus.PUBLISHING and batches > run.batches_published:
                raise DomainError(f"run {run_id} finished publishing at {run.batches_published}")
            status = run.status
            if status is RunStatus.PUBLISHING and done:
                if highest >= published:
                    raise DomainError(f"run {run_id} has applied batch {highest}, beyond the "
                                      f"{published} published")
                complete = run.batches_applied == published
                status = RunStatus.COMPLETED if complete else RunStatus.APPLYING
            if (status, published) == (run.status, run.batches_published):
                return RunUpdate(run, completed_now=False)
            entity = headers.header_entity(
                run, highest, status=status, published=published,
                completed_at=self._now_if(status),
            )
            try:
                etag = self._rows.replace(entity, run.etag)
            except PreconditionFailed:
                self._back_off(attempt)
                continue
            return RunUpdate(headers.run_from_entity(key, run_id, entity, etag),
                             completed_now=status is RunStatus.COMPLETED)
        raise _lost("record_published", f"run {run_id} kept changing; try again")

    def mark_batch_applied(
        self, key: SyncKey, run_id: str, batch: int, counters: Mapping[str, int]
    ) -> BatchOutcome:
        codec.check_batch_number(batch)
        counts = codec.check_counters(counters)
        partition = codec.partition_key(key)
        marker_row = f"{headers.run_row_key(run_id)}|batch|{batch:07d}"
        for attempt in range(_MAX_ATTEMPTS):
            run, highest = self._load_run(key, run_id, "mark_batch_applied")
            if self._rows.get(partition, marker_row) is not None:
                return BatchOutcome(applied_now=False, run=run, completed_now=False)
            if run.status is not RunStatus.PUBLISHING and batch >= run.batches_published:
                raise DomainError(
                    f"batch {batch} is beyond run {run_id}'s last batch {run.batches_published - 1}"
                )
            applied = run.batches_applied + 1
            complete = run.status is RunStatus.APPLYING and applied == run.batches_published
            status = RunStatus.COMPLETED if complete else run.status
            totals = {name: run.counters.get(name, 0) + counts.get(name, 0)
                      for name in sorted({*run.counters, *counts})}
            header = headers.header_entity(
                run, max(highest, batch), status=status, applied=applied, counters=totals,
                completed_at=self._now_if(status),
            )
            marker = {"PartitionKey": partition, "RowKey": marker_row,
                      "AppliedAt": codec.utc(self._clock(), "clock"),
                      **headers.counter_properties(counts)}
            try:
                etag = self._rows.create_and_replace(marker, header, run.etag)
            except PreconditionFailed:
                self._back_off(attempt)  # re-read: either a redelivery won, or another batch did
                continue
            applied_run = headers.run_from_entity(key, run_id, header, etag)
            return BatchOutcome(applied_now=True, run=applied_run, completed_now=complete)
        raise _lost("mark_batch_applied", f"run {run_id} kept changing; try again")

    # --- helpers ----------------------------------------------------------------------------
    def _load_run(self, key: SyncKey, run_id: str, operation: str) -> tuple[RunState, int]:
        """The run and the highest batch number applied so far (-1 for none)."""
        entity = self._rows.get(codec.partition_key(key), headers.run_row_key(run_id))
        if entity is None:
            raise NotFound(System.TABLES, f"run {run_id} of {key.account}/{key.sync_type} "
                           "is unknown", operation=operation)
        run = headers.run_from_entity(key, run_id, entity, _etag(entity))
        return run, codec.read_int(entity, headers.HIGHEST_APPLIED)

    def _now_if(self, status: RunStatus) -> datetime | None:
        return codec.utc(self._clock(), "clock") if status is RunStatus.COMPLETED else None

    def _back_off(self, attempt: int) -> None:
        self._sleep(min(0.02 * 2**attempt, _MAX_BACK_OFF_S) * random.random())


def _etag(entity: TableEntity) -> str:
    return str(entity.metadata["etag"])


def _lost(operation: str, detail: str) -> PreconditionFailed:
    return PreconditionFailed(System.TABLES, detail, operation=operation)
