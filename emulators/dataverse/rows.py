"""Build the stored row of a create or an update from checked values (see ``payload.decode``).

What the platform does on every write lives here: defaults, the ``statecode``/``statuscode`` pair,
computed columns such as ``fullname``, ``createdon``/``modifiedon`` and the row version.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from emulators.dataverse.errors import DataverseError
from emulators.dataverse.schema import Column, Table
from emulators.dataverse.store import Row


def etag(row: Row) -> str:
    return f'W/"{row["versionnumber"]}"'


def new_row(table: Table, values: dict[str, Any], *, key: str, now: str, version: int) -> Row:
    row = dict(_template(table))
    row.update(values)
    row[table.primary_key] = key
    row["createdon"] = values.get("createdon") or now
    row["modifiedon"] = values.get("modifiedon") or row["createdon"]
    row["versionnumber"] = version
    _settle_state(table, row, values, key)
    _compute(table, row)
    return row


def updated_row(
    table: Table, old: Row, values: dict[str, Any], *, now: str, version: int
) -> Row:
    row = {**old, **values}
    row[table.primary_key] = old[table.primary_key]
    row["createdon"] = old["createdon"]
    row["modifiedon"] = now
    row["versionnumber"] = version
    _settle_state(table, row, values, row[table.primary_key])
    _compute(table, row)
    return row


@cache
def _template(table: Table) -> dict[str, Any]:
    return {column.read_name: column.default for column in table.columns.values()}


def _settle_state(table: Table, row: Row, values: dict[str, Any], key: str) -> None:
    state_column = table.columns.get("statecode")
    status_column = table.columns.get("statuscode")
    if state_column is None or status_column is None:
        return
    if row.get("statecode") is None:
        row["statecode"] = state_column.options[0].value
    state = row["statecode"]
    if "statuscode" not in values or values["statuscode"] is None:
        if "statecode" in values or row.get("statuscode") is None:
            row["statuscode"] = _first_status(status_column, state)
        return
    status = values["statuscode"]
    owner = next(option.state for option in status_column.options if option.value == status)
    if owner != state:
        state_label = next(o.label for o in state_column.options if o.value == state)
        raise DataverseError(
            400, "0x8004431a",
            f"{status} is not a valid status code for state code "
            f"{table.schema_name}State.{state_label} on {table.logical_name} with Id {key}.",
        )


def _first_status(status_column: Column, state: int) -> int:
    return next(option.value for option in status_column.options if option.state == state)


def _compute(table: Table, row: Row) -> None:
    for column in table.columns.values():
        if column.computed_from:
            parts = [row.get(source) for source in column.computed_from]
            joined = " ".join(part for part in parts if part)
            row[column.name] = joined or None
