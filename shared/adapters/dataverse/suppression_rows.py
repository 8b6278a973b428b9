"""Email Suppression rows, records' *Do not bulk email* and Notes as Web API rows, both ways.

Reads turn rows into the domain's values; writes turn a ``SuppressionPlan`` (and the other
outcomes) into ``TableWrite`` groups for ``DataverseClient.write_atomically``. Every id is
checked to be a GUID and every table name to be known before anything is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from shared.adapters.dataverse.change_sets import CREATE, UPDATE, Group, TableWrite
from shared.adapters.dataverse.odata import guid_literal
from shared.adapters.dataverse.records import TABLES, CrmTable
from shared.adapters.dataverse.values import (
    read_choice,
    read_datetime,
    read_text,
    write_datetime,
    write_optional_datetime,
)
from shared.domain.email import match_key
from shared.domain.suppression import (
    FlagChange,
    FlagRecord,
    NewSuppressionRow,
    Note,
    RowChange,
    SuppressionOrigin,
    SuppressionPlan,
    SuppressionReason,
    SuppressionRow,
)

ACCOUNT_COLUMN = "_ec_emailaccountid_value"
FLAG_COLUMN = "donotbulkemail"
SUPPRESSIONS = CrmTable(
    "ec_emailsuppression", "ec_emailsuppressions", "ec_emailsuppressionid",
    email_column="ec_emailaddress",
    columns=(
        ACCOUNT_COLUMN, "statecode", "ec_reason", "ec_suppressedon", "ec_resubscribedon",
        "ec_origin", "ec_pushedon", "ec_requestresubscribe", "ec_resubscriptionrequestedon",
        "ec_resubscriptionstatus",
    ),
)
RECORD_TABLES = tuple(replace(table, columns=(FLAG_COLUMN,)) for table in TABLES)
NOTES = CrmTable("annotation", "annotations", "annotationid")  # written, never looked up
# Active / Inactive: (statecode, statuscode) of the ec_ tables.
ACTIVE, INACTIVE = (0, 1), (1, 2)
# Column sizes of the schema: a longer text would fail the whole change set it travels in.
STATUS_LENGTH, SUBJECT_LENGTH, NOTE_LENGTH = 2000, 500, 100_000

_BY_NAME = {table.logical_name: table for table in (*RECORD_TABLES, SUPPRESSIONS)}
NewId = Callable[[], str]


# --- reads ----------------------------------------------------------------------------------------
def suppression_row(row: dict[str, Any], key: str | None) -> SuppressionRow:
    """A row as read; ``key`` is its address's match key (None: it cannot match anything)."""
    return SuppressionRow(
        row_id=str(row[SUPPRESSIONS.primary_key]),
        email=str(row.get(SUPPRESSIONS.email_column) or ""),
        email_key=key,
        email_account_id=read_text(row.get(ACCOUNT_COLUMN)),
        active=row.get("statecode") == ACTIVE[0],
        reason=read_choice(SuppressionReason, row.get("ec_reason")),
        suppressed_on=read_datetime(row.get("ec_suppressedon")),
        resubscribed_on=read_datetime(row.get("ec_resubscribedon")),
        origin=read_choice(SuppressionOrigin, row.get("ec_origin")),
        pushed_on=read_datetime(row.get("ec_pushedon")),
        request_resubscribe=row.get("ec_requestresubscribe") is True,
        requested_on=read_datetime(row.get("ec_resubscriptionrequestedon")),
        resubscription_status=read_text(row.get("ec_resubscriptionstatus")),
    )


def row_by_own_address(row: dict[str, Any]) -> SuppressionRow:
    key = match_key(row.get(SUPPRESSIONS.email_column))
    return suppression_row(row, key if isinstance(key, str) else None)


def row_or_record(table: CrmTable, key: str, row: dict[str, Any]) -> SuppressionRow | FlagRecord:
    """A row of a lookup (``EmailLookup`` conversion): a suppression row or a record."""
    if table.logical_name == SUPPRESSIONS.logical_name:
        return suppression_row(row, key)
    return FlagRecord(table.logical_name, str(row[table.primary_key]), key,
                      row.get(FLAG_COLUMN) is True)


# --- writes ---------------------------------------------------------------------------------------
def new_id() -> str:
    return str(uuid.uuid4())


# Ids of the rows and Notes a batch creates follow from what they record. Service Bus can hand
# a batch to a second consumer while the first still works on it (a lost lock); both plan the
# same creations, and the second change set then fails whole on the ids the first one wrote
# (412), to be planned again from what is there, instead of writing a second row or Note.
_IDS = uuid.UUID("5f0c8a52-4b8e-4d2c-9a61-3c7e2b9d1f40")


