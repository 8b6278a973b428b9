"""Addresses stored with whitespace that Dataverse's ``=`` does not see through, by match key.

Kept per process and refreshed with the lookups (``records.DataverseCrmRecords``), so a lookup
can ask for such rows as they are stored. Packed, because it grows with the tables.
"""

from __future__ import annotations

import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate

# Long enough that a large sync reads the padded rows a few times, not once per batch.
PADDED_INDEX_TTL_S = 60.0


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
