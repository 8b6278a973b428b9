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

``EmailLookup`` is that lookup for any tables with an address column and any conversion of the
rows; ``suppressions`` uses it for Email Suppression rows together with the records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.adapters.dataverse.client import BulkUpdate, DataverseClient, Query
from shared.adapters.dataverse.odata import string_literal
from shared.adapters.dataverse.padded_index import PaddedIndex, PaddedRows
from shared.adapters.dataverse.values import read_choice
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
def padded_filter(column: str) -> str:
    return (
        f"startswith({column},{string_literal(' ')}) or "
        f"contains({column},{string_literal('[' + WHITESPACE.replace(' ', '') + ']')})"
    )


PADDED_FILTER = padded_filter(EMAIL_COLUMN)
# Padded rows are read in pages this size, each converted before the next is fetched: a refresh
# at 200,000 contacts reads about 10,000 of them, which as one answer was a 4 MB spike.
PADDED_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class CrmTable:
    logical_name: str
    entity_set: str
    primary_key: str
    optional: bool = False  # absent from environments without the app that brings it
    email_column: str = EMAIL_COLUMN
    columns: tuple[str, ...] = (OPT_IN_COLUMN,)  # read besides the key and the address

    @property
    def select(self) -> tuple[str, ...]:
        return (self.primary_key, self.email_column, *self.columns)


TABLES = (
    CrmTable("contact", "contacts", "contactid"),
    CrmTable("lead", "leads", "leadid", optional=True),  # Dynamics 365 Sales
    CrmTable("account", "accounts", "accountid"),
)
_BY_NAME = {table.logical_name: table for table in TABLES}


Found = TypeVar("Found")
# A matched row as the caller wants it: (table, the row's match key, the row as read).
Convert = Callable[[CrmTable, str, dict[str, Any]], Found]


class EmailLookup:
    """Rows of ``tables`` by the match keys of their address columns, in one ``$batch``.

    The padded index covers every table of the lookup, whichever of them one call reads, so a
    refresh made by a call that reads only some of them leaves the others' entries complete.
    """

    def __init__(
        self, client: DataverseClient, tables: Sequence[CrmTable], padded: PaddedIndex | None
    ) -> None:
        self._client = client
        self._tables = tuple(tables)
        self._padded = padded or PaddedIndex()

    def find(
        self, keys: set[str], convert: Convert[Found], tables: Sequence[CrmTable] | None = None
    ) -> list[Found]:
        """Every row of ``tables`` (by default all) whose own address has one of ``keys``."""
        if not keys:
            return []
        asked = self._tables if tables is None else tuple(tables)
        if not set(asked) <= set(self._tables):
            raise ValueError("a lookup reads only tables its padded index covers")
        if self._padded.is_fresh():
            return self._lookup(keys, asked, convert, refresh=False)
        # One refresh at a time: the sessions that find the index stale together wait for the
        # first one's lookup instead of all reading every padded row. The lock is held only by
        # a lookup that refreshes: the ones that waited for it look up side by side afterwards.
        with self._padded.refreshing:
            if not self._padded.is_fresh():
                return self._lookup(keys, asked, convert, refresh=True)
        return self._lookup(keys, asked, convert, refresh=False)

    def _lookup(
        self, keys: set[str], asked: tuple[CrmTable, ...], convert: Convert[Found], *,
        refresh: bool,
    ) -> list[Found]:
        # Read before the index is, so a row padded meanwhile is read again at the next refresh.
        read_at = self._padded.now()
        stored = (
            {} if refresh
            else self._padded.stored_forms(keys, [table.logical_name for table in asked])
        )
        plan: list[tuple[CrmTable, Query]] = []
        costs: dict[str, int] = {}  # every table asks for the same addresses: measure them once
        for table in asked:
            values = sorted(keys | stored.get(table.logical_name, set()))
            for query in self._client.where_in_queries(
                table.entity_set, table.email_column, values, select=table.select, costs=costs
            ):
                plan.append((table, query))
        refresh_from = len(plan)
        if refresh:
            plan += [
                (table, Query(table.entity_set, table.select, padded_filter(table.email_column),
                              page_size=PADDED_PAGE_SIZE))
                for table in self._tables
            ]
        absent_ok = {table.entity_set for table in self._tables if table.optional}
        # Part by part: each part's rows are converted (and entered in the padded index) and
        # dropped before the next part is parsed, so a session holds one part's rows at a time.
        answers = self._client.iter_read_batch([query for _, query in plan], absent_ok=absent_ok)
        found: dict[tuple[str, str], Found] = {}
        padded_rows = PaddedRows()
        for index, ((table, _), rows) in enumerate(zip(plan, answers, strict=True)):
            padded_into = padded_rows if index >= refresh_from else None
            for row_id, value in _matched(table, rows, keys, padded_into, convert):
                found[(table.logical_name, row_id)] = value
        if refresh:
            self._padded.replace(padded_rows, read_at)
        return list(found.values())


class DataverseCrmRecords:
    def __init__(
        self,
        client: DataverseClient,
        tables: Sequence[CrmTable] = TABLES,
        padded: PaddedIndex | None = None,
    ) -> None:
        self._client = client
        self._tables = tuple(tables)
        self._lookup = EmailLookup(client, self._tables, padded)

    def find_by_email_keys(self, email_keys: Collection[str]) -> list[RecordValue]:
        return self._lookup.find(checked_keys(email_keys), _record_value)

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


def checked_keys(email_keys: Collection[str]) -> set[str]:
    """The keys as a set; raises ``ValueError`` (before any request) for one that is not a
    ``match_key`` value."""
    keys = set()
    for key in email_keys:
        if not isinstance(key, str) or match_key(key) != key:
            raise ValueError("lookup keys must be match_key values (trimmed, case-folded)")
        keys.add(key)
    return keys


def _matched(
    table: CrmTable,
    rows: Iterable[dict[str, Any]],
    keys: set[str],
    padded_into: PaddedRows | None,
    convert: Convert[Found],
) -> list[tuple[str, Found]]:
    """The rows asked for (by ``keys``), converted, by primary key; with ``padded_into``, every
    row is also entered in that padded index (the rows of a padded-filter part)."""
    matched = []
    for row in rows:
        address = row.get(table.email_column)
        key = match_key(address)
        if not isinstance(key, str):
            continue
        if padded_into is not None:
            padded_into.add(table.logical_name, key, str(address))
        if key in keys:
            matched.append((str(row[table.primary_key]), convert(table, key, row)))
    return matched


def _record_value(table: CrmTable, key: str, row: dict[str, Any]) -> RecordValue:
    opt_in = read_choice(OptInType, row.get(OPT_IN_COLUMN))
    return RecordValue(table.logical_name, str(row[table.primary_key]), key, opt_in)


def _records(
    table: CrmTable,
    rows: Iterable[dict[str, Any]],
    keys: set[str],
    padded_into: PaddedRows | None,
) -> list[RecordValue]:
    """The rows asked for (by ``keys``) as records (see ``_matched``)."""
    return [record for _, record in _matched(table, rows, keys, padded_into, _record_value)]


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
