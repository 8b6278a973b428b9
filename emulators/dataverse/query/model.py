"""What the server hands the engine (``TableInfo``) and what the engine hands back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.dataverse.query.collation import DEFAULT_COLLATION, Collation

# column logical name -> one of COLUMN_TYPES. Lookups appear under their read names
# ("_ec_emailaccountid_value": "guid"); the primary key is a "guid".
ColumnTypes = Mapping[str, str]

EDM_TYPES: Mapping[str, str] = {
    "string": "Edm.String",
    "memo": "Edm.String",
    "guid": "Edm.Guid",
    "int": "Edm.Int32",
    "bigint": "Edm.Int64",
    "decimal": "Edm.Decimal",
    "float": "Edm.Double",
    "money": "Edm.Decimal",
    "bool": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset",
    "dateonly": "Edm.Date",
    "choice": "Edm.Int32",
}
COLUMN_TYPES = frozenset(EDM_TYPES)
# Columns whose equality the server may answer from an index keyed by the collation key.
INDEXABLE_TYPES = frozenset({"string", "memo", "guid"})

Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class TableInfo:
    entity_set: str
    logical_name: str
    primary_key: str
    columns: ColumnTypes

    def __post_init__(self) -> None:
        unknown = {kind for kind in self.columns.values() if kind not in COLUMN_TYPES}
        if unknown:
            raise ValueError(f"unknown column types for {self.entity_set}: {sorted(unknown)}")
        if self.columns.get(self.primary_key) != "guid":
            raise ValueError(f"primary key {self.primary_key!r} must be a guid column")


@dataclass(frozen=True)
class QueryPlan:
    """A parsed query. ``table`` and ``collation`` travel with it so paging knows the key,
    the column types and how strings sort."""

    select: tuple[str, ...] | None
    predicate: Predicate | None
    orderby: tuple[tuple[str, bool], ...]
    top: int | None
    count: bool
    skiptoken: str | None
    # When set, the filter can only match rows whose column's collation key (GUIDs: lower-case
    # text) is in the set, so the server may read candidates from an index instead of scanning.
    index_hint: tuple[str, frozenset[str]] | None
    table: TableInfo = field(kw_only=True)
    collation: Collation = field(default=DEFAULT_COLLATION, kw_only=True)


@dataclass(frozen=True)
class QueryPage:
    rows: list[dict[str, Any]]
    next_skiptoken: str | None
    count: int | None
