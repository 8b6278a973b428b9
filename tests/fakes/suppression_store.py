"""An in-memory ``CrmSuppressions``: Email Suppression rows, records with Do not bulk email and
Notes, matched by key as Dataverse is, written all or nothing as one change set is."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from shared.domain.email import match_key
from shared.domain.suppression import (
    FlagRecord,
    Note,
    SuppressionOrigin,
    SuppressionPlan,
    SuppressionReason,
    SuppressionRow,
)
from shared.services.ports import PushResult, RequestResult


@dataclass
class StoredNote:
    table: str
    row_id: str
    subject: str
    text: str


class InMemoryCrmSuppressions:
    def __init__(self) -> None:
        self.rows: dict[str, SuppressionRow] = {}
        self.records: dict[tuple[str, str], FlagRecord] = {}
        self.notes: list[StoredNote] = []
        self.writes = 0
        self._ids = itertools.count(1)

    # --- test helpers -----------------------------------------------------------------------
    def add_row(self, email: str, account: str, **values: object) -> SuppressionRow:
        key = match_key(email)
        row = SuppressionRow(f"row-{next(self._ids)}", email, key if isinstance(key, str) else None,
                             account, **values)  # type: ignore[arg-type]
        self.rows[row.row_id] = row
        return row

    def add_record(self, table: str, email: str, flag: bool = False) -> FlagRecord:
        key = match_key(email)
        assert isinstance(key, str)
        record = FlagRecord(table, f"{table}-{next(self._ids)}", key, flag)
        self.records[(table, record.row_id)] = record
        return record

    def state(self) -> tuple[object, ...]:
        """Everything the sync decides, comparable between two worlds (ids left out)."""
        rows = sorted((r.email_key or "", r.email_account_id or "", r.active,
                       r.reason, r.suppressed_on, r.resubscribed_on, r.resubscription_status)
                      for r in self.rows.values())
        flags = sorted((r.table, r.email_key, r.row_id, r.do_not_bulk_email)
                       for r in self.records.values())
        notes = sorted((n.table, n.row_id, n.subject, n.text) for n in self.notes)
        return (tuple(rows), tuple(flags), tuple(notes))

    # --- the port -----------------------------------------------------------------------------
    def lookup(
        self, email_keys: Collection[str], *, with_records: bool
    ) -> tuple[list[SuppressionRow], list[FlagRecord]]:
        keys = set(email_keys)
        rows = [row for row in self.rows.values() if row.email_key in keys]
        records = ([r for r in self.records.values() if r.email_key in keys]
                   if with_records else [])
        return rows, records

    def apply(self, account_id: str, plan: SuppressionPlan) -> None:
        for change in plan.change:
            if change.row_id not in self.rows:
                raise KeyError(change.row_id)
        for flag in plan.flags:
            if (flag.table, flag.row_id) not in self.records:
                raise KeyError(flag.row_id)
        self.writes += 1
        for new in plan.create:
            self.add_row(new.email, account_id, active=True, reason=new.reason,
                         suppressed_on=new.suppressed_on, origin=SuppressionOrigin.DOTDIGITAL)
        for change in plan.change:
            self.rows[change.row_id] = replace(
                self.rows[change.row_id], active=change.active, reason=change.reason,
                suppressed_on=change.suppressed_on, resubscribed_on=change.resubscribed_on,
                resubscription_status=change.resubscription_status,
            )
        for flag in plan.flags:
            key = (flag.table, flag.row_id)
            self.records[key] = replace(self.records[key], do_not_bulk_email=flag.do_not_bulk_email)
        self.notes += [StoredNote(n.table, n.row_id, n.subject, n.text) for n in plan.notes]

    def unpushed_rows(self, account_id: str) -> list[SuppressionRow]:
        return [row for row in self.rows.values()
                if row.email_account_id == account_id and row.active and row.made_in_crm
                and row.pushed_on is None]

    def mark_pushed(self, results: Sequence[PushResult]) -> None:
        self.writes += 1
        for result in results:
            row = self.rows[result.row_id]
            self.rows[result.row_id] = replace(
                row, pushed_on=result.pushed_on,
                suppressed_on=result.suppressed_on or row.suppressed_on,
                resubscription_status=result.status or row.resubscription_status,
            )

    def resubscribe_requests(self, account_id: str) -> list[SuppressionRow]:
        return [row for row in self.rows.values()
                if row.email_account_id == account_id and row.request_resubscribe]

    def record_requests(self, results: Sequence[RequestResult]) -> None:
        for result in results:
            if result.row_id not in self.rows or result.note.row_id not in self.rows:
                raise KeyError(result.row_id)
        self.writes += 1
        for result in results:
            row = self.rows[result.row_id]
            self.rows[result.row_id] = replace(
                row, request_resubscribe=False, resubscription_status=result.status,
                requested_on=result.requested_on or row.requested_on,
            )
            note: Note = result.note
            self.notes.append(StoredNote(note.table, note.row_id, note.subject, note.text))


def reason_of(name: str) -> SuppressionReason:
    reason = SuppressionReason.from_dotdigital(name)
    assert reason is not None
    return reason


EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
