"""New schemas from old ones: a table, a column, a choice or Notes added, changed or removed.

Schemas are immutable; each function returns a new one that ``DataverseApi.replace_schema`` puts
in place, so the data API sees a metadata change at once and whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from emulators.dataverse.schema import ChoiceOption, Column, LookupTarget, Schema, Table

NOTES_TABLE = "annotation"
NOTES_COLUMN = "objectid"


def rebuilt(table: Table, columns: Mapping[str, Column]) -> Table:
    """``table`` with ``columns`` (and the navigation properties they declare)."""
    navigation: dict[str, tuple[Column, LookupTarget]] = {}
    for column in columns.values():
        for target in column.targets:
            navigation[target.navigation_property] = (column, target)
    return replace(table, columns=dict(columns), navigation=navigation)


def with_table(schema: Schema, table: Table) -> Schema:
    return replace(schema, tables={**schema.tables, table.logical_name: table})


def with_column(schema: Schema, table_name: str, column: Column) -> Schema:
    """Add ``column`` to the table, or replace the column of the same name."""
    table = schema.tables[table_name]
    return with_table(schema, rebuilt(table, {**table.columns, column.name: column}))


def without_column(schema: Schema, table_name: str, column_name: str) -> Schema:
    table = schema.tables[table_name]
    columns = {name: column for name, column in table.columns.items() if name != column_name}
    return with_table(schema, rebuilt(table, columns))


def with_choice(schema: Schema, name: str, options: Iterable[ChoiceOption]) -> Schema:
    """The global choice ``name`` with ``options``; every column using it follows."""
    kept = tuple(options)
    tables = {
        table_name: rebuilt(table, {
            column_name: replace(column, options=kept) if column.choice == name else column
            for column_name, column in table.columns.items()
        }) if any(column.choice == name for column in table.columns.values()) else table
        for table_name, table in schema.tables.items()
    }
    return replace(schema, tables=tables, choices={**schema.choices, name: kept})


def with_notes(schema: Schema, table_name: str) -> Schema:
    """Notes on ``table_name``: ``annotation.objectid`` gets ``objectid_<table>`` as a target."""
    schema = with_table(schema, replace(schema.tables[table_name], has_notes=True))
    notes = schema.tables.get(NOTES_TABLE)
    column = notes.columns.get(NOTES_COLUMN) if notes is not None else None
    if notes is None or column is None or any(t.table == table_name for t in column.targets):
        return schema
    target = LookupTarget(table=table_name, navigation_property=f"objectid_{table_name}")
    return with_column(schema, NOTES_TABLE, replace(column, targets=(*column.targets, target)))


def standard_only(schema: Schema) -> Schema:
    """The tables Dataverse ships, without the connector's columns and choices: an environment
    before the connector's schema is provisioned."""
    prefix = schema.publisher_prefix + "_"
    kept = {name for name, table in schema.tables.items() if table.standard}
    tables: dict[str, Table] = {}
    for name in kept:
        table = schema.tables[name]
        columns: dict[str, Column] = {}
        for column_name, column in table.columns.items():
            if column_name.startswith(prefix):
                continue
            targets = tuple(t for t in column.targets if t.table in kept)
            if column.targets and not targets:
                continue
            columns[column_name] = replace(column, targets=targets)
        tables[name] = rebuilt(table, columns)
    return replace(schema, tables=tables, choices={})
