"""Suppression and resubscription rules (architecture §1.1 C2). Pure: standard library only.

An Email Suppression row is kept per (address, email account) and holds the *latest* event
dotdigital reported for it: active with a reason and date while suppressed, inactive with the
resubscription date once resubscribed. Rows are deactivated rather than deleted so that they
remember the resubscription: an older suppression delivered late (a replayed or reordered batch)
is then recognised as older and changes nothing, where a deleted row would be created again.
The rules compare dates, never arrival order, so a batch applied twice, or batches applied in
any order, leave the same rows, flags and Notes; a Note is written only with the change of a row
from active to inactive, so each resubscription gets exactly one.

*Do not bulk email* follows the rows when the account's option is on: set while the account's
row is active, cleared once it is inactive unless another account whose option is on still has
an active row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum

from shared.domain.commands import SuppressionEvent
from shared.domain.email import match_key


class SuppressionReason(IntEnum):
    """dotdigital's suppression reasons, plus the address a CRM user added; Dataverse choice
    values (``ec_suppressionreason``)."""

    UNSUBSCRIBED = 100000000
    SOFT_BOUNCED = 100000001
    HARD_BOUNCED = 100000002
    ISP_COMPLAINED = 100000003
    MAIL_BLOCKED = 100000004
    DIRECT_COMPLAINT = 100000005
    SUPPRESSED = 100000006
    NOT_ALLOWED = 100000007
    DOMAIN_SUPPRESSION = 100000008
    NO_MX_RECORD = 100000009
    ADDED_IN_CRM = 100000010

    @classmethod
    def from_dotdigital(cls, name: object) -> SuppressionReason | None:
        """The reason for a dotdigital name such as ``HardBounced``; None if unknown."""
        if not isinstance(name, str):
            return None
        return _REASON_BY_NAME.get(name.strip().casefold())

    @property
    def dotdigital_name(self) -> str:
        return _REASON_NAMES[self]

    @property
    def in_plain_words(self) -> str:
        """Why an address with this reason cannot simply be resubscribed, for CRM users."""
        return _REASON_WORDS[self]


_REASON_NAMES = {
    SuppressionReason.UNSUBSCRIBED: "Unsubscribed",
    SuppressionReason.SOFT_BOUNCED: "SoftBounced",
    SuppressionReason.HARD_BOUNCED: "HardBounced",
    SuppressionReason.ISP_COMPLAINED: "IspComplained",
    SuppressionReason.MAIL_BLOCKED: "MailBlocked",
    SuppressionReason.DIRECT_COMPLAINT: "DirectComplaint",
    SuppressionReason.SUPPRESSED: "Suppressed",
    SuppressionReason.NOT_ALLOWED: "NotAllowed",
    SuppressionReason.DOMAIN_SUPPRESSION: "DomainSuppression",
    SuppressionReason.NO_MX_RECORD: "NoMxRecord",
    SuppressionReason.ADDED_IN_CRM: "AddedInCrm",
}
_REASON_BY_NAME = {name.casefold(): reason for reason, name in _REASON_NAMES.items()}
_REASON_WORDS = {
    SuppressionReason.UNSUBSCRIBED: "the contact unsubscribed",
    SuppressionReason.SOFT_BOUNCED: "the address reached the soft bounce limit",
    SuppressionReason.HARD_BOUNCED: "the address hard bounced",
    SuppressionReason.ISP_COMPLAINED: "the contact complained to their email provider (ISP "
                                      "complaint)",
    SuppressionReason.MAIL_BLOCKED: "the receiving mail server blocked the email",
    SuppressionReason.DIRECT_COMPLAINT: "the contact complained directly",
    SuppressionReason.SUPPRESSED: "the address was suppressed by the account",
    SuppressionReason.NOT_ALLOWED: "the address is on the global suppression list",
    SuppressionReason.DOMAIN_SUPPRESSION: "the address's domain is suppressed",
    SuppressionReason.NO_MX_RECORD: "the address's domain cannot receive email (no MX record)",
    SuppressionReason.ADDED_IN_CRM: "the address was added to the suppression list in CRM",
}


class SuppressionOrigin(IntEnum):
    """Where a row came from (``ec_suppressionorigin``)."""

    DOTDIGITAL = 100000000
    CRM = 100000001


@dataclass(frozen=True, slots=True)
class SuppressionRow:
    """One ``ec_emailsuppression`` row as read. ``email_key`` is None for an address that cannot
    match anything (such a row is never changed by the sync)."""

    row_id: str
    email: str
    email_key: str | None
    email_account_id: str | None
    active: bool
    reason: SuppressionReason | None = None
    suppressed_on: dt.datetime | None = None
    resubscribed_on: dt.datetime | None = None
    origin: SuppressionOrigin | None = None
    pushed_on: dt.datetime | None = None
    request_resubscribe: bool = False
    requested_on: dt.datetime | None = None
    resubscription_status: str | None = None

    @property
    def made_in_crm(self) -> bool:
        """Rows the connector writes always say dotdigital; a user's row says CRM or nothing."""
        return self.origin is not SuppressionOrigin.DOTDIGITAL


