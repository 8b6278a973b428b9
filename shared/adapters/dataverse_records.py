"""Contacts, leads and accounts by email address, and their opt-in types (the ``CrmRecords`` port).

A lookup is one ``$batch``: per table, ``In`` queries on ``emailaddress1`` (Dataverse compares
case-insensitively) plus one query for addresses stored with leading or trailing spaces, which
``In`` cannot match because the service does not trim; those are matched here by ``match_key``.
Writes are one ``UpdateMultiple`` per table per 1000 rows.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.adapters.dataverse import DataverseClient, Query
from shared.domain.email import match_key
from shared.domain.model import OptInType
from shared.domain.optin import OptInUpdate, RecordValue, higher

logger = logging.getLogger(__name__)

EMAIL_COLUMN = "emailaddress1"
OPT_IN_COLUMN = "ec_optintype"
# Addresses saved with surrounding spaces (imports, integrations) are invisible to In.
PADDED_FILTER = f"startswith({EMAIL_COLUMN},' ') or endswith({EMAIL_COLUMN},' ')"


@dataclass(frozen=True, slots=True)
class CrmTable:
    logical_name: str
    entity_set: str
    primary_key: str
    optional: bool = False  # absent from environments without the app that brings it

    @property
    def select(self) -> tuple[str, ...]:
        return (self.primary_key, EMAIL_COLUMN, OPT_IN_COLUMN)


TABLES = (
    CrmTable("contact", "contacts", "contactid"),
    CrmTable("lead", "leads", "leadid", optional=True),  # Dynamics 365 Sales
    CrmTable("account", "accounts", "accountid"),
)
_BY_NAME = {table.logical_name: table for table in TABLES}


class DataverseCrmRecords:
    def __init__(self, client: DataverseClient, tables: Sequence[CrmTable] = TABLES) -> None:
        self._client = client
        self._tables = tuple(tables)

    def find_by_email_keys(self, email_keys: Collection[str]) -> list[RecordValue]:
        keys = _checked_keys(email_keys)
        if not keys:
            return []
        plan: list[tuple[CrmTable, Query]] = []
        for table in self._tables:
            for query in self._client.where_in_queries(
                table.entity_set, EMAIL_COLUMN, sorted(keys), select=table.select
            ):
                plan.append((table, query))
            plan.append((table, Query(table.entity_set, table.select, PADDED_FILTER)))
        absent_ok = {table.entity_set for table in self._tables if table.optional}
        answers = self._client.read_batch([query for _, query in plan], absent_ok=absent_ok)
        found: dict[tuple[str, str], RecordValue] = {}
        for (table, _), rows in zip(plan, answers, strict=True):
            for record in _records(table, rows, keys):
                found[(record.table, record.row_id)] = record
        return list(found.values())

    def set_opt_in(self, updates: Sequence[OptInUpdate]) -> None:
        per_table = _per_table(updates)  # validates everything before the first write
        for table in self._tables:
            values = per_table.get(table.logical_name)
            if not values:
                continue
            rows = [
                {table.primary_key: row_id, OPT_IN_COLUMN: int(value)}
                for row_id, value in sorted(values.items())
            ]
            self._client.update_multiple(
                table.entity_set, table.logical_name, table.primary_key, rows
            )
            logger.info("opt-in type written to %d %s rows", len(rows), table.logical_name)


def _checked_keys(email_keys: Collection[str]) -> set[str]:
    keys = set()
    for key in email_keys:
        if not isinstance(key, str) or match_key(key) != key:
            raise ValueError("lookup keys must be match_key values (trimmed, case-folded)")
        keys.add(key)
    return keys


def _records(table: CrmTable, rows: Iterable[dict[str, Any]], keys: set[str]) -> list[RecordValue]:
    records = []
    for row in rows:
        key = match_key(row.get(EMAIL_COLUMN))
        if isinstance(key, str) and key in keys:
            records.append(
                RecordValue(table.logical_name, str(row[table.primary_key]), key,
                            _opt_in(row.get(OPT_IN_COLUMN)))
            )
    return records


def _opt_in(value: object) -> OptInType | None:
    # The column's choice holds exactly the four types; anything else is treated as not set.
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return OptInType(value)
    except ValueError:
        return None


def _per_table(updates: Sequence[OptInUpdate]) -> dict[str, dict[str, OptInType]]:
    per_table: dict[str, dict[str, OptInType]] = {}
    for update in updates:
        if update.record.table not in _BY_NAME:
            raise ValueError(f"unknown CRM table {update.record.table!r}")
        if not isinstance(update.new_value, OptInType):
            raise ValueError("an opt-in update must carry an OptInType")
        values = per_table.setdefault(update.record.table, {})
        # One row twice in a batch (two addresses cannot, but be safe): the higher type wins.
        values[update.record.row_id] = higher(values.get(update.record.row_id), update.new_value)
    return per_table