def row_id_for(account_id: str, row: NewSuppressionRow) -> str:
    key = match_key(row.email)
    return str(uuid.uuid5(_IDS, f"row|{account_id}|{key}|{row.suppressed_on.isoformat()}"))


def note_id_for(note: Note, make_id: NewId) -> str:
    """A resubscription's Note (it names its row change) has an id of its own content; other
    Notes (a request's outcome, written by the one timer) get a fresh one."""
    if note.with_change is None:
        return make_id()
    return str(uuid.uuid5(_IDS, f"note|{note.table}|{note.row_id}|{note.with_change}|"
                                f"{note.text}"))


def plan_groups(account_id: str, plan: SuppressionPlan, make_id: NewId = new_id) -> list[Group]:
    """A plan's writes in groups that are never written apart (see ``_resubscriptions``), in
    the order that is safe should a plan ever need several change sets: rows, then flags."""
    account = f"/ec_emailaccounts({guid_literal(account_id)})"
    groups: list[Group] = [[write(CREATE, SUPPRESSIONS, [{
        SUPPRESSIONS.primary_key: row_id_for(account_id, row),
        SUPPRESSIONS.email_column: row.email,
        "ec_reason": int(row.reason),
        "ec_suppressedon": write_datetime(row.suppressed_on),
        "ec_origin": int(SuppressionOrigin.DOTDIGITAL),
        "ec_emailaccountid@odata.bind": account,
    }])] for row in plan.create]
    groups += _resubscriptions(plan.change, plan.notes, make_id)
    # Flags last: were a later change set to fail, a flag must never be cleared while its
    # row is still active; a rerun of the batch then sets the flags the rows call for.
    return groups + [[_flag_write(flag)] for flag in plan.flags]


def _flag_write(flag: FlagChange) -> TableWrite:
    table = _table(flag.table)
    if table is SUPPRESSIONS:
        raise ValueError("Do not bulk email is a column of contacts, leads and accounts")
    return write(UPDATE, table, [{
        table.primary_key: guid_literal(flag.row_id), FLAG_COLUMN: flag.do_not_bulk_email,
    }])


def _resubscriptions(
    changes: Sequence[RowChange], notes: Sequence[Note], make_id: NewId
) -> list[Group]:
    """Row changes with the Notes that report them (``Note.with_change``): they share a group,
    so a row is never deactivated without its Notes nor a Note written while its row stays
    active (a rerun would write it again). Notes that report no change of this plan travel
    with all the changes in one group: safe, if larger."""
    notes_of: dict[str | None, list[Note]] = {}
    for note in notes:
        notes_of.setdefault(note.with_change, []).append(note)
    changed = {change.row_id for change in changes}
    if not notes_of.keys() <= changed:
        return [[write(UPDATE, SUPPRESSIONS, [change_row(c) for c in changes]),
                 *note_writes(notes, make_id)]]
    return [[write(UPDATE, SUPPRESSIONS, [change_row(change)]),
             *note_writes(notes_of.get(change.row_id, []), make_id)] for change in changes]


def change_row(change: RowChange) -> dict[str, Any]:
    """Every column of a row change (``RowChange`` writes them all)."""
    state, status = ACTIVE if change.active else INACTIVE
    return {
        SUPPRESSIONS.primary_key: guid_literal(change.row_id),
        "statecode": state,
        "statuscode": status,
        "ec_reason": None if change.reason is None else int(change.reason),
        "ec_suppressedon": write_optional_datetime(change.suppressed_on),
        "ec_resubscribedon": write_optional_datetime(change.resubscribed_on),
        "ec_resubscriptionstatus": _clip(change.resubscription_status, STATUS_LENGTH),
    }


def note_writes(notes: Sequence[Note], make_id: NewId) -> list[TableWrite]:
    """Notes bound to their rows (``objectid_<table>``), each with an id chosen here."""
    rows = []
    for note in notes:
        target = _table(note.table)
        rows.append({
            NOTES.primary_key: note_id_for(note, make_id),
            "subject": _clip(note.subject, SUBJECT_LENGTH),
            "notetext": _clip(note.text, NOTE_LENGTH),
            f"objectid_{target.logical_name}@odata.bind":
                f"/{target.entity_set}({guid_literal(note.row_id)})",
        })
    return [write(CREATE, NOTES, rows)] if rows else []


def write(message: str, table: CrmTable, rows: Sequence[dict[str, Any]]) -> TableWrite:
    return TableWrite(message, table.entity_set, table.logical_name, table.primary_key, rows)


def _table(name: str) -> CrmTable:
    table = _BY_NAME.get(name)
    if table is None:
        raise ValueError(f"unknown table {name!r}")
    return table


def _clip(text: str | None, length: int) -> str | None:
    return None if text is None else text[:length]
