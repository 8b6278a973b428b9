"""In-memory ``CrmRecords`` with the Dataverse adapter's matching rules, for unit tests.

Records hold raw addresses as Dynamics would (any case, padding); lookups match them by
``match_key``. Calls are recorded so tests can see what was read and written, and a failure can be
injected for the next calls (a 503 by default, or the error set as ``failure``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from shared.domain.email import match_key
from shared.domain.model import OptInType
from shared.domain.optin import OptInUpdate, RecordValue
from shared.errors import AppError, System, TransientError

TABLES = ("contact", "lead", "account")


@dataclass
class StoredRecord:
    table: str
    row_id: str
    email: str
    opt_in: OptInType | None = None


@dataclass
class FakeCrmRecords:
    records: dict[tuple[str, str], StoredRecord] = field(default_factory=dict)
    lookups: list[list[str]] = field(default_factory=list)
    writes: list[list[OptInUpdate]] = field(default_factory=list)
    fail_next: int = 0  # the next N calls raise ``failure``
    failure: AppError | None = None  # None: a TransientError (503)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, table: str, email: str, opt_in: OptInType | None = None) -> StoredRecord:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        record = StoredRecord(table, f"{table}-{next(self._ids)}", email, opt_in)
        self.records[(table, record.row_id)] = record
        return record

    def values(self) -> dict[tuple[str, str], OptInType | None]:
        return {slot: record.opt_in for slot, record in self.records.items()}

    def _maybe_fail(self, operation: str) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            if self.failure is not None:
                raise self.failure
            raise TransientError(System.DATAVERSE, "injected failure", status=503,
                                 operation=operation)

    def find_by_email_keys(self, email_keys: Collection[str]) -> list[RecordValue]:
        keys = set(email_keys)
        for key in keys:
            if match_key(key) != key:
                raise ValueError("lookup keys must be match_key values (trimmed, case-folded)")
        with self._lock:
            self._maybe_fail("find_by_email_keys")
            self.lookups.append(sorted(keys))
            found = []
            for record in self.records.values():
                key = match_key(record.email)
                if isinstance(key, str) and key in keys:
                    found.append(RecordValue(record.table, record.row_id, key, record.opt_in))
            return found

    def set_opt_in(self, updates: Sequence[OptInUpdate]) -> None:
        with self._lock:
            for update in updates:
                if (update.record.table, update.record.row_id) not in self.records:
                    raise ValueError(f"no {update.record.table} {update.record.row_id}")
            self._maybe_fail("set_opt_in")
            self.writes.append(list(updates))
            for update in updates:
                self.records[(update.record.table, update.record.row_id)].opt_in = update.new_value

