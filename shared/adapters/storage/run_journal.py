"""``RunJournal`` on Azure Table Storage: one row per run, partitioned by kind.

RowKey is the run id (time-ordered ids sort oldest first). The summary is stored as JSON in
one property; Table Storage caps a string property at 64 KiB, which a summary stays well within.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from azure.core.exceptions import AzureError
from azure.data.tables import TableServiceClient, UpdateMode

from shared.adapters.storage import codec
from shared.adapters.storage.errors import table_error
from shared.adapters.storage.rows import TableRows

TABLE_NAME = "connectorruns"


class TableRunJournal:
    def __init__(self, service: TableServiceClient, table_name: str = TABLE_NAME) -> None:
        self._table = service.get_table_client(table_name)
        self._rows = TableRows(self._table)

    def record(self, run_id: str, kind: str, summary: Mapping[str, object]) -> None:
        self._rows.ensure_table()
        entity = {"PartitionKey": kind, "RowKey": run_id, "Summary": json.dumps(summary)}
        try:
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as error:
            raise table_error(error, "record run") from error

    def purge(self, before: datetime) -> int:
        # Run ids begin with their start time (YYYYmmddTHHMMSS), so older runs sort lower.
        bound = f"{codec.utc(before, 'before'):%Y%m%dT%H%M%S}"
        rows = self._rows.query("RowKey lt @bound", {"bound": bound},
                                select=["PartitionKey", "RowKey"])
        by_kind: dict[str, list[str]] = {}
        for row in rows:
            by_kind.setdefault(str(row["PartitionKey"]), []).append(str(row["RowKey"]))
        for kind, run_ids in by_kind.items():
            self._rows.delete_rows(kind, run_ids)
        return sum(len(run_ids) for run_ids in by_kind.values())

    def runs(self, kind: str) -> list[dict[str, object]]:
        self._rows.ensure_table()
        try:
            rows = self._table.query_entities("PartitionKey eq @kind", parameters={"kind": kind})
            return [{"run_id": row["RowKey"], **json.loads(row["Summary"])} for row in rows]
        except AzureError as error:
            raise table_error(error, "read runs") from error
