"""Rows of every table, kept in Web API read shape, with lookup indexes keyed by collation.

Rows are never mutated in place: a write stores a new dict. That keeps the undo journal cheap
(it holds the previous dict) and lets a change set or a bulk message roll back exactly. Callers
hold the emulator lock around every method here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from emulators.dataverse.query import DEFAULT_COLLATION, Collation
from emulators.dataverse.schema import Schema, Table

Row = dict[str, Any]


class TableRows:
    """One table's rows by primary key, plus an index per looked-up column.

    An index maps the collation key of a value to the rows holding it, so a lookup finds
    exactly what a scan comparing under that collation would (``josé`` and ``JOSE `` share
    ``jose`` under CI_AI). Each value is keyed once, when its row is stored.
    """

    def __init__(self, table: Table, collation: Collation = DEFAULT_COLLATION) -> None:
        self.table = table
        self.rows: dict[str, Row] = {}
        self._sequence: dict[str, int] = {}
        self._next_sequence = 0
        self.indexed = tuple(
            column.read_name for column in table.columns.values()
            if column.indexed or column.type == "lookup"
        )
        self.collation = collation
        self._collate: Callable[[str], str] = collation.key
        self._indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self.indexed}

    def retable(self, table: Table) -> None:
        """Follow a metadata change of the table: rows lose the properties of removed columns
        and read a new column as null; indexes cover the new lookup and indexed columns."""
        names = set(table.read_columns)
        for key, row in list(self.rows.items()):
            kept = {name: value for name, value in row.items() if name in names}
            kept.update({name: None for name in names if name not in kept})
            self.rows[key] = kept
        self.table = table
        self.indexed = tuple(
            column.read_name for column in table.columns.values()
            if column.indexed or column.type == "lookup"
        )
        self.recollate(self.collation)

    def recollate(self, collation: Collation) -> None:
        """Re-key every index for ``collation``: keys of another one would miss or over-match."""
        self.collation = collation
        self._collate = collation.key
        self._indexes = {name: {} for name in self.indexed}
        for key, row in self.rows.items():
            self._index(key, row)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, key: str) -> Row | None:
        return self.rows.get(key)

    def put(self, row: Row) -> Row | None:
        """Insert or replace by primary key; returns the previous row."""
        key = row[self.table.primary_key]
        previous = self.rows.get(key)
        if previous is not None:
            self._unindex(key, previous)
        else:
            self._sequence[key] = self._next_sequence
            self._next_sequence += 1
        self.rows[key] = row
        self._index(key, row)
        return previous

    def remove(self, key: str) -> Row | None:
        previous = self.rows.pop(key, None)
        if previous is not None:
            self._unindex(key, previous)
            del self._sequence[key]
        return previous

    def candidates(self, column: str, values: Iterable[str]) -> list[Row] | None:
        """Rows whose ``column`` equals one of ``values`` under the collation, in insertion
        order; ``None`` when the column has no index (the caller scans instead). Values may be
        raw or already collation keys (keying a key changes nothing)."""
        index = self._indexes.get(column)
        if index is None:
            return None
        collate = self._collate
        keys: set[str] = set()
        for value in values:
            keys.update(index.get(collate(value), ()))
        return [self.rows[key] for key in sorted(keys, key=self._sequence.__getitem__)]

    def _index(self, key: str, row: Row) -> None:
        for name in self.indexed:
            value = row.get(name)
            if isinstance(value, str):
                self._indexes[name].setdefault(self._collate(value), set()).add(key)

    def _unindex(self, key: str, row: Row) -> None:
        for name in self.indexed:
            value = row.get(name)
            if isinstance(value, str):
                collated = self._collate(value)
                bucket = self._indexes[name].get(collated)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del self._indexes[name][collated]


class DataStore:
    """All tables, the row version counter and the undo journal of the open transaction."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.collation = DEFAULT_COLLATION
        self.tables = {name: TableRows(table) for name, table in schema.tables.items()}
        self._version = 1_000_000
        self._journal: list[tuple[TableRows, str, Row | None]] | None = None

    @property
    def in_transaction(self) -> bool:
        return self._journal is not None

    def next_version(self) -> int:
        # One counter for every table, like SQL rowversion: a higher number is a later write.
        self._version += 1
        return self._version

    def raise_version_floor(self, version: int) -> None:
        self._version = max(self._version, version)

    def put(self, logical_name: str, row: Row) -> None:
        rows = self.tables[logical_name]
        previous = rows.put(row)
        if self._journal is not None:
            self._journal.append((rows, row[rows.table.primary_key], previous))

    def remove(self, logical_name: str, key: str) -> Row | None:
        rows = self.tables[logical_name]
        previous = rows.remove(key)
        if previous is not None and self._journal is not None:
            self._journal.append((rows, key, previous))
        return previous

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside either stay or, when an exception leaves the block, are undone.
        Nested blocks join the outer transaction."""
        if self._journal is not None:
            yield
            return
        self._journal = []
        try:
            yield
        except BaseException:
            self._rollback(self._journal)
            raise
        finally:
            self._journal = None

    @staticmethod
    def _rollback(journal: list[tuple[TableRows, str, Row | None]]) -> None:
        for rows, key, previous in reversed(journal):
            if previous is None:
                rows.remove(key)
            else:
                rows.put(previous)

    def use_schema(self, schema: Schema) -> None:
        """Tables of ``schema`` from now on: rows of a table that stays are kept (see
        ``TableRows.retable``), rows of a removed table are gone. Not part of a transaction."""
        tables: dict[str, TableRows] = {}
        for name, table in schema.tables.items():
            rows = self.tables.get(name)
            if rows is None:
                rows = TableRows(table, self.collation)
            elif rows.table is not table:
                rows.retable(table)
            tables[name] = rows
        self.schema = schema
        self.tables = tables

    def use_collation(self, collation: Collation) -> None:
        """Compare (and index) strings under ``collation`` from now on."""
        if collation == self.collation:
            return
        self.collation = collation
        for rows in self.tables.values():
            rows.recollate(collation)

    def clear(self) -> None:
        self.tables = {
            name: TableRows(table, self.collation) for name, table in self.schema.tables.items()
        }
