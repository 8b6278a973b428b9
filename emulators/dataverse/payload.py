"""Turn a write body (``POST``/``PATCH``/bulk ``Targets``/seed rows) into checked column values.

The checks are the ones Dataverse makes before a write: property names exist on the entity type
(case-sensitive), ``@odata.bind`` uses a declared navigation property and points at an existing row
of the right table, values have the column's type, strings fit their maximum length and choice
values are in the option set. The result is a dict of read names (``_x_value`` for lookups) ready
to merge into a row; nothing is written here.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulators.dataverse import errors
from emulators.dataverse.errors import DataverseError
from emulators.dataverse.schema import Column, Table

EDM_TYPES = {
    "string": "Edm.String", "memo": "Edm.String", "entityname": "Edm.String", "guid": "Edm.Guid",
    "int": "Edm.Int32", "bigint": "Edm.Int64", "decimal": "Edm.Decimal", "float": "Edm.Double",
    "money": "Edm.Decimal", "bool": "Edm.Boolean", "datetime": "Edm.DateTimeOffset",
    "dateonly": "Edm.Date", "choice": "Edm.Int32", "state": "Edm.Int32", "status": "Edm.Int32",
}
INT32 = (-(2**31), 2**31 - 1)
# Properties Dataverse computes itself: a client may send them (e.g. echoing a row it read), they
# are ignored.
IGNORED_ON_WRITE = frozenset({"createdon", "modifiedon", "versionnumber"})
ENTITY_REFERENCE = re.compile(r"^(?P<set>[A-Za-z0-9_]+)\((?P<key>[0-9A-Fa-f-]{36})\)$")
BIND_SUFFIX = "@odata.bind"


@dataclass(frozen=True)
class WriteRules:
    """What the decoder needs to know about the world outside the body."""

    entity_set: str
    table: Table
    tables: Mapping[str, Table]  # every table by logical name, for bind targets
    # (table logical name, key) -> does that row exist?
    row_exists: Callable[[str, str], bool]
    # Logical names of tables that are switched off (lead without Dynamics 365 Sales).
    hidden_tables: frozenset[str] = frozenset()
    # Maps a batch ``$n`` reference to the entity path it stands for; raises when undefined.
    resolve_reference: Callable[[str], str] = lambda value: value
    # Seeding accepts read shape (``_x_value``, timestamps); the API does not.
    seeding: bool = False


def now_text(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_key(text: str) -> str | None:
    """A canonical lower-case GUID, or ``None`` when ``text`` is not one."""
    try:
        return str(uuid.UUID(text)) if len(text) == 36 else None
    except ValueError:
        return None


def decode(body: Any, rules: WriteRules) -> dict[str, Any]:
    """Checked column values by read name; raises ``DataverseError`` on the first problem."""
    if not isinstance(body, Mapping):
        raise errors.payload_error(
            rules.entity_set, "Microsoft.OData.ODataException: The payload must be a JSON object."
        )
    table = rules.table
    values: dict[str, Any] = {}
    for name, raw in body.items():
        if name.startswith("@"):
            _check_instance_annotation(name, raw, rules)
        elif name.endswith(BIND_SUFFIX):
            values.update(_bind(name[: -len(BIND_SUFFIX)], raw, rules))
        elif "@" in name:
            continue  # property annotations (FormattedValue, ...) echoed by a client carry no data
        elif rules.seeding and (read_column := table.column_by_read_name(name)) is not None:
            values.update(_seed_value(read_column, raw, rules))
        else:
            column = table.columns.get(name)
            if column is None or (column.type == "lookup"):
                if column is not None:
                    raise _primitive_navigation(rules.entity_set, name)
                raise errors.unknown_property(rules.entity_set, table.logical_name, name)
            if name in IGNORED_ON_WRITE or (column.read_only and column.name != table.primary_key):
                continue
            values[name] = convert(column, raw, rules)
    return values


def convert(column: Column, raw: Any, rules: WriteRules) -> Any:
    """One value of ``column``'s type, or ``DataverseError``."""
    if raw is None:
        return None
    table, entity_set = rules.table, rules.entity_set
    edm = EDM_TYPES[column.type]
    kind = column.type
    if kind in ("string", "memo", "entityname"):
        if not isinstance(raw, str):
            raise errors.literal_type(entity_set, raw, edm)
        if column.max_length is not None and len(raw) > column.max_length:
            raise errors.validation(
                f"The length of the '{column.name}' attribute of the '{table.logical_name}' entity "
                f"exceeded the maximum allowed length of '{column.max_length}'."
            )
        return raw
    if kind == "bool":
        if not isinstance(raw, bool):
            raise errors.literal_type(entity_set, raw, edm)
        return raw
    if kind in ("int", "bigint", "choice", "state", "status"):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise errors.literal_type(entity_set, raw, edm)
        if kind != "bigint" and not INT32[0] <= raw <= INT32[1]:
            raise errors.literal_type(entity_set, raw, edm)
        _check_range(column, raw, table)
        return raw
    if kind in ("decimal", "float", "money"):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise errors.literal_type(entity_set, raw, edm)
        return raw
    if kind == "guid":
        key = parse_key(raw) if isinstance(raw, str) else None
        if key is None:
            raise errors.literal_type(entity_set, raw, edm)
        return key
    if kind == "datetime":
        return _datetime(raw, entity_set)
    if kind == "dateonly":
        try:
            return dt.date.fromisoformat(raw).isoformat() if isinstance(raw, str) else _fail()
        except ValueError:
            raise errors.literal_type(entity_set, raw, edm) from None
    raise errors.literal_type(entity_set, raw, edm)  # pragma: no cover - schema types are closed


