"""One Table Storage table as rows with ETags: typed errors, and created lazily once per process."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TransactionOperation, UpdateMode

from shared.adapters.storage.errors import table_error

_created: set[str] = set()
_created_lock = threading.Lock()


def etag_of(entity: TableEntity) -> str:
    """The ETag a row was read with, for a write conditional on it."""
    return str(entity.metadata["etag"])


class TableRows:
    """Conditional reads and writes on one table; every failure is an ``IntegrationError``."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @property
    def name(self) -> str:
        return str(self._table.table_name)

    def ensure_table(self) -> None:
        # Creating on every call would cost a request per operation; the set makes it once per
        # process and table (a table deleted behind our back is an operator's error).
        table_id = f"{self._table.url}#{self._table.table_name}"
        if table_id in _created:
            return
        with _created_lock:
            if table_id in _created:
                return
            try:
                self._table.create_table()
            except ResourceExistsError:
                pass
            except AzureError as error:
                raise table_error(error, "create_table") from error
            _created.add(table_id)

    def get(self, partition: str, row: str) -> TableEntity | None:
        self.ensure_table()
        try:
            return self._table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise table_error(error, "get_entity") from error

    def create(self, entity: Mapping[str, Any]) -> str:
        """Insert; ``PreconditionFailed`` if the row exists. Returns the new ETag."""
        self.ensure_table()
        try:
            return str(self._table.create_entity(entity)["etag"])
        except AzureError as error:
            raise table_error(error, "create_entity") from error

    def replace(self, entity: Mapping[str, Any], etag: str) -> str:
        """Replace if ``etag`` still matches, else ``PreconditionFailed``. Returns the new ETag."""
        self.ensure_table()
        try:
            metadata = self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceNotFoundError as error:
            # The row was deleted since it was read: for the caller, its ETag no longer matches.
            raise table_error(ResourceExistsError(error.message), "update_entity") from error
        except AzureError as error:
            raise table_error(error, "update_entity") from error
        return str(metadata["etag"])

    def delete(self, partition: str, row: str, etag: str) -> None:
        """Delete if ``etag`` still matches; a row that is already gone is fine."""
        self.ensure_table()
        try:
            self._table.delete_entity(
                partition, row, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceNotFoundError:
            pass
        except AzureError as error:
            raise table_error(error, "delete_entity") from error

    def query(
        self, filter: str, parameters: Mapping[str, Any], *, select: Sequence[str] | None = None
    ) -> list[TableEntity]:
        """Every row matching ``filter`` (an OData filter with ``@name`` parameters)."""
        self.ensure_table()
        try:
            return list(self._table.query_entities(filter, parameters=dict(parameters),
                                                   select=list(select) if select else None))
        except AzureError as error:
            raise table_error(error, "query_entities") from error

    def delete_rows(self, partition: str, rows: Sequence[str]) -> None:
        """Delete rows of one partition unconditionally, up to 100 per transaction; rows that
        are already gone are fine."""
        self.ensure_table()
        for start in range(0, len(rows), 100):
            chunk = rows[start : start + 100]
            try:
                self._table.submit_transaction(
                    [(TransactionOperation.DELETE, {"PartitionKey": partition, "RowKey": row})
                     for row in chunk]
                )
            except AzureError:
                # A transaction fails whole when one row is missing: delete one by one instead.
                for row in chunk:
                    try:
                        self._table.delete_entity(partition, row)
                    except ResourceNotFoundError:
                        pass
                    except AzureError as error:
                        raise table_error(error, "delete_entity") from error
