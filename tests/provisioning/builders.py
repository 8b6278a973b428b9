"""Desired schemas and found tables for the plan's unit tests, without an environment."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from provisioning import schema_file
from provisioning.model import Column, DesiredSchema, FoundChoice, FoundTable, Table


@functools.cache
def _repository_schema() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(schema_file.DEFAULT_PATH.read_text(encoding="utf-8"))
    return raw


def raw_schema(edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """A copy of the repository's schema file, changed by ``edit``."""
    raw: dict[str, Any] = copy.deepcopy(_repository_schema())
    if edit is not None:
        edit(raw)
    return raw


def desired(edit: Callable[[dict[str, Any]], None] | None = None) -> DesiredSchema:
    return schema_file.parse(raw_schema(edit))


def raw_table(raw: dict[str, Any], table: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in raw["tables"] if t["logical_name"] == table)
    return found


def raw_column(raw: dict[str, Any], table: str, column: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in raw_table(raw, table)["columns"]
                                 if c["name"] == column)
    return found


def found_table(table: Table, *, columns: Iterable[Column] | None = None,
                **changes: Any) -> FoundTable:
    """``table`` as the metadata API would report it once provisioned (ids made up)."""
    kept = tuple(columns) if columns is not None else table.columns
    seen = replace(table, columns=kept, **changes)
    return FoundTable(
        table=seen,
        definition={"@odata.type": "#Microsoft.Dynamics.CRM.EntityMetadata",
                    "MetadataId": f"id-{table.logical_name}",
                    "LogicalName": table.logical_name, "HasNotes": seen.has_notes},
        attribute_definitions={c.name: {"@odata.type": "#Microsoft.Dynamics.CRM.X",
                                        "MetadataId": f"id-{table.logical_name}-{c.name}",
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
