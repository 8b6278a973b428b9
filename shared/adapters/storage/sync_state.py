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
|                                   | ``StartedAt``, ``BatchesPublished``; once completed also    |
|                                   | ``CompletedAt``, ``BatchesApplied`` and the ``n_<counter>`` |
|                                   | totals                                                      |
| ``run|<run id>|batch|<0000042>``  | batch 42's outcome: ``AppliedAt`` and its ``n_<counter>``s  |

Concurrency: every write is conditional. Replacing a row needs the ETag it was read with, and
creating one fails if it exists; a lost race is ``PreconditionFailed`` (re-read, decide again).

- The watermark only moves forward: a request to move it back is a ``DomainError`` (a stale
  reader must not re-open a window that later runs have closed), an equal value is a no-op so a
  repeated final step of an interrupted run succeeds.
- A batch is counted exactly once, by construction: its outcome row is inserted once (a
  redelivery finds it and changes nothing) and never updated, and appliers never write the
  header while the run is open, so concurrent appliers cannot lose each other's counts. An open
  run's totals are the sum of its outcome rows; the completion writes that sum into the header.
- A run completes (status ``completed``, ``completed_now`` returned to exactly one caller) when
  publishing is done and every published batch has its outcome row. Either side may see that
  moment last: the applier counts the outcome rows after inserting its own and reading the
  header, the reader counts them again after writing ``applying``, so one of them always does,
  and the conditional header write lets exactly one of them complete the run.
- ``purge_runs`` deletes completed runs older than the retention period (an app setting); the
  watermark, checkpoints and open runs are never purged.

Intended use by a sync: the reader takes the ``PageCursor`` if one exists (resume) or creates
one (``etag=None``: a second timer instance loses with ``PreconditionFailed``) together with
``start_run``; after each page it publishes, calls ``record_published(batches=n)`` and saves the
cursor; at the end ``record_published(done=True)``, ``advance_watermark(until)``, and deletes the
cursor. Each step is idempotent, so a run killed between any two of them finishes on the next
tick. The applier calls ``mark_batch_applied`` after its writes; whoever gets
``completed_now=True`` sets the schedule's status back to None.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from azure.data.tables import TableClient

from shared.adapters.storage import codec
from shared.adapters.storage.account import table_service
from shared.adapters.storage.rows import TableRows, etag_of
from shared.adapters.storage.runs import TableRuns
from shared.config import StateSettings
from shared.errors import DomainError, PreconditionFailed, System
from shared.services.ports import (
    C,
    SyncKey,
    Versioned,
)

DEFAULT_TABLE = "syncstate"
WATERMARK_ROW = "watermark"
def _utcnow() -> datetime:
    return datetime.now(UTC)


class TableSyncStateStore(TableRuns):
    """``SyncStateStore`` on one Table Storage table; see the module docstring for the model."""

    def __init__(
        self,
        table: TableClient,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(TableRows(table), clock=clock, sleep=sleep)

    @classmethod
    def from_settings(
        cls,
        settings: StateSettings,
        *,
        table_name: str = DEFAULT_TABLE,
        clock: Callable[[], datetime] = _utcnow,
    ) -> TableSyncStateStore:
        """The store on the storage account of the settings' connection string (the deployed
        app's, reached with the managed identity, is built on the composition root's one table
        service)."""
        return cls(table_service(settings).get_table_client(table_name), clock=clock)

    # --- watermark --------------------------------------------------------------------------
    def get_watermark(self, key: SyncKey) -> Versioned[datetime] | None:
        entity = self._rows.get(codec.partition_key(key), WATERMARK_ROW)
        if entity is None:
            return None
        return Versioned(codec.plain_utc(entity["Value"]), etag_of(entity))

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
        if etag != etag_of(current):
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
        return Versioned(codec.decode_checkpoint(kind, entity), etag_of(entity))

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


def _lost(operation: str, detail: str) -> PreconditionFailed:
    return PreconditionFailed(System.TABLES, detail, operation=operation)
