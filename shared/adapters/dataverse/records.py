"""Contacts, leads and accounts by email address, and their opt-in types (the ``CrmRecords`` port).

A lookup is one ``$batch``: per table, ``In`` queries on ``emailaddress1`` (Dataverse compares
case-insensitively). Addresses stored with leading or trailing spaces are not matched by their
trimmed form, because the service does not trim; they are asked for as stored, in the same
``In`` lists. Which stored forms exist comes from a ``PaddedIndex`` (match key → table and stored
address), read with the lookups themselves (the padded filter, in the same ``$batch``) when it is
older than ``PADDED_INDEX_TTL_S``. Reading every padded row on every lookup instead made each
batch read about 4% of every table: at 200,000 contacts that was most of the service-protection
execution budget. The price: a row whose address becomes padded is missed until the next refresh
(at most ``PADDED_INDEX_TTL_S``); a row that stops being padded is found by its trimmed address.
Current values always come from the lookup, never from the index.
Writes are one ``UpdateMultiple`` per table per 1000 rows.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from shared.adapters.dataverse.client import BulkUpdate, DataverseClient, Query
from shared.domain.email import match_key
from shared.domain.model import OptInType
from shared.domain.optin import OptInUpdate, RecordValue, higher

logger = logging.getLogger(__name__)

EMAIL_COLUMN = "emailaddress1"
OPT_IN_COLUMN = "ec_optintype"
# Addresses saved with surrounding spaces (imports, integrations) are invisible to In.
PADDED_FILTER = f"startswith({EMAIL_COLUMN},' ') or endswith({EMAIL_COLUMN},' ')"
# Long enough that a large sync reads the padded rows a few times, not once per batch.
PADDED_INDEX_TTL_S = 60.0
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


class PaddedRows:
    """The padded rows read by one refresh, packed for ``PaddedIndex.replace``.

    The index grows with the tables (about 4% of rows), so it is packed: a sorted array of
    hashes of (table, match key) and the stored addresses as one string with offsets, about 40
    bytes an entry instead of about 215 as a dict of tuples, and a handful of large objects
    rather than tens of thousands of small ones kept for the life of the process. A hash
    collision only adds an address to an ``In`` list: the lookup keeps rows by their own key.
    """

    def __init__(self) -> None:
        self._slots = array("q")
        self._forms: list[str] = []

    def add(self, table: str, key: str, stored: str) -> None:
        self._slots.append(PaddedIndex.slot(table, key))
        self._forms.append(stored)

    def packed(self) -> _PackedRows:
        order = sorted(range(len(self._slots)), key=self._slots.__getitem__)
        slots = array("q", (self._slots[i] for i in order))
        forms = [self._forms[i] for i in order]
        offsets = array("L", accumulate((len(form) for form in forms), initial=0))
        return _PackedRows(slots, offsets, "".join(forms))


@dataclass(frozen=True, slots=True)
class _PackedRows:
    slots: array[int]  # sorted
    offsets: array[int]  # stored address i is text[offsets[i]:offsets[i + 1]]
    text: str

    def stored(self, slot: int) -> Iterator[str]:
        at = bisect_left(self.slots, slot)
        while at < len(self.slots) and self.slots[at] == slot:
            yield self.text[self.offsets[at] : self.offsets[at + 1]]
            at += 1


class PaddedIndex:
    """Addresses stored with surrounding spaces: (table, match key) → addresses as stored.

    Shared by the threads of one process (the applier's sessions); a refresh replaces it whole.
    """

    def __init__(
        self, ttl_s: float = PADDED_INDEX_TTL_S, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.refreshing = threading.Lock()  # held by the lookup that reads the padded rows
        self._built_at: float | None = None
        self._rows = PaddedRows().packed()

    @staticmethod
    def slot(table: str, key: str) -> int:
        return hash((table, key))

    def now(self) -> float:
        return self._monotonic()

    def is_fresh(self) -> bool:
        with self._lock:
            return self._built_at is not None and (self._monotonic() - self._built_at < self._ttl_s)

    def replace(self, rows: PaddedRows, read_at: float) -> None:
        """Take ``rows`` as the index, as read at ``read_at``."""
        packed = rows.packed()
        with self._lock:
            self._rows = packed
            self._built_at = read_at

    def stored_forms(self, keys: Iterable[str], tables: Iterable[str]) -> dict[str, set[str]]:
        """The padded addresses, as stored, of any of ``keys``, per table (logical name)."""
        with self._lock:
            rows = self._rows
        found: dict[str, set[str]] = {}
        for table in tables:
            for key in keys:
                for stored in rows.stored(self.slot(table, key)):
                    found.setdefault(table, set()).add(stored)
        return found


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
        for table in self._tables:
            values = sorted(keys | stored.get(table.logical_name, set()))
            for query in self._client.where_in_queries(
                table.entity_set, EMAIL_COLUMN, values, select=table.select
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
