"""Ports: what the services need from the outside world, as Protocols.

Adapters in ``shared/adapters`` implement them; tests use in-memory fakes with the same behaviour.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Generic, Protocol, TypeVar

from shared.domain.model import EmailAccount, ScheduleUpdate, SyncSchedule, SyncType
from shared.domain.optin import OptInUpdate, RecordValue


# --- Publishing batches ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One queue message; ``message_id`` is deterministic so a re-publish is a duplicate."""

    message_id: str
    body: bytes
    content_type: str = "application/json"
    application_properties: Mapping[str, str | int] = field(default_factory=dict)
    # Messages of one session are handled in order by one consumer at a time; None = no session.
    session_id: str | None = None


class BatchPublisher(Protocol):
    def publish(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        """Send every message or raise; a partial send is repeated safely by message id."""


# --- CRM settings (Dataverse tables that administrators edit) -------------------------------------
class CrmSettings(Protocol):
    def email_accounts(self) -> list[EmailAccount]:
        """Every connected dotdigital account configured in CRM."""

    def sync_schedules(self) -> list[SyncSchedule]:
        """Every schedule row (one per email account × sync type)."""

    def create_schedule(self, email_account_id: str, sync_type: SyncType) -> SyncSchedule:
        """Add the default row for an account and sync type: manual, status None."""

    def update_schedule(self, row_id: str, update: ScheduleUpdate) -> None:
        """Write the columns ``update`` sets; raises ``NotFound`` if the row was deleted."""


# --- CRM records (contacts, leads, accounts) --------------------------------------------------
class CrmRecords(Protocol):
    def find_by_email_keys(self, email_keys: Collection[str]) -> list[RecordValue]:
        """Contacts, leads and accounts whose ``emailaddress1`` matches one of the keys.

        Keys are ``email.match_key`` values; records match trimmed and case-insensitively.
        """

    def set_opt_in(self, updates: Sequence[OptInUpdate]) -> None:
        """Write the new opt-in types in bulk (all of them, or raise)."""


# --- dotdigital -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EmailPlatformAccount:
    """What dotdigital says about an account: its id and regional API endpoint."""

    account_id: int
    api_endpoint: str


@dataclass(frozen=True, slots=True)
class ContactOptIn:
    """A dotdigital contact's address and opt-in type name, as read (either may be blank)."""

    email: str
    opt_in_type: str


@dataclass(frozen=True, slots=True)
class ContactOptInPage:
    """One page of a modified-since read; ``skip`` is where it started, ``last`` ends the read."""

    skip: int
    contacts: list[ContactOptIn]
    last: bool


class EmailPlatform(Protocol):
    def describe_account(self, account: EmailAccount) -> EmailPlatformAccount:
        """Reach the account with its API user and report where it lives."""

    def modified_contacts(
        self, account: EmailAccount, since: datetime, *, start_skip: int = 0
    ) -> Iterator[ContactOptInPage]:
        """Contacts modified at or after ``since``, in pages of 1000 from ``start_skip`` on.

        The last page is the first short one: no request is made after it.
        """


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
    """Where a reader run is: saved after each published page so a killed run resumes there."""

    STATE_NAME: ClassVar[str] = "cursor"

    run_id: str
    since: datetime
    until: datetime
    next_page: int
    next_batch: int


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

    @property
    def outstanding_batches(self) -> int:
        return self.batches_published - self.batches_applied


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


# --- Run history ----------------------------------------------------------------------------------
class RunJournal(Protocol):
    def record(self, run_id: str, kind: str, summary: Mapping[str, object]) -> None:
        """Store (or replace) the summary of one run; JSON-serialisable values only."""

    def runs(self, kind: str) -> list[dict[str, object]]:
        """Summaries of the runs of one kind, oldest first."""
