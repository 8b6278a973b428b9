"""The Dataverse tables of the connector, loaded from ``infra/dynamics/schema.json``.

The file is the single definition of the schema (its format is described in
``infra/dynamics/README.md``); this module reads and checks it and answers the questions the
emulator asks: which column is this property, which table does this navigation property bind to,
what is the read name of a lookup (``_<column>_value``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "infra" / "dynamics" / "schema.json"

COLUMN_TYPES = frozenset({
    "guid", "string", "memo", "int", "bigint", "decimal", "float", "money", "bool", "datetime",
    "dateonly", "choice", "state", "status", "lookup", "entityname",
})
# What the query engine calls each type: lookups are read as guids, state/status are choices.
QUERY_TYPES = {"state": "choice", "status": "choice", "lookup": "guid", "entityname": "string"}
REQUIRED_LEVELS = frozenset({"none", "recommended", "application"})
# Standard tables Dataverse ships as user-owned: they carry an ``ownerid`` the schema file does
# not list (it is a platform column provisioning never creates); the emulator adds it.
USER_OWNED_TABLES = ("account", "contact", "lead", "annotation")


@dataclass(frozen=True)
class ChoiceOption:
    value: int
    label: str
    state: int | None = None  # statuscode options belong to one statecode


@dataclass(frozen=True)
class LookupTarget:
    table: str
    navigation_property: str


@dataclass(frozen=True, eq=False)
class Column:
    name: str
    type: str
    schema_name: str
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    required: str = "none"
    read_only: bool = False
    indexed: bool = False
    default: Any = None
    options: tuple[ChoiceOption, ...] = ()
    choice: str | None = None
    targets: tuple[LookupTarget, ...] = ()
    type_column: str | None = None
    computed_from: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    format: str | None = None  # strings: ``email``, ``url``, ``text`` (a display hint)

    @property
    def read_name(self) -> str:
        """The property a GET returns: lookups come back as ``_<name>_value``."""
        return f"_{self.name}_value" if self.type == "lookup" else self.name

    @property
    def option_values(self) -> frozenset[int]:
        return frozenset(option.value for option in self.options)


@dataclass(frozen=True, eq=False)
class Table:
    logical_name: str
    schema_name: str
    entity_set: str
    display_name: str
    primary_key: str
    primary_name: str
    standard: bool
    has_notes: bool
    requires_app: str | None
    columns: Mapping[str, Column]
    navigation: Mapping[str, tuple[Column, LookupTarget]]

    @property
    def type_name(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical_name}"

    @property
    def read_columns(self) -> dict[str, str]:
        """Read name -> query type, for every property a row carries."""
        return {c.read_name: QUERY_TYPES.get(c.type, c.type) for c in self.columns.values()}

    @property
    def indexed_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns.values() if c.indexed)

    def column_by_read_name(self, read_name: str) -> Column | None:
        if read_name.startswith("_") and read_name.endswith("_value"):
            column = self.columns.get(read_name[1:-6])
            return column if column is not None and column.type == "lookup" else None
        column = self.columns.get(read_name)
        return column if column is not None and column.type != "lookup" else None


@dataclass(frozen=True, eq=False)
class Schema:
    tables: Mapping[str, Table]  # by logical name
    choices: Mapping[str, tuple[ChoiceOption, ...]]
    raw: Mapping[str, Any]

    def by_entity_set(self) -> dict[str, Table]:
        return {table.entity_set: table for table in self.tables.values()}

    @property
    def publisher_prefix(self) -> str:
        """The customization prefix of the connector's own tables, columns and choices."""
        return str(self.raw.get("publisher", {}).get("prefix", "ec"))

    @property
    def option_value_prefix(self) -> int:
        return int(self.raw.get("publisher", {}).get("option_value_prefix", 10000))