@dataclass(frozen=True, slots=True)
class FlagRecord:
    """A contact, lead or account by its matched address, with its *Do not bulk email*."""

    table: str
    row_id: str
    email_key: str
    do_not_bulk_email: bool


@dataclass(frozen=True, slots=True)
class NewSuppressionRow:
    email: str
    reason: SuppressionReason
    suppressed_on: dt.datetime


@dataclass(frozen=True, slots=True)
class RowChange:
    """New values for an existing row (every field is written)."""

    row_id: str
    active: bool
    reason: SuppressionReason | None
    suppressed_on: dt.datetime | None
    resubscribed_on: dt.datetime | None
    resubscription_status: str | None


@dataclass(frozen=True, slots=True)
class Note:
    """A Note on a record (``table`` is a CRM record table or ``ec_emailsuppression``).

    ``with_change`` names the suppression row whose deactivation the Note reports: the two are
    written together or not at all, so a retried batch never writes the Note twice."""

    table: str
    row_id: str
    subject: str
    text: str
    with_change: str | None = None


@dataclass(frozen=True, slots=True)
class FlagChange:
    table: str
    row_id: str
    do_not_bulk_email: bool


@dataclass
class SuppressionPlan:
    """Everything one batch writes; the adapter writes it all or nothing."""

    create: list[NewSuppressionRow] = field(default_factory=list)
    change: list[RowChange] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    flags: list[FlagChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.change or self.notes or self.flags)


# items: as received; invalid_email / unknown_reason: skipped; rows_*: Email Suppression rows;
# resubscribed_without_row: resubscriptions of addresses this account had no row for (new
# signups look the same: nothing to undo); dnbe_set / dnbe_cleared: records whose Do not bulk
# email changed; notes: Notes written; failed: items of a batch given up on.
SUPPRESSION_COUNTERS = (
    "items", "invalid_email", "unknown_reason", "rows_created", "rows_updated", "rows_removed",
    "resubscribed_without_row", "dnbe_set", "dnbe_cleared", "notes", "failed",
)


@dataclass(frozen=True, slots=True)
class AccountView:
    """The email account a batch belongs to, as the reader saw it when the run started."""

    row_id: str
    name: str
    update_do_not_bulk_email: bool
    # The accounts whose option is on: only their active rows keep Do not bulk email set when
    # this account's row is deactivated. Another account's suppression that does not drive the
    # flag cannot hold it either, so the result never depends on which batch lands last.
    dnbe_accounts: frozenset[str] = frozenset()


def resubscribed_text(at: dt.datetime, account_name: str) -> str:
    return f"Resubscribed on {format_date(at)} to {account_name}."


