"""``RunJournal`` on Azure Table Storage: one row per run, partitioned by kind.

RowKey is the run id (time-ordered ids sort oldest first). The summary is stored as JSON in
one property; Table Storage caps a string property at 64 KiB, which a summary stays well within.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.data.tables import TableServiceClient, UpdateMode

from shared.errors import IntegrationError, System, TransientError

TABLE_NAME = "connectorruns"


class TableRunJournal:
    def __init__(self, service: TableServiceClient, table_name: str = TABLE_NAME) -> None:
        self._service = service
        self._table_name = table_name
        self._ready = False
        self._lock = threading.Lock()

    def _table(self) -> Any:
        with self._lock:
            if not self._ready:
                try:
                    self._service.create_table(self._table_name)
                except ResourceExistsError:
                    pass
                except AzureError as exc:
                    raise _error(exc, "create table") from exc
                self._ready = True
        return self._service.get_table_client(self._table_name)

    def record(self, run_id: str, kind: str, summary: Mapping[str, object]) -> None:
        entity = {"PartitionKey": kind, "RowKey": run_id, "Summary": json.dumps(summary)}
        try:
            self._table().upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as exc:
            raise _error(exc, "record run") from exc

    def runs(self, kind: str) -> list[dict[str, object]]:
        try:
            rows = self._table().query_entities("PartitionKey eq @kind", parameters={"kind": kind})
            return [{"run_id": row["RowKey"], **json.loads(row["Summary"])} for row in rows]
        except AzureError as exc:
            raise _error(exc, "read runs") from exc


def _error(exc: AzureError, operation: str) -> IntegrationError:
    return TransientError(System.TABLES, type(exc).__name__, operation=operation)