def load_schema(path: Path = SCHEMA_PATH) -> Schema:
    """Read and check the schema file; raises ``ValueError`` naming the first problem."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return parse_schema(raw)


def with_owner_columns(schema: Schema) -> Schema:
    """``schema`` with the platform's ``ownerid`` on the user-owned standard tables.

    The owner is a lookup to ``systemuser`` (read as ``_ownerid_value``), which the schema does
    not model: the column has no navigation property, is read-only to clients (the creator owns
    a new row) and seeds may set it as ``_ownerid_value``."""
    tables = dict(schema.tables)
    for name in USER_OWNED_TABLES:
        table = tables.get(name)
        if table is None or "ownerid" in table.columns:
            continue
        owner = Column(name="ownerid", type="lookup", schema_name="OwnerId", read_only=True)
        tables[name] = replace(table, columns={**table.columns, "ownerid": owner})
    return replace(schema, tables=tables)


def system_columns(schema: Schema) -> tuple[Column, ...]:
    """The columns every table has (``system_columns`` of the file), for tables created later."""
    return tuple(
        _column(spec, f"system_columns.{spec.get('name')}", schema.choices)
        for spec in schema.raw.get("system_columns", [])
    )


def parse_schema(raw: Mapping[str, Any]) -> Schema:
    if raw.get("format") != "dataverse-schema/1":
        raise ValueError("schema format must be 'dataverse-schema/1'")
    choices = {
        name: tuple(_option(o, f"choices.{name}") for o in spec["options"])
        for name, spec in raw.get("choices", {}).items()
    }
    system_columns = [dict(c) for c in raw.get("system_columns", [])]
    tables: dict[str, Table] = {}
    for spec in raw["tables"]:
        table = _table(spec, system_columns, choices)
        if table.logical_name in tables:
            raise ValueError(f"table {table.logical_name} is defined twice")
        tables[table.logical_name] = table
    for table in tables.values():
        for column in table.columns.values():
            for target in column.targets:
                if target.table not in tables:
                    raise ValueError(
                        f"{table.logical_name}.{column.name} targets unknown table {target.table}"
                    )
    sets = [t.entity_set for t in tables.values()]
    if len(set(sets)) != len(sets):
        raise ValueError("entity set names must be unique")
    return Schema(tables=tables, choices=choices, raw=raw)


def _table(
    spec: Mapping[str, Any], system_columns: list[dict[str, Any]],
    choices: Mapping[str, tuple[ChoiceOption, ...]],
) -> Table:
    name = spec["logical_name"]
    columns: dict[str, Column] = {}
    navigation: dict[str, tuple[Column, LookupTarget]] = {}
    for raw_column in [*spec["columns"], *system_columns]:
        column = _column(raw_column, f"{name}.{raw_column.get('name')}", choices)
        if column.name in columns:
            raise ValueError(f"column {name}.{column.name} is defined twice")
        columns[column.name] = column
        for target in column.targets:
            navigation[target.navigation_property] = (column, target)
    primary_key = spec["primary_key"]
    if columns.get(primary_key) is None or columns[primary_key].type != "guid":
        raise ValueError(f"{name}: primary key {primary_key} must be a guid column")
    if spec["primary_name"] not in columns:
        raise ValueError(f"{name}: primary name column {spec['primary_name']} is not defined")
    for column in columns.values():
        sources = [*column.computed_from, *([column.type_column] if column.type_column else [])]
        for source in sources:
            if source not in columns:
                raise ValueError(f"{name}.{column.name} refers to unknown column {source}")
    return Table(
        logical_name=name, schema_name=spec.get("schema_name", name),
        entity_set=spec["entity_set"], display_name=spec.get("display_name", name),
        primary_key=primary_key, primary_name=spec["primary_name"],
        standard=bool(spec.get("standard", False)), has_notes=bool(spec.get("has_notes", False)),
        requires_app=spec.get("requires_app"), columns=columns, navigation=navigation,
    )


def _column(
    spec: Mapping[str, Any], where: str, choices: Mapping[str, tuple[ChoiceOption, ...]]
) -> Column:
    kind = spec.get("type")
    if kind not in COLUMN_TYPES:
        raise ValueError(f"{where}: unknown column type {kind!r}")
    required = spec.get("required", "none")
    if required not in REQUIRED_LEVELS:
        raise ValueError(f"{where}: required must be one of {sorted(REQUIRED_LEVELS)}")
    options: tuple[ChoiceOption, ...] = ()
    choice = spec.get("choice")
    if kind == "choice":
        if not isinstance(choice, str) or choice not in choices:
            raise ValueError(f"{where}: unknown choice {choice!r}")
        options = choices[choice]
    elif kind in ("state", "status"):
        options = tuple(_option(o, where) for o in spec.get("options", []))
        if not options:
            raise ValueError(f"{where}: {kind} columns need options")
    targets = tuple(
        LookupTarget(table=t["table"], navigation_property=t["navigation_property"])
        for t in spec.get("targets", [])
    )
    if (kind == "lookup") != bool(targets):
        raise ValueError(f"{where}: lookups, and only lookups, have targets")
    if len(targets) > 1 and not spec.get("type_column"):
        raise ValueError(f"{where}: a polymorphic lookup needs a type_column")
    return Column(
        name=spec["name"], type=kind, schema_name=spec.get("schema_name", spec["name"]),
        max_length=spec.get("max_length"), min_value=spec.get("min_value"),
        max_value=spec.get("max_value"), required=required,
        read_only=bool(spec.get("read_only", False)), indexed=bool(spec.get("indexed", False)),
        default=spec.get("default"), options=options, choice=choice, targets=targets,
        type_column=spec.get("type_column"), computed_from=tuple(spec.get("computed_from", ())),
        labels=dict(spec.get("labels", {})),
        format=spec.get("format"),
    )


def _option(spec: Mapping[str, Any], where: str) -> ChoiceOption:
    value = spec.get("value")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}: option values are integers")
    return ChoiceOption(value=value, label=str(spec["label"]), state=spec.get("state"))
