"""Admin data: ``POST /_emulator/seed``, ``GET /_emulator/state`` and the persisted export.

Seed format (also what ``state`` and ``export`` return)::

    {"tables": {"contacts": [{"contactid": "...", "emailaddress1": "ada@example.com",
                              "parentcustomerid_account@odata.bind": "/accounts(...)"}],
                "annotations": [{"subject": "...", "_objectid_value": "...",
                                 "objecttypecode": "contact"}]}}

Rows are in Web API read shape; lookups as ``_x_value`` (a polymorphic one takes its table from
its type column, e.g. ``objecttypecode``, or from where the id exists) or ``x@odata.bind``.
Timestamps and ``versionnumber`` are kept when given. The owner of a user-owned row is
``_ownerid_value`` (a ``systemuserid``, not checked against the users; left out: no owner).

System users (``emulators/dataverse/security.py``) come in a ``users`` section; any ``users``
key, even an empty list, switches security on::

    {"users": [{"oid": "<Entra object id>", "upn": "ada@contoso.com",
                "systemuserid": "<guid, optional>",
                "read": {"contact": "user", "lead": "organization"}}]}

A bad seed raises ``ValueError`` naming the row and column (or the user), and loads nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from emulators.dataverse.errors import DataverseError
from emulators.dataverse.payload import decode, now_text
from emulators.dataverse.rows import new_row
from emulators.dataverse.schema import Column, Table
from emulators.dataverse.security import SystemUser, parse_users
from emulators.dataverse.store import Row

if TYPE_CHECKING:
    from emulators.dataverse.api import DataverseApi


def seed_tables(api: DataverseApi, payload: Any) -> dict[str, int]:
    """Load rows and system users (insert or replace by primary key / oid); caller holds the
    lock."""
    if not isinstance(payload, Mapping) or set(payload) - {"tables", "users"}:
        raise ValueError(
            'the Dataverse seed is {"tables": {"<entity set>": [rows]}, "users": [system users]}'
        )
    users: list[SystemUser] | None = None
    if "users" in payload:
        users = parse_users(
            payload["users"], api.schema.tables,
            lambda oid: api.stable_id("systemuser", oid),
        )
    tables = payload.get("tables") or {}
    if not isinstance(tables, Mapping):
        raise ValueError("tables must map entity set names to lists of rows")
    counts: dict[str, int] = {}
    loaded: list[tuple[str, Table, Row]] = []
    now = now_text(api.clock.now())
    with api.store.transaction():
        for entity_set, rows in tables.items():
            table = _table(api, entity_set)
            if not isinstance(rows, list):
                raise ValueError(f"{entity_set} must be a list of rows")
            for index, raw in enumerate(rows):
                where = f"{entity_set}[{index}]"
                row = _row(api, table, raw, where, now)
                api.store.put(table.logical_name, row)
                loaded.append((where, table, row))
            counts[entity_set] = counts.get(entity_set, 0) + len(rows)
        for where, table, row in loaded:
            _check_lookups(api, table, row, where)
    if users is not None:
        api.security.add(users)
        counts["users"] = len(users)
    return counts


def state(api: DataverseApi, query: Mapping[str, str]) -> dict[str, Any]:
    """All rows, or ``?table=<entity set>&<column>=<value>...`` (case-insensitive equality)."""
    filters = dict(query)
    entity_set = filters.pop("table", None)
    if entity_set is None:
        if filters:
            raise ValueError("column filters need table=<entity set>")
        return export(api)
    table = _table(api, entity_set, allow_hidden=True)
    rows = api.store.tables[table.logical_name]
    for name in filters:
        if table.column_by_read_name(name) is None:
            raise ValueError(f"{entity_set} has no column {name!r}")
    source = list(rows.rows.values())
    for name, wanted in filters.items():
        indexed = rows.candidates(name, [wanted])
        if indexed is not None:
            source = indexed
            break
    matched = [dict(row) for row in source if _matches(row, filters)]
    return {"tables": {entity_set: matched}}


def export(api: DataverseApi) -> dict[str, Any]:
    exported: dict[str, Any] = {
        "tables": {
            rows.table.entity_set: [dict(row) for row in rows.rows.values()]
            for rows in api.store.tables.values() if len(rows)
        }
    }
    if api.security.enforced:
        exported["users"] = api.security.export()
    return exported


def _table(api: DataverseApi, entity_set: str, *, allow_hidden: bool = False) -> Table:
    table = api.schema.by_entity_set().get(entity_set)
    if table is None:
        raise ValueError(f"unknown entity set {entity_set!r} (names are case-sensitive)")
    if table.logical_name in api.hidden_tables and not allow_hidden:
        raise ValueError(f"{entity_set} is switched off (lead_table_enabled is false)")
    return table


def _row(api: DataverseApi, table: Table, raw: Any, where: str, now: str) -> Row:
    try:
        values = decode(raw, api.write_rules(table, None, seeding=True))
        key = values.pop(table.primary_key, None) or str(uuid.uuid4())
        version = values.pop("versionnumber", None)
        row = new_row(table, values, key=key, now=now, version=version or api.store.next_version())
    except DataverseError as failure:
        raise ValueError(f"{where}: {failure.message}") from None
    if version is not None:
        api.store.raise_version_floor(version)
    return row


def _check_lookups(api: DataverseApi, table: Table, row: Row, where: str) -> None:
    for column in table.columns.values():
        # The owner (no target modelled: system users are not rows) is any GUID.
        key = row.get(column.read_name) if column.type == "lookup" and column.targets else None
        if key is None:
            continue
        target = _lookup_target(api, column, row)
        if target is None:
            raise ValueError(
                f"{where}.{column.read_name}: no {' or '.join(t.table for t in column.targets)} "
                f"row has the id {key}"
            )
        if column.type_column:
            row[column.type_column] = target


def _lookup_target(api: DataverseApi, column: Column, row: Row) -> str | None:
    key = row[column.read_name]
    declared = row.get(column.type_column) if column.type_column else None
    for target in column.targets:
        if declared not in (None, target.table):
            continue
        if api.row_exists(target.table, key):
            return target.table
    return None


def _matches(row: Row, filters: Mapping[str, str]) -> bool:
    for name, wanted in filters.items():
        value = row.get(name)
        if value is None:
            text = "null"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        if text.casefold() != wanted.casefold():
            return False
    return True
