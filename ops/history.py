"""Runs as the sync state store records them, read for the console.

Per email account and sync type (one partition, ``<account>|<sync type>``, dry runs under
``<sync type>.dry``), a header row ``run|<run id>`` per run and an outcome row
``run|<run id>|batch|<n>`` per batch applied or given up (``shared/adapters/storage/
sync_state.py``). A run's id is the sync cycle's that started it, so one id names the runs of
every account and sync type that cycle started, and the run journal's row of that cycle tells
what the timer did. Reads only, and never creates a table.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableServiceClient

from ops.errors import UsageError
from ops.syncs import KINDS, SyncKind, kind_of_partition
from shared.adapters.storage import codec
from shared.adapters.storage.errors import table_error
from shared.adapters.storage.run_header import (
    BATCH_INFIX,
    read_counters,
    run_from_entity,
    run_row_key,
)
from shared.adapters.storage.run_journal import TABLE_NAME as JOURNAL_TABLE
from shared.adapters.storage.sync_state import DEFAULT_TABLE as STATE_TABLE
from shared.services.ports import RunState, RunStatus, SyncKey, SyncStateStore

CYCLE_KIND = "sync-cycle"  # the run journal's partition of the timer's cycles


@dataclass(frozen=True)
class RunRecord:
    kind: SyncKind
    account_id: str
    dry_run: bool
    state: RunState

    @property
    def run_id(self) -> str:
        return self.state.run_id


@dataclass(frozen=True)
class BatchRecord:
    number: int
    applied_at: dt.datetime | None  # None: published and not applied yet
    counters: Mapping[str, int]

    @property
    def outcome(self) -> str:
        """``waiting`` (on its queue), ``applied``, or ``failed`` (given up: its items counted
        as failed, the message dead-lettered)."""
        if self.applied_at is None:
            return "waiting"
        return "failed" if self.counters.get("failed", 0) else "applied"


class RunHistory:
    def __init__(self, tables: TableServiceClient, state: SyncStateStore) -> None:
        self._state_table = tables.get_table_client(STATE_TABLE)
        self._journal = tables.get_table_client(JOURNAL_TABLE)
        self._state = state

    def runs(
        self, *, accounts: Collection[str] | None = None,
        kinds: Collection[SyncKind] | None = None,
    ) -> list[RunRecord]:
        """Every run (header rows only) of these accounts and sync kinds, newest first."""
        header = "RowKey ge @low and RowKey lt @high and Status gt @blank"
        # Outcome rows have no Status: the filter leaves them on the server.
        parameters: dict[str, Any] = {"low": "run|", "high": "run}", "blank": ""}
        if accounts is None:
            rows = _query(self._state_table, header, parameters)
        else:
            rows = []
            for account in accounts:
                for kind in kinds or KINDS.values():
                    for dry_run in (False, True):
                        partition = codec.partition_key(kind.key(account, dry_run=dry_run))
                        rows += _query(self._state_table, f"PartitionKey eq @pk and {header}",
                                       {**parameters, "pk": partition})
        found = [record for row in rows if (record := self._record(row)) is not None
                 and (kinds is None or record.kind in kinds)]
        return sorted(found, key=lambda r: (r.state.started_at, r.run_id), reverse=True)

    def find(self, run_id: str) -> list[tuple[RunRecord, list[BatchRecord]]]:
        """Every run with this id (one per account and sync type the cycle started) with its
        batches; empty when none is recorded."""
        try:
            header_key = run_row_key(run_id)
        except ValueError as error:
            raise UsageError(str(error)) from None
        rows = _query(self._state_table, "RowKey ge @low and RowKey lt @high",
                      {"low": header_key, "high": header_key + "}"})
        by_partition: dict[str, list[TableEntity]] = {}
        for row in rows:
            row_key = str(row["RowKey"])
            if row_key == header_key or row_key.startswith(header_key + BATCH_INFIX):
                by_partition.setdefault(str(row["PartitionKey"]), []).append(row)
        found = []
        for members in by_partition.values():
            head = next((row for row in members if row["RowKey"] == header_key), None)
            record = None if head is None else self._record(head)
            if record is not None:
                outcomes = [row for row in members if row is not head]
                found.append((record, _batches(record.state, outcomes)))
        return sorted(found, key=lambda item: (item[0].account_id, item[0].kind.sync_type))

    def cycle(self, run_id: str) -> dict[str, Any] | None:
        """The run journal's summary of the sync cycle with this id; None if there is none."""
        try:
            row = self._journal.get_entity(CYCLE_KIND, run_id)
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise table_error(error, "read run journal") from error
        summary = json.loads(str(row.get("Summary") or "{}"))
        return summary if isinstance(summary, dict) else None

    def _record(self, row: TableEntity) -> RunRecord | None:
        account, _, sync_part = str(row["PartitionKey"]).partition("|")
        found = kind_of_partition(sync_part)
        if found is None:
            return None
        kind, dry_run = found
        run_id = str(row["RowKey"]).removeprefix("run|")
        key = SyncKey(account, sync_part)
        state = run_from_entity(key, run_id, row, str(row.metadata["etag"]), None)
        if state.status is not RunStatus.COMPLETED:
            # An open run's totals are the sum of its outcome rows, as the store adds them up.
            state = self._state.get_run(key, run_id) or state
        return RunRecord(kind, account, dry_run, state)


def _batches(run: RunState, outcomes: list[TableEntity]) -> list[BatchRecord]:
    applied = {int(str(row["RowKey"]).rsplit("|", 1)[1]): row for row in outcomes}
    count = max(run.batches_published, max(applied, default=-1) + 1)
    batches = []
    for number in range(count):
        row = applied.get(number)
        batches.append(BatchRecord(
            number,
            None if row is None else codec.plain_utc(row["AppliedAt"]),
            {} if row is None else read_counters(row),
        ))
    return batches


def _query(table: TableClient, filter: str, parameters: Mapping[str, Any]) -> list[TableEntity]:
    try:
        return list(table.query_entities(filter, parameters=dict(parameters)))
    except ResourceNotFoundError:
        return []  # no table yet: nothing was ever recorded
    except AzureError as error:
        raise table_error(error, "query runs") from error
