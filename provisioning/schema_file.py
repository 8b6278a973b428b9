"""``infra/dynamics/schema.json`` read into the desired schema (``model.DesiredSchema``).

The file's format is described in ``infra/dynamics/README.md``. A problem is an ``InputError``
naming the table and column, so an operator can fix the file before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provisioning.errors import InputError
from provisioning.model import Choice, Column, DesiredSchema, Option, Table, Target

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "infra" / "dynamics" / "schema.json"
FORMAT = "dataverse-schema/1"
COLUMN_KINDS = frozenset({
    "guid", "string", "memo", "int", "bigint", "decimal", "float", "money", "bool", "datetime",
    "dateonly", "choice", "state", "status", "lookup", "entityname",
})
REQUIRED_LEVELS = frozenset({"none", "recommended", "application"})


def load(path: Path = DEFAULT_PATH) -> DesiredSchema:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as problem:
        raise InputError(f"cannot read the schema file {path}: {problem.strerror or problem}")\
            from None
    except ValueError as problem:
        raise InputError(f"the schema file {path} is not JSON: {problem}") from None
    return parse(raw, str(path))


def parse(raw: Any, source: str = "schema") -> DesiredSchema:
    if not isinstance(raw, Mapping) or raw.get("format") != FORMAT:
        raise InputError(f"{source}: format must be {FORMAT!r}")
    publisher = raw.get("publisher") or {}
    prefix = publisher.get("prefix")
    option_prefix = publisher.get("option_value_prefix")
    if not isinstance(prefix, str) or not prefix.isalnum() or not 2 <= len(prefix) <= 8:
        raise InputError(f"{source}: publisher.prefix must be 2 to 8 letters or digits")
    # Provisioning writes every option's value as the file gives it; the prefix is checked for
    # the file's other readers (the Dataverse emulator numbers new options with it).
    if not isinstance(option_prefix, int) or not 10_000 <= option_prefix <= 99_999:
        raise InputError(f"{source}: publisher.option_value_prefix must be 10000 to 99999")
    choices = {name: _choice(name, spec, source) for name, spec in
               _mapping(raw.get("choices", {}), f"{source}: choices").items()}
    system = frozenset(str(column.get("name")) for column in raw.get("system_columns", []))
    tables_raw = raw.get("tables")
    if not isinstance(tables_raw, list) or not tables_raw:
        raise InputError(f"{source}: tables must be a non-empty list")
    names = {spec.get("logical_name") for spec in tables_raw if isinstance(spec, Mapping)}
    display = {spec.get("logical_name"): spec.get("display_name") for spec in tables_raw
               if isinstance(spec, Mapping)}
    tables = tuple(_table(spec, choices, names, display, source) for spec in tables_raw)
    if len({table.logical_name for table in tables}) != len(tables):
        raise InputError(f"{source}: a table is defined twice")
    return DesiredSchema(prefix=prefix, choices=choices, tables=tables, system_columns=system)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(f"{where} must be an object")
    return value


def _choice(name: str, spec: Any, source: str) -> Choice:
    where = f"{source}: choice {name}"
    spec = _mapping(spec, where)
    options = tuple(_option(item, where) for item in spec.get("options", []))
    if not options or len({o.value for o in options}) != len(options):
        raise InputError(f"{where}: needs options with distinct values")
    return Choice(name=name, display_name=str(spec.get("display_name") or name), options=options)


def _option(item: Any, where: str) -> Option:
    if not isinstance(item, Mapping) or not isinstance(item.get("value"), int) or isinstance(
            item.get("value"), bool) or not isinstance(item.get("label"), str):
        raise InputError(f"{where}: every option needs an integer value and a label")
    state = item.get("state")
    return Option(value=item["value"], label=item["label"],
                  state=state if isinstance(state, int) else None)


def _table(spec: Any, choices: Mapping[str, Choice], names: set[Any],
           display: Mapping[Any, Any], source: str) -> Table:
    spec = _mapping(spec, f"{source}: table")
    name = spec.get("logical_name")
    where = f"{source}: table {name}"
    for key in ("logical_name", "entity_set", "primary_key", "primary_name"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise InputError(f"{where}: {key} is required")
    columns = tuple(_column(item, choices, names, display, f"{where}, column")
                    for item in spec.get("columns", []))
    by_name = {column.name for column in columns}
    if len(by_name) != len(columns):
        raise InputError(f"{where}: a column is defined twice")
    for key in ("primary_key", "primary_name"):
        if spec[key] not in by_name:
            raise InputError(f"{where}: its {key} {spec[key]} is not one of its columns")
    return Table(
        logical_name=name, schema_name=str(spec.get("schema_name") or name),
        entity_set=spec["entity_set"], display_name=str(spec.get("display_name") or name),
        standard=bool(spec.get("standard", False)), requires_app=spec.get("requires_app"),
        primary_key=spec["primary_key"], primary_name=spec["primary_name"],
        has_notes=bool(spec.get("has_notes", False)), columns=columns,
    )


def _column(spec: Any, choices: Mapping[str, Choice], tables: set[Any],
            display: Mapping[Any, Any], where: str) -> Column:
    spec = _mapping(spec, where)
    name = spec.get("name")
    where = f"{where} {name}"
    kind = spec.get("type")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: name is required")
    if kind not in COLUMN_KINDS:
        raise InputError(f"{where}: unknown type {kind!r}")
    required = spec.get("required", "none")
    if required not in REQUIRED_LEVELS:
        raise InputError(f"{where}: required must be one of {sorted(REQUIRED_LEVELS)}")
    choice = spec.get("choice")
    if kind == "choice" and choice not in choices:
        raise InputError(f"{where}: unknown choice {choice!r}")
    targets = tuple(Target(table=str(t.get("table")), navigation_property=str(
        t.get("navigation_property"))) for t in spec.get("targets", []) if isinstance(t, Mapping))
    if kind == "lookup" and not targets:
        raise InputError(f"{where}: a lookup needs targets")
    for target in targets:
        if target.table not in tables:
            raise InputError(f"{where}: targets unknown table {target.table}")
    for key in ("max_length", "min_value", "max_value"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InputError(f"{where}: {key} must be a whole number")
    options = tuple(_option(item, where) for item in spec.get("options", []))
    default = spec.get("default")
    return Column(
        name=name, schema_name=str(spec.get("schema_name") or name), kind=kind,
        display_name=_display_name(spec, name, kind, choices, display),
        max_length=spec.get("max_length"), min_value=spec.get("min_value"),
        max_value=spec.get("max_value"), required=required,
        format=spec.get("format") if kind == "string" else None,
        default=default if isinstance(default, (bool, int)) else None,
        choice=choice if kind == "choice" else None, options=options, targets=targets,
        labels=dict(spec.get("labels", {})),
    )


def _display_name(spec: Mapping[str, Any], name: str, kind: str, choices: Mapping[str, Choice],
                  display: Mapping[Any, Any]) -> str:
    """The label a new column gets. The file names most columns only by their logical name, so
    a choice column takes its choice's name and a lookup its target table's; the others get their
    name without the prefix. Provisioning sets labels when it creates a column, never after:
    administrators may rename columns in CRM."""
    given = spec.get("display_name")
    if isinstance(given, str) and given:
        return given
    if kind == "choice":
        return choices[spec["choice"]].display_name
    if kind == "lookup":
        targets = spec.get("targets") or []
        if len(targets) == 1 and display.get(targets[0].get("table")):
            return str(display[targets[0]["table"]])
    words = name.split("_", 1)[-1]
    return words[:1].upper() + words[1:]