def format_date(at: dt.datetime) -> str:
    """Dates in statuses and Notes: UTC, to the minute, unambiguous in every locale."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def latest_per_address(
    events: Iterable[SuppressionEvent], counters: dict[str, int]
) -> dict[str, tuple[SuppressionEvent, SuppressionReason | None]]:
    """Each valid address's latest event (by date; at the same instant a suppression wins, the
    safe side for consent), with its reason. Invalid addresses and unknown reasons are counted."""
    latest: dict[str, tuple[SuppressionEvent, SuppressionReason | None]] = {}
    for event in events:
        key = match_key(event.email)
        if not isinstance(key, str):
            counters["invalid_email"] += 1
            continue
        reason = None
        if event.suppressed:
            reason = SuppressionReason.from_dotdigital(event.reason)
            if reason is None:
                counters["unknown_reason"] += 1
                continue
        # Dataverse keeps date-times to the second: compared and written at that precision, a
        # replayed event finds the row it wrote equal, not older.
        event = replace(event, at=event.at.replace(microsecond=0))
        seen = latest.get(key)
        if seen is None or _rank(event) > _rank(seen[0]):
            latest[key] = (event, reason)
    return latest


def _rank(event: SuppressionEvent) -> tuple[dt.datetime, int]:
    return (event.at, 1 if event.suppressed else 0)


def own_row(rows: Sequence[SuppressionRow]) -> SuppressionRow | None:
    """The row the sync keeps for one address and account when users made several: an active
    one first, then the most recent, then by id (the same choice every time)."""
    if not rows:
        return None
    return max(rows, key=lambda row: (row.active, _moment(row), row.row_id))


def _moment(row: SuppressionRow) -> dt.datetime:
    dates = [d for d in (row.suppressed_on, row.resubscribed_on) if d is not None]
    return max(dates) if dates else _EPOCH


_EPOCH = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


def plan_batch(
    events: Iterable[SuppressionEvent],
    account: AccountView,
    rows: Iterable[SuppressionRow],
    records: Iterable[FlagRecord],
) -> tuple[SuppressionPlan, dict[str, int]]:
    """What one batch of ``account``'s events changes, given every account's suppression rows
    and the CRM records for the batch's addresses."""
    counters = dict.fromkeys(SUPPRESSION_COUNTERS, 0)
    event_list = list(events)
    counters["items"] = len(event_list)
    latest = latest_per_address(event_list, counters)
    own: dict[str, list[SuppressionRow]] = {}
    others_active: set[str] = set()
    for row in rows:
        if row.email_key is None or row.email_key not in latest:
            continue
        if row.email_account_id == account.row_id:
            own.setdefault(row.email_key, []).append(row)
        elif row.active and row.email_account_id in account.dnbe_accounts:
            others_active.add(row.email_key)
    by_address: dict[str, list[FlagRecord]] = {}
    for record in records:
        if record.email_key in latest:
            by_address.setdefault(record.email_key, []).append(record)

    plan = SuppressionPlan()
    for key in sorted(latest):
        event, reason = latest[key]
        kept = own_row(own.get(key, []))
        active_after: bool | None
        if reason is not None:
            active_after = _suppress(plan, counters, kept, event, reason)
        else:
            active_after = _resubscribe(plan, counters, kept, event, account,
                                        by_address.get(key, []))
        if account.update_do_not_bulk_email and active_after is not None:
            wanted = active_after or key in others_active
            for record in by_address.get(key, []):
                if record.do_not_bulk_email != wanted:
                    plan.flags.append(FlagChange(record.table, record.row_id, wanted))
                    counters["dnbe_set" if wanted else "dnbe_cleared"] += 1
    return plan, counters


def _suppress(
    plan: SuppressionPlan, counters: dict[str, int], row: SuppressionRow | None,
    event: SuppressionEvent, reason: SuppressionReason,
) -> bool:
    """Apply a suppression; returns whether the account's row is active afterwards."""
    if row is None:
        plan.create.append(NewSuppressionRow(event.email.strip(), reason, event.at))
        counters["rows_created"] += 1
        return True
    if row.active:
        # A user's own row stays as the user made it; ours follows dotdigital's latest word.
        stale = row.suppressed_on is None or event.at > row.suppressed_on
        if not row.made_in_crm and (row.reason != reason or stale) and (
            row.suppressed_on is None or event.at >= row.suppressed_on
        ):
            plan.change.append(RowChange(row.row_id, True, reason, event.at, row.resubscribed_on,
                                         row.resubscription_status))
            counters["rows_updated"] += 1
        return True
    if row.resubscribed_on is not None and event.at <= row.resubscribed_on:
        return False  # suppressed before the resubscription the row already records
    plan.change.append(RowChange(row.row_id, True, reason, event.at, row.resubscribed_on,
                                 row.resubscription_status))
    counters["rows_updated"] += 1
    return True


def _resubscribe(
    plan: SuppressionPlan, counters: dict[str, int], row: SuppressionRow | None,
    event: SuppressionEvent, account: AccountView, records: Sequence[FlagRecord],
) -> bool | None:
    """Apply a resubscription; returns whether the row is active afterwards (None: no row)."""
    if row is None:
        counters["resubscribed_without_row"] += 1
        return None
    if not row.active:
        return False
    if row.suppressed_on is not None and row.suppressed_on > event.at:
        return True  # suppressed again after this resubscription
    text = resubscribed_text(event.at, account.name)
    plan.change.append(RowChange(row.row_id, False, row.reason, row.suppressed_on, event.at,
                                 text))
    counters["rows_removed"] += 1
    for record in sorted(records, key=lambda r: (r.table, r.row_id)):
        plan.notes.append(Note(record.table, record.row_id, f"Resubscribed to {account.name}",
                               text, with_change=row.row_id))
        counters["notes"] += 1
    return False


def keys_to_deactivate(
    events: Iterable[SuppressionEvent], account_id: str, rows: Iterable[SuppressionRow]
) -> list[str]:
    """The addresses of resubscriptions that find an active row of the account: the only ones
    whose records a batch writes to when the account's option is off (their Notes)."""
    resubscribed = {key for key in (match_key(e.email) for e in events if not e.suppressed)
                    if isinstance(key, str)}
    return sorted({row.email_key for row in rows
                   if row.active and row.email_account_id == account_id
                   and row.email_key in resubscribed})


def keys_of(events: Iterable[SuppressionEvent]) -> list[str]:
    """The valid match keys of a batch's addresses, for its lookups."""
    keys = {match_key(event.email) for event in events}
    return sorted(key for key in keys if isinstance(key, str))

