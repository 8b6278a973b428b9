"""Ports: what the services need from the outside world, as Protocols.

Adapters in ``shared/adapters`` implement them; tests use in-memory fakes with the same behaviour.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Generic, Protocol, TypeVar

from shared.domain.commands import (
    ApplyEngagementBatch,
    ApplyOptInBatch,
    ApplySuppressionBatch,
    OptInChange,
    QueueCommand,
    SuppressionEvent,
    UnreadableBatch,
)
from shared.domain.engagement import EngagementEvent, EventKind, TimelinePage, WriteResult
from shared.domain.enrolment import PlatformContact, RecordAddress, RecordPerson, Submitted
from shared.domain.model import EmailAccount, ScheduleUpdate, SyncSchedule, SyncType
from shared.domain.optin import OptInUpdate, RecordValue
from shared.domain.programs import PlatformProgram, ProgramRow, ProgramsPlan
from shared.domain.suppression import FlagRecord, Note, SuppressionPlan, SuppressionRow

Item = TypeVar("Item", OptInChange, SuppressionEvent, EngagementEvent)


# --- Queues ---------------------------------------------------------------------------------------
class BatchPublisher(Protocol):
    """Puts commands on a queue (Service Bus in Azure, the dev host's local queues locally)."""

    def fit(self, changes: Iterable[Item], *, max_items: int) -> Iterator[tuple[Item, ...]]:
        """Consecutive groups of ``changes`` of at most ``max_items`` that each fit one message.

        The grouping depends only on the input, so a resumed run re-creates the same batches.
        """

    def publish(
        self, queue: str, commands: Sequence[QueueCommand], *, session_id: str | None = None
    ) -> None:
        """Send every command or raise; a repeated send is dropped by its deterministic id."""

    def dead_letter(
        self, queue: str, message: ReceivedMessage, *, reason: str, description: str
    ) -> None:
        """Move a message that can never succeed to ``queue``'s dead letters, as received, with
        the reason; the caller then completes the delivery. Repeating it adds nothing twice."""


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A queue message as delivered: what a dead letter must keep so it can be replayed."""

    message_id: str
    body: bytes
    application_properties: Mapping[str, object]
    session_id: str | None
    delivery_count: int


class MessageCodec(Protocol):
    """Reads the queue messages that ``BatchPublisher`` wrote."""

    def decode_optin(self, body: bytes | str) -> ApplyOptInBatch:
        """The command in ``body``; raises ``MessageFormatError`` when it is not one."""

    def decode_suppression(self, body: bytes | str) -> ApplySuppressionBatch:
        """The command in ``body``; raises ``MessageFormatError`` when it is not one."""

    def decode_engagement(self, body: bytes | str) -> ApplyEngagementBatch:
        """The command in ``body``; raises ``MessageFormatError`` when it is not one."""

    def unreadable(self, properties: Mapping[str, object] | None) -> UnreadableBatch | None:
        """Which opt-in batch an undecodable message was, as its properties say; None if they
        don't."""

    def unreadable_suppression(
        self, properties: Mapping[str, object] | None
    ) -> UnreadableBatch | None:
        """Which suppression batch an undecodable message was; None if they don't say."""

    def unreadable_engagement(
        self, properties: Mapping[str, object] | None
    ) -> UnreadableBatch | None:
        """Which engagement batch an undecodable message was; None if they don't say."""


# --- CRM settings (Dataverse tables that administrators edit) -------------------------------------
class CrmSettings(Protocol):
    def email_accounts(self) -> list[EmailAccount]:
        """Every active connected dotdigital account configured in CRM (deactivated ones are
        left out)."""

    def sync_schedules(self) -> list[SyncSchedule]:
        """Every schedule row (one per email account × sync type)."""

    def create_schedule(self, account: EmailAccount, sync_type: SyncType) -> SyncSchedule:
        """Add the default row for an account and sync type: manual, status None, named after
        the account and the sync type."""

    def update_schedule(self, row_id: str, update: ScheduleUpdate) -> None:
        """Write the columns ``update`` sets; raises ``NotFound`` if the row was deleted."""


# --- CRM records (contacts, leads, accounts) --------------------------------------------------
class CrmRecords(Protocol):
    def find_by_email_keys(self, email_keys: Collection[str]) -> list[RecordValue]:
        """Contacts, leads and accounts whose ``emailaddress1`` has one of these match keys.

        Keys are ``email.match_key`` values. Every record whose own address has that key is
        found, however it is stored (case, surrounding whitespace); no other record is returned.
        """

    def set_opt_in(self, updates: Sequence[OptInUpdate]) -> None:
        """Write the new opt-in types in bulk (all of them, or raise)."""


# --- CRM suppressions (Email Suppression rows, Do not bulk email, Notes) --------------------------
@dataclass(frozen=True, slots=True)
class PushResult:
    """What pushing one CRM-made row to dotdigital came to: stamped ``pushed_on``; the
    suppression date set if the row had none; ``status`` reports a row dotdigital refused."""

    row_id: str
    pushed_on: datetime
    suppressed_on: datetime | None
    status: str | None


@dataclass(frozen=True, slots=True)
class RequestResult:
    """A Request Resubscribe handled: the checkbox is cleared, the status written, the Note
    added to the row, all at once; ``requested_on`` is written when an email went out."""

    row_id: str
    status: str
    note: Note
    requested_on: datetime | None


class CrmSuppressions(Protocol):
    def lookup(
        self, email_keys: Collection[str], *, with_records: bool
    ) -> tuple[list[SuppressionRow], list[FlagRecord]]:
        """Every account's Email Suppression rows for these match keys (active or not), and,
        with ``with_records``, the contacts, leads and accounts with these addresses. Rows and
        records are matched as ``CrmRecords.find_by_email_keys`` matches: exactly, by key."""

    def apply(self, account_id: str, plan: SuppressionPlan) -> None:
        """Write the plan for one email account all or nothing (new rows are linked to it)."""

    def unpushed_rows(self, account_id: str) -> list[SuppressionRow]:
        """The account's active rows that CRM users made and that are not pushed yet."""

    def mark_pushed(self, results: Sequence[PushResult]) -> None:
        """Stamp pushed rows (all of them, or raise)."""

    def resubscribe_requests(self, account_id: str) -> list[SuppressionRow]:
        """The account's rows whose Request Resubscribe is ticked."""

    def record_requests(self, results: Sequence[RequestResult]) -> None:
        """Write the requests' outcomes, all or nothing (each row with its Note)."""


# --- CRM programs (the ec_program mirror of each account's dotdigital programs) ------------------
class CrmPrograms(Protocol):
    def rows(self, account_id: str) -> list[ProgramRow]:
        """Every ``ec_program`` row of the email account, active or not."""

    def apply(self, account_id: str, plan: ProgramsPlan) -> None:
        """Write the plan for one email account (new rows are linked to it), all or nothing as
        far as one change set holds it; a new row's id follows from the account and program,
        so two refreshes racing never create two rows of one program (the second write fails
        with ``PreconditionFailed``: read again and plan again)."""

    def enabled_programs(self, account_id: str) -> list[ProgramRow]:
        """The account's active rows an administrator enabled for CRM users."""


# --- CRM pages: records read as the signed-in user, and dotdigital's enrolments -----------------
class CrmRecordsAsUser(Protocol):
    def addresses(self, assertion: str, entity: str, ids: Sequence[str]) -> list[RecordAddress]:
        """Each record's address, read from Dataverse as the user whose connector-API token is
        ``assertion`` (on-behalf-of), in one batched request per chunk; a record the user may
        not read is reported ``not allowed``, a missing one ``not found``."""

    def person(self, assertion: str, entity: str, record_id: str) -> RecordPerson:
        """One record's name and address, read as the user (a record the user may not read is
        ``not allowed``, a missing one ``not found``)."""


class ProgramEnrolments(Protocol):
    def contact(self, account: EmailAccount, email: str) -> PlatformContact | None:
        """The account's contact with this address; None if it has none."""

    def create_contact(self, account: EmailAccount, email: str) -> PlatformContact:
        """Create the contact (it lands in "All contacts")."""

    def enrol(
        self, account: EmailAccount, program_id: int, contact_ids: Sequence[int]
    ) -> Submitted:
        """Enrol 1 to 25 contacts in a program (never repeated after a lost answer)."""

    def faults(self, account: EmailAccount, enrolment_id: str) -> dict[int, str] | None:
        """Each faulted contact's reason once the enrolment finished; None while processing."""


# --- dotdigital -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EmailPlatformAccount:
    """What dotdigital says about an account: its id and regional API endpoint."""

    account_id: int
    api_endpoint: str


@dataclass(frozen=True, slots=True)
class ContactPage:
    """One page of a modified-since read; ``next_marker`` resumes after it (None: last page)."""

    contacts: list[OptInChange]
    next_marker: str | None


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of a SuppressionLists read; ``next_marker`` resumes after it (None: last)."""

    events: list[SuppressionEvent]
    next_marker: str | None


class EmailPlatform(Protocol):
    def describe_account(self, account: EmailAccount) -> EmailPlatformAccount:
        """Reach the account with its API user and report where it lives."""

    def modified_contacts(
        self, account: EmailAccount, since: datetime, *, marker: str | None = None,
        page_size: int = 1000,
    ) -> Iterator[ContactPage]:
        """Contacts modified at or after ``since``, in pages, from ``marker`` on (None: the
        start). Paging is by position (a seek marker), never by offset, so a contact changed
        while the read goes on never shifts another one into a page already read."""

    def suppression_events(
        self, account: EmailAccount, since: datetime, until: datetime, *,
        marker: str | None = None, page_size: int = 1000,
    ) -> Iterator[EventPage]:
        """The account's suppressions at or after ``since`` (every reason), then its
        resubscribers: contacts now subscribed whose last subscription is in
        ``[since, until]``. Later resubscriptions are left to the next run, so one run never
        holds an address's resubscription together with its earlier suppression. Paged from
        ``marker`` (None: the start) by position, never by offset alone, so an address that
        leaves the suppression list during the read never hides another one."""

    def suppress(self, account: EmailAccount, emails: Sequence[str]) -> set[str]:
        """Suppress these addresses (reason "suppressed by you"); returns the match keys of
        those dotdigital has no contact for. Suppressing an address twice is harmless."""

    def resubscribe(
        self, account: EmailAccount, email: str, *, preferred_locale: str | None,
        return_url: str | None,
    ) -> str:
        """Ask dotdigital to resubscribe ``email`` with a confirmation email; returns its
        ``ApiResubscribeStatuses`` answer. Raises ``BadRequest`` when dotdigital refuses the
        request itself."""

    def programs(self, account: EmailAccount) -> list[PlatformProgram]:
        """Every program of the account, whatever its status, all pages read."""


# --- Sync state: watermarks, checkpoints, runs ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class SyncKey:
    """Whose state: one email account (its ``ec_emailaccountid``) and one sync type."""

    account: str
    sync_type: str


V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Versioned(Generic[V]):
    """A stored value with the ETag to pass back when replacing it (optimistic concurrency)."""

    value: V
    etag: str


class Checkpoint(Protocol):
    """A frozen dataclass of str/int/float/bool/aware-datetime fields (each may be ``| None``)."""

    STATE_NAME: ClassVar[str]


C = TypeVar("C", bound=Checkpoint)


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a reader run is: saved after each flush of published pages so a killed run resumes
    there. ``marker`` is the platform's position after the last page published (None before the
    first page, and again once the last page is published: ``pages_read`` tells them apart)."""

    STATE_NAME: ClassVar[str] = "readcursor"

    run_id: str
    since: datetime
    until: datetime
    marker: str | None
    pages_read: int
    next_batch: int

    @property
    def read_all(self) -> bool:
        return self.pages_read > 0 and self.marker is None


class RunStatus(StrEnum):
    PUBLISHING = "publishing"  # the reader is still publishing batches
    APPLYING = "applying"  # every batch is published; some are not applied yet
    COMPLETED = "completed"  # every published batch is applied


@dataclass(frozen=True, slots=True)
class RunState:
    """One run of one sync: its window, how many batches were published and applied, totals."""

    key: SyncKey
    run_id: str
    status: RunStatus
    since: datetime
    until: datetime
    dry_run: bool
    started_at: datetime
    batches_published: int
    batches_applied: int
    completed_at: datetime | None
    counters: Mapping[str, int]
    etag: str


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """The run after a change; ``completed_now`` is true for exactly one caller per run."""

    run: RunState
    completed_now: bool


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """``applied_now`` is false when the batch had already been counted (a redelivery)."""

    applied_now: bool
    run: RunState
    completed_now: bool


class SyncStateStore(Protocol):
    """Watermarks, checkpoints and run accounting per (email account, sync type).

    Every method raises ``ValueError`` for malformed arguments (nothing is written),
    ``PreconditionFailed`` when an ETag no longer matches (re-read and decide again), and the
    other ``IntegrationError`` classes (system ``tables``) when the store cannot be reached.
    """

    def get_watermark(self, key: SyncKey) -> Versioned[datetime] | None:
        """The time up to which changes have been handed on, or None before the first run."""

    def advance_watermark(
        self, key: SyncKey, to: datetime, *, etag: str | None
    ) -> Versioned[datetime]:
        """Move the watermark to ``to``; ``etag`` None means "there is none yet".

        Raises ``DomainError`` (nothing written) if ``to`` is earlier than the stored value;
        an equal value is a no-op so a repeated step of an interrupted run succeeds.
        """

    def get_checkpoint(self, key: SyncKey, kind: type[C]) -> Versioned[C] | None:
        """The saved checkpoint of type ``kind`` (e.g. ``PageCursor``), or None."""

    def save_checkpoint(self, key: SyncKey, value: C, *, etag: str | None) -> Versioned[C]:
        """Create (``etag`` None: fails if one exists) or replace (``etag`` must match)."""

    def delete_checkpoint(self, key: SyncKey, kind: type[C], *, etag: str) -> None:
        """Remove the checkpoint if ``etag`` still matches; absent already is not an error."""

    def start_run(
        self, key: SyncKey, run_id: str, *, since: datetime, until: datetime, dry_run: bool = False
    ) -> RunState:
        """Create the run (status ``publishing``); returns the existing run if already started."""

    def get_run(self, key: SyncKey, run_id: str) -> RunState | None:
        """The run, or None if unknown."""

    def record_published(
        self, key: SyncKey, run_id: str, *, batches: int, done: bool = False
    ) -> RunUpdate:
        """Record that batches ``0 .. batches-1`` have been published (the count never shrinks);
        ``done`` marks the end of publishing, which completes the run if all are applied.

        Raises ``NotFound`` for an unknown run.
        """

    def mark_batch_applied(
        self, key: SyncKey, run_id: str, batch: int, counters: Mapping[str, int]
    ) -> BatchOutcome:
        """Count batch ``batch`` as applied and add its ``counters`` to the run's, exactly once.

        A redelivered batch changes nothing and returns ``applied_now=False``. The run completes
        when publishing is done and every published batch is applied. Raises ``NotFound`` for an
        unknown run and ``DomainError`` for a batch number beyond a finished run's last batch.
        """

    def purge_runs(self, before: datetime) -> int:
        """Delete the runs completed before ``before`` with their per-batch rows; returns how
        many. Watermarks, checkpoints and runs not completed are kept."""


# --- Run history ----------------------------------------------------------------------------------
class RunJournal(Protocol):
    def record(self, run_id: str, kind: str, summary: Mapping[str, object]) -> None:
        """Store (or replace) the summary of one run; JSON-serialisable values only."""

    def runs(self, kind: str) -> list[dict[str, object]]:
        """Summaries of the runs of one kind, oldest first."""

    def purge(self, before: datetime) -> int:
        """Delete the summaries of runs started before ``before``; returns how many."""


# --- Engagement events ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EngagementEventsPage:
    """One page of an Engagement read; ``next_marker`` resumes after it (None: the last);
    ``unmatched`` entries were left out (their address matches nobody)."""

    events: list[EngagementEvent]
    next_marker: str | None
    unmatched: int = 0


class EngagementSource(Protocol):
    def events(
        self, account: EmailAccount, since: datetime, until: datetime, *,
        marker: str | None = None, page_size: int = 1000,
    ) -> Iterator[EngagementEventsPage]:
        """The account's sends, opens, clicks, page views and form responses in
        ``[since, until]``, in pages, from ``marker`` on; resumable, memory flat."""


class EventStore(Protocol):
    """Engagement events per person (``shared.domain.engagement``), read as a timeline.

    Every method raises ``ValueError`` for malformed arguments (nothing is written) and the
    ``IntegrationError`` classes (system ``tables``) when the store cannot be reached; a write
    that keeps losing races ends in ``PreconditionFailed`` (redeliver: it is idempotent).
    """

    def write(self, events: Iterable[EngagementEvent]) -> WriteResult:
        """Store the events not stored yet, each exactly once, and count them in their person's
        summary in the same transaction: a replayed, duplicated or reordered batch changes
        nothing twice and loses no count."""

    def timeline(
        self,
        person_key: str,
        *,
        kinds: Collection[EventKind] | None = None,
        limit: int = 50,
        continuation: str | None = None,
    ) -> TimelinePage:
        """One page of the person's events, newest first, in one query; ``kinds`` None means
        all. The summary comes with the first page (``continuation`` None) only."""

    def purge(self, before: datetime) -> int:
        """Delete events earlier than ``before``; summaries then count what is kept. Returns how
        many events were deleted."""
