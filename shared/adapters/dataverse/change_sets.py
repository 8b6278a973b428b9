"""Writes that stand or fall together: rows of several tables in one ``$batch`` change set.

Each table's rows go as one bulk message (``CreateMultiple`` / ``UpdateMultiple``, 1000 rows a
call), or, where a table refuses the message, as one POST or PATCH a row, all inside the change
set, which the service applies as one transaction. A single row always goes as a POST or PATCH:
a bulk message gains nothing for it. The client's ``BulkWriter`` remembers the tables that
refused a message (its own fallback reads the same memory); the change set that met the refusal
was rolled back whole and is sent again with that table's rows one by one.

A change set holds at most 1000 operations, which bulk messages never come near but rows sent
one by one can pass. So callers hand over *groups*, each the rows that must never be written
apart; consecutive groups share a change set while they fit, and a group that does not fit
starts the next one, sent as the next ``$batch`` once the one before it is written. A group that
fits no change set is refused before anything is sent.

New rows carry the primary key their caller chose, so a ``$batch`` sent again after its answer
was lost fails on the existing key (nothing is written twice) instead of creating copies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.adapters.dataverse import odata
from shared.adapters.dataverse.batch_format import BatchOperation, BatchPartResult, part_error
from shared.adapters.dataverse.bulk import (
    BULK_CHUNK,
    MAX_BATCH_OPERATIONS,
    BulkWriter,
    refuses_bulk,
)
from shared.errors import BadRequest, IntegrationError, System

CREATE = "CreateMultiple"
UPDATE = "UpdateMultiple"


@dataclass(frozen=True, slots=True)
class TableWrite:
    """Rows to create (``CREATE``) or update (``UPDATE``) in one table; every row carries its
    primary key."""

    message: str
    entity_set: str
    logical_name: str
    primary_key: str
    rows: Sequence[Mapping[str, Any]]


Slot = tuple[str, str]  # (entity set, message)
Group = Sequence[TableWrite]


class ChangeSetWriter:
    """The client's atomic writes (see the module's description)."""

    def __init__(self, bulk: BulkWriter, url: Callable[[str], str]) -> None:
        self._bulk = bulk
        self._url = url

    def write(self, groups: Sequence[Group]) -> None:
        """Write every group, in order: in one change set (one ``$batch``) when they fit."""
        pending = [list(group) for group in groups if any(write.rows for write in group)]
        while pending:
            count = self._fitting(pending)
            operations, bulk_calls = self._operations(pending[:count])
            results = self._bulk.post_batch([operations])
            failed = next((result for result in results if result.status >= 400), None)
            if failed is None and len(results) == len(operations):
                del pending[:count]
                continue
            if failed is None:
                raise BadRequest(
                    System.DATAVERSE, "the $batch answer lacks parts", operation="$batch"
                )
            error = part_error(failed)
            refused = _refused_call(failed, error, bulk_calls)
            if refused is None:
                raise error
            # The change set was rolled back: send it again with that table's rows one by one.
            self._bulk.refused(refused.entity_set, refused.message)

    def _fitting(self, pending: Sequence[Group]) -> int:
        """How many of the leading groups fit one change set (at least one, or raise)."""
        rows: dict[Slot, int] = {}
        for count, group in enumerate(pending):
            for write in group:
                slot = (write.entity_set, write.message)
                rows[slot] = rows.get(slot, 0) + len(write.rows)
            operations = sum(self._calls(slot, n) for slot, n in rows.items())
            if operations <= MAX_BATCH_OPERATIONS:
                continue
            if count == 0:
                raise BadRequest(
                    System.DATAVERSE,
                    f"{operations} operations must be written together, more than one change "
                    f"set holds ({MAX_BATCH_OPERATIONS})",
                    operation="$batch",
                )
            return count
        return len(pending)

    def _in_bulk(self, slot: Slot, rows: int) -> bool:
        return rows > 1 and self._bulk.takes(*slot)

    def _calls(self, slot: Slot, rows: int) -> int:
        return math.ceil(rows / BULK_CHUNK) if self._in_bulk(slot, rows) else rows

    def _operations(
        self, groups: Sequence[Group]
    ) -> tuple[list[BatchOperation], dict[str, TableWrite]]:
        """The change set's operations, one table and message after another in the order they
        first appear, and its bulk calls by ``Content-ID`` (``build_batch`` numbers the
        operations of the batch's only change set from 1)."""
        merged: dict[Slot, TableWrite] = {}
        rows: dict[Slot, list[Mapping[str, Any]]] = {}
        for group in groups:
            for write in group:
                slot = (write.entity_set, write.message)
                merged.setdefault(slot, write)
                rows.setdefault(slot, []).extend(write.rows)
        operations: list[BatchOperation] = []
        bulk_calls: dict[str, TableWrite] = {}
        for slot, write in merged.items():
            table_rows = rows[slot]
            if not self._in_bulk(slot, len(table_rows)):
                operations += [self._single(write, row) for row in table_rows]
                continue
            kind = f"Microsoft.Dynamics.CRM.{write.logical_name}"
            url = self._url(f"{write.entity_set}/Microsoft.Dynamics.CRM.{write.message}")
            for start in range(0, len(table_rows), BULK_CHUNK):
                targets = [{"@odata.type": kind, **row}
                           for row in table_rows[start : start + BULK_CHUNK]]
                operations.append(BatchOperation("POST", url, {"Targets": targets}))
                bulk_calls[str(len(operations))] = write
        return operations, bulk_calls

    def _single(self, write: TableWrite, row: Mapping[str, Any]) -> BatchOperation:
        if write.message == CREATE:
            return BatchOperation("POST", self._url(write.entity_set), dict(row))
        key = odata.guid_literal(str(row[write.primary_key]))
        changes = {name: value for name, value in row.items() if name != write.primary_key}
        # If-Match: a PATCH without it would create a row that was deleted meanwhile.
        return BatchOperation(
            "PATCH", self._url(f"{write.entity_set}({key})"), changes, {"If-Match": "*"}
        )


def _refused_call(
    failed: BatchPartResult, error: IntegrationError, bulk_calls: Mapping[str, TableWrite]
) -> TableWrite | None:
    """The bulk call whose table refused its message, or None when ``error`` is another one."""
    if not refuses_bulk(error):
        return None
    call = bulk_calls.get(failed.content_id or "")
    if call is not None:
        return call
    # An answer without its Content-ID: the service's message names the message and the table.
    named = {(write.entity_set, write.message): write for write in bulk_calls.values()
             if write.message in error.detail and f"'{write.logical_name}'" in error.detail}
    return next(iter(named.values())) if len(named) == 1 else None