def _check_range(column: Column, value: int, table: Table) -> None:
    if column.options:
        if value not in column.option_values:
            accepted = ",".join(str(v) for v in sorted(column.option_values))
            raise errors.validation(
                f"The value {value} of '{column.name}' on record of type '{table.logical_name}' is "
                f"outside the valid range. Accepted Values: {accepted}"
            )
        return
    low = column.min_value if column.min_value is not None else INT32[0]
    high = column.max_value if column.max_value is not None else INT32[1]
    if column.type != "bigint" and not low <= value <= high:
        raise errors.validation(
            f"The value {value} of '{column.name}' on record of type '{table.logical_name}' is "
            f"outside the valid range ({low} to {high})."
        )


def _datetime(raw: Any, entity_set: str) -> str:
    if isinstance(raw, str) and "T" in raw:
        try:
            parsed = dt.datetime.fromisoformat(raw)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return now_text(parsed)
    raise errors.literal_type(entity_set, raw, "Edm.DateTimeOffset")


def _fail() -> str:
    raise ValueError


def _check_instance_annotation(name: str, raw: Any, rules: WriteRules) -> None:
    if name == "@odata.type" and raw not in (rules.table.type_name, f"#{rules.table.type_name}"):
        raise errors.payload_error(
            rules.entity_set,
            f"Microsoft.OData.ODataException: A resource with type '{raw}' was found, but it is "
            f"not assignable to the expected type '{rules.table.type_name}'. The type specified "
            "in the resource must be equal to either the expected type or a derived type.",
        )


def _bind(navigation: str, raw: Any, rules: WriteRules) -> dict[str, Any]:
    table = rules.table
    found = table.navigation.get(navigation)
    if found is None or found[1].table in rules.hidden_tables:
        raise errors.undeclared_navigation(navigation)
    column, target = found
    type_column = column.type_column
    if raw is None:
        cleared: dict[str, Any] = {column.read_name: None}
        if type_column:
            cleared[type_column] = None
        return cleared
    if not isinstance(raw, str):
        raise errors.literal_type(rules.entity_set, raw, "Edm.String")
    reference = rules.resolve_reference(raw) if raw.startswith("$") else raw
    entity_set, key = _entity_reference(reference, rules.entity_set)
    target_table = rules.tables[target.table]
    if entity_set != target_table.entity_set:
        raise errors.payload_error(
            rules.entity_set,
            f"Microsoft.OData.ODataException: The entity reference '{reference}' does not match "
            f"the navigation property '{navigation}', which refers to '{target_table.type_name}'.",
        )
    if not rules.row_exists(target.table, key):
        raise errors.record_not_found(target.table, key)
    values: dict[str, Any] = {column.read_name: key}
    if type_column:
        values[type_column] = target.table
    return values


def _entity_reference(reference: str, entity_set: str) -> tuple[str, str]:
    path = reference
    marker = path.find("/api/data/v9.")
    if marker >= 0:
        path = path[marker:].split("/", 4)[-1]
    path = path.lstrip("/")
    match = ENTITY_REFERENCE.match(path)
    key = parse_key(match.group("key")) if match else None
    if match is None or key is None:
        raise errors.payload_error(
            entity_set,
            f"Microsoft.OData.ODataException: The value '{reference}' of an '@odata.bind' "
            "annotation is not a valid entity reference.",
        )
    return match.group("set"), key


def _primitive_navigation(entity_set: str, name: str) -> DataverseError:
    return errors.payload_error(
        entity_set,
        "Microsoft.OData.ODataException: A 'PrimitiveValue' node with non-null value was found "
        f"when trying to read the value of the navigation property '{name}'; however, a "
        "'StartArray' node, a 'StartObject' node, or a 'PrimitiveValue' node with null value was "
        "expected.",
    )


def _seed_value(column: Column, raw: Any, rules: WriteRules) -> dict[str, Any]:
    if column.type != "lookup":
        return {column.name: convert(column, raw, rules)}
    if raw is None:
        return {column.read_name: None}
    key = parse_key(raw) if isinstance(raw, str) else None
    if key is None:
        raise errors.literal_type(rules.entity_set, raw, "Edm.Guid")
    return {column.read_name: key}
