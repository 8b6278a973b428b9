"""The one exception to "a batch's outcome row is written once": an operator replays a batch the
app gave up, and its run must count what the replay does instead.

When the app gives a batch up (dead-lettering it at once, or on its last delivery), it writes the
batch's outcome row with every item failed, and the run completes with that count. A replay
applied later would find the row, change no count, and the run would go on saying "1 failed" for
records that were in fact written. So before a replay is sent, the batch's given-up row is
deleted and a completed run is set back to ``applying``, in one entity-group transaction
conditional on both rows' ETags:

- the replay's delivery then writes the batch's real outcome row and completes the run again,
  with totals summed from its rows (and the schedule's Last Result rewritten): exact counts;
- should it fail again, it writes a given-up row again: the run is as it was;
- an applier completing the same run at that moment holds the header's old ETag, so its write
  fails and it recounts, finding the run open: no completion with a row missing;
- a row that shows the batch applied (a replay already delivered, or a dead letter of a batch
  that was applied before its lock was lost) is left alone: the replay changes no count.

The run must still exist: retention (``STATE_RETENTION_DAYS``) purges completed runs, and a
batch of a purged run is applied by its replay but counted in no run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

from shared.adapters.storage import codec
from shared.adapters.storage import run_header as headers
from shared.adapters.storage.errors import table_error
from shared.adapters.storage.rows import TableRows, etag_of
from shared.errors import PreconditionFailed, System
from shared.services.ports import RunStatus, SyncKey

_ATTEMPTS = 8  # a lost race means an applier or the reader wrote the header: read and try again


class BatchCount(Enum):
    """How the batch's run counted it before the replay."""

    RUN_GONE = "run_gone"  # the run was purged: the replay is counted in no run
    NOT_COUNTED = "not_counted"  # no outcome row yet: the run counts the replay
    APPLIED = "applied"  # counted as applied: the replay changes no count
    TAKEN_BACK = "taken_back"  # its given-up count was taken back: the run counts the replay


@dataclass(frozen=True)
class Reopening:
    count: BatchCount
    # With TAKEN_BACK: puts the run back as it was when the replay could not be sent; True if
    # it did, False if the run changed meanwhile (left open: a new replay closes it).
    undo: Callable[[], bool] | None = None


class BatchReopening:
    """Takes a given-up batch's count back out of its run, on the sync state table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table
        self._rows = TableRows(table)

    def reopen(self, key: SyncKey, run_id: str, batch: int) -> Reopening:
        partition = codec.partition_key(key)
        for _ in range(_ATTEMPTS):
            header = self._rows.get(partition, headers.run_row_key(run_id))
            if header is None:
                return Reopening(BatchCount.RUN_GONE)
            row = self._rows.get(partition, headers.batch_row_key(run_id, batch))
            if row is None:
                return Reopening(BatchCount.NOT_COUNTED)
            if not given_up(headers.read_counters(row)):
                return Reopening(BatchCount.APPLIED)
            reopened_etag = self._take_back(key, run_id, header, row)
            if reopened_etag is not None:
                return Reopening(BatchCount.TAKEN_BACK,
                                 undo=partial(self._put_back, header, row, reopened_etag))
        raise PreconditionFailed(System.TABLES, f"run {run_id} kept changing; try again",
                                 operation="reopen batch")

    def _take_back(
        self, key: SyncKey, run_id: str, header: TableEntity, row: TableEntity
    ) -> str | None:
        """Delete the given-up row and reopen the run at once; the reopened header's ETag, or
        None after a lost race."""
        run = headers.run_from_entity(key, run_id, header, etag_of(header), None)
        status = RunStatus.APPLYING if run.status is RunStatus.COMPLETED else run.status
        # Rewritten even when open: the new ETag makes a concurrent completion recount.
        reopened = headers.header_entity(run, status=status)
        written = self._transaction("reopen batch", [
            ("delete", row, {"etag": etag_of(row),
                             "match_condition": MatchConditions.IfNotModified}),
            ("update", reopened, {"mode": UpdateMode.REPLACE, "etag": etag_of(header),
                                  "match_condition": MatchConditions.IfNotModified}),
        ])
        return None if written is None else str(written[1]["etag"])

    def _put_back(self, header: TableEntity, row: TableEntity, reopened_etag: str) -> bool:
        written = self._transaction("put back batch", [
            ("create", dict(row), {}),
            ("update", dict(header), {"mode": UpdateMode.REPLACE, "etag": reopened_etag,
                                      "match_condition": MatchConditions.IfNotModified}),
        ])
        return written is not None

    def _transaction(
        self, operation: str, actions: list[tuple[str, dict[str, Any], dict[str, Any]]]
    ) -> list[Mapping[str, Any]] | None:
        """All of ``actions`` in one entity-group transaction; None when a condition failed."""
        try:
            return self._table.submit_transaction(actions)
        except TableTransactionError as error:
            if error.status_code in (404, 409, 412):
                return None
            raise table_error(error, operation) from error
        except AzureError as error:
            raise table_error(error, operation) from error


def given_up(counters: Mapping[str, int]) -> bool:
    """Whether an outcome row is one the app wrote when it gave the batch up (every item
    failed); an applied batch never counts an item as failed."""
    return counters.get("failed", 0) > 0
