"""Contacts, leads and accounts by email address, and their opt-in types (the ``CrmRecords`` port).

A lookup is one ``$batch``: per table, ``In`` queries on ``emailaddress1``. Dataverse runs them as
SQL under the environment's collation: case-insensitive, accent-insensitive for most languages
(``_CI_AI``; some are ``_CI_AS``), and ``=`` ignores trailing spaces. So a query may return rows
whose own address is a *different* one (``josé@`` for ``jose@``): every row is kept only if its
own match key (trimmed, case-folded, accents kept) is one that was asked for, so consent is never
written to another person. The other way round, a row stored with leading whitespace, or with
any whitespace other than trailing spaces (tab, no-break space, newline...), is not returned for
its trimmed address: those rows are asked for as stored, in the same ``In`` lists. Which stored
forms exist comes from a ``PaddedIndex`` (match key → table and stored address), read with the
lookups themselves (the padded filter, in the same ``$batch``) when it is older than
``PADDED_INDEX_TTL_S``. Reading every padded row on every lookup instead made each batch read
about 4% of every table: at 200,000 contacts that was most of the service-protection execution
budget. The price: a row whose address becomes padded is missed until the next refresh (at most
``PADDED_INDEX_TTL_S``); a row that stops being padded is found by its trimmed address. Current
values always come from the lookup, never from the index.
Writes are one ``UpdateMultiple`` per table per 1000 rows.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.adapters.dataverse.client import BulkUpdate, DataverseClient, Query
from shared.adapters.dataverse.odata import string_literal
from shared.adapters.dataverse.padded_index import PaddedIndex, PaddedRows
from shared.domain.email import match_key
from shared.domain.model import OptInType
from shared.domain.optin import OptInUpdate, RecordValue, higher

logger = logging.getLogger(__name__)

EMAIL_COLUMN = "emailaddress1"
OPT_IN_COLUMN = "ec_optintype"
# Every character ``str.strip`` removes: the match key ignores them around an address.
WHITESPACE = "".join(chr(code) for code in range(0x3001) if chr(code).isspace())
# Addresses saved with whitespace around them (imports, integrations) that ``=`` does not see
# through: a leading space, or any other whitespace anywhere (inside an address it makes the
# row invalid, and such rows are dropped when read). Trailing spaces alone need no entry: SQL's
# ``=`` ignores them. ``startswith`` and ``contains`` are LIKE, so one ``[set]`` covers every
# other kind of whitespace in a single predicate (one scan, not one per character).
PADDED_FILTER = (
    f"startswith({EMAIL_COLUMN},{string_literal(' ')}) or "
    f"contains({EMAIL_COLUMN},{string_literal('[' + WHITESPACE.replace(' ', '') + ']')})"
)
# Padded rows are read in pages this size, each converted before the next is fetched: a refresh
# at 200,000 contacts reads about 10,000 of them, which as one answer was a 4 MB spike.
PADDED_PAGE_SIZE = 1000


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
    def __init__(
        self,
        client: DataverseClient,
        tables: Sequence[CrmTable] = TABLES,
        padded: PaddedIndex | None = None,
    ) -> None:
        self._client = client
        self._tables = tuple(tables)
        self._padded = padded or PaddedIndex()

    def find_by_email_keys(self, email_keys: Collection[str]) -> list[RecordValue]:
        keys = _checked_keys(email_keys)
        if not keys:
            return []
        if self._padded.is_fresh():
            return self._lookup(keys, refresh=False)
        # One refresh at a time: the sessions that find the index stale together wait for the
        # first one's lookup instead of all reading every padded row.
        with self._padded.refreshing:
            return self._lookup(keys, refresh=not self._padded.is_fresh())

    def _lookup(self, keys: set[str], *, refresh: bool) -> list[RecordValue]:
        # Read before the index is, so a row padded meanwhile is read again at the next refresh.
        read_at = self._padded.now()
        stored = (
            {}
            if refresh
            else self._padded.stored_forms(keys, [table.logical_name for table in self._tables])
        )
        plan: list[tuple[CrmTable, Query]] = []
        costs: dict[str, int] = {}  # every table asks for the same addresses: measure them once
        for table in self._tables:
            values = sorted(keys | stored.get(table.logical_name, set()))
            for query in self._client.where_in_queries(
                table.entity_set, EMAIL_COLUMN, values, select=table.select, costs=costs
            ):
                plan.append((table, query))
        refresh_from = len(plan)
        if refresh:
            plan += [
                (table, Query(table.entity_set, table.select, PADDED_FILTER,
                              page_size=PADDED_PAGE_SIZE))
                for table in self._tables
            ]
        absent_ok = {table.entity_set for table in self._tables if table.optional}
        # Part by part: each part's rows become records (and padded-index entries) and are
        # dropped before the next part is parsed, so a session holds one part's rows at a time.
        answers = self._client.iter_read_batch([query for _, query in plan], absent_ok=absent_ok)
        found: dict[tuple[str, str], RecordValue] = {}
        padded_rows = PaddedRows()
        for index, ((table, _), rows) in enumerate(zip(plan, answers, strict=True)):
            padded_into = padded_rows if index >= refresh_from else None
            for record in _records(table, rows, keys, padded_into):
                found[(record.table, record.row_id)] = record
        if refresh:
            self._padded.replace(padded_rows, read_at)
        return list(found.values())

    def set_opt_in(self, updates: Sequence[OptInUpdate]) -> None:
        per_table = _per_table(updates)  # validates everything before the first write
        bulk = [
            BulkUpdate(
                table.entity_set,
                table.logical_name,
                table.primary_key,
                [
                    {table.primary_key: row_id, OPT_IN_COLUMN: int(value)}
                    for row_id, value in sorted(per_table[table.logical_name].items())
                ],
            )
            for table in self._tables
            if per_table.get(table.logical_name)
        ]
        # One request for every table's write: the tables' UpdateMultiple calls share a $batch.
        self._client.update_multiple_tables(bulk)
        for update in bulk:
            logger.info("opt-in type written to %d %s rows", len(update.rows), update.logical_name)


def _checked_keys(email_keys: Collection[str]) -> set[str]:
    keys = set()
    for key in email_keys:
        if not isinstance(key, str) or match_key(key) != key:
            raise ValueError("lookup keys must be match_key values (trimmed, case-folded)")
        keys.add(key)
    return keys


def _records(
    table: CrmTable,
    rows: Iterable[dict[str, Any]],
    keys: set[str],
    padded_into: PaddedRows | None,
) -> list[RecordValue]:
    """The rows asked for (by ``keys``) as records; with ``padded_into``, every row is also
    entered in that padded index (the rows of a padded-filter part)."""
    records = []
    for row in rows:
        key = match_key(row.get(EMAIL_COLUMN))
        if not isinstance(key, str):
            continue
        if padded_into is not None:
            padded_into.add(table.logical_name, key, str(row[EMAIL_COLUMN]))
        if key in keys:
            records.append(
                RecordValue(
                    table.logical_name,
                    str(row[table.primary_key]),
                    key,
                    _opt_in(row.get(OPT_IN_COLUMN)),
                )
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
