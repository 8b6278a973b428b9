"""Desired schemas and found tables for the plan's unit tests, without an environment."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from provisioning import schema_file
from provisioning.model import Column, DesiredSchema, FoundChoice, FoundTable, Table

RAW = json.loads(schema_file.DEFAULT_PATH.read_text(encoding="utf-8"))


def raw_schema(edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """A copy of the repository's schema file, changed by ``edit``."""
    raw: dict[str, Any] = copy.deepcopy(RAW)
    if edit is not None:
        edit(raw)
    return raw


def desired(edit: Callable[[dict[str, Any]], None] | None = None) -> DesiredSchema:
    return schema_file.parse(raw_schema(edit))


def raw_column(raw: dict[str, Any], table: str, column: str) -> dict[str, Any]:
    spec = next(t for t in raw["tables"] if t["logical_name"] == table)
    found: dict[str, Any] = next(c for c in spec["columns"] if c["name"] == column)
    return found


def found_table(table: Table, *, custom: bool | None = None,
                columns: Iterable[Column] | None = None, **changes: Any) -> FoundTable:
    """``table`` as the metadata API would report it once provisioned (ids made up)."""
    kept = tuple(columns) if columns is not None else table.columns
    seen = replace(table, columns=kept, **changes)
    return FoundTable(
        table=seen, metadata_id=f"id-{table.logical_name}",
        custom=not table.standard if custom is None else custom,
        definition={"@odata.type": "#Microsoft.Dynamics.CRM.EntityMetadata",
                    "LogicalName": table.logical_name, "HasNotes": seen.has_notes},
        attribute_ids={c.name: f"id-{table.logical_name}-{c.name}" for c in kept},
        attribute_definitions={c.name: {"@odata.type": "#Microsoft.Dynamics.CRM.X",
                                        "LogicalName": c.name, "MaxLength": c.max_length,
                                        "RequiredLevel": {"Value": "None",
                                                          "CanBeChanged": True}}
                               for c in kept},
    )


def everything_found(schema: DesiredSchema) -> tuple[dict[str, FoundTable | None],
                                                      dict[str, FoundChoice | None]]:
    """What an environment with the whole schema reports."""
    tables: dict[str, FoundTable | None] = {t.logical_name: found_table(t)
                                            for t in schema.tables}
    choices: dict[str, FoundChoice | None] = {
        name: FoundChoice(name=name, metadata_id=f"id-{name}", options=choice.options)
        for name, choice in schema.choices.items()}
    return tables, choices


def nothing_found(schema: DesiredSchema) -> tuple[dict[str, FoundTable | None],
                                                   dict[str, FoundChoice | None]]:
    """A fresh environment: the standard tables without the connector's columns, no choices."""
    tables: dict[str, FoundTable | None] = {}
    for table in schema.tables:
        if not table.standard:
            tables[table.logical_name] = None
            continue
        kept = [c for c in table.columns if not schema.is_custom_name(c.name)]
        tables[table.logical_name] = found_table(table, columns=kept)
    return tables, dict.fromkeys(schema.choices)
