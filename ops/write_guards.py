"""The app's ports for a console dry run: every read passes through, every write is refused.

A dry run relies on the services' own ``dry_run`` handling to skip writes; these guards make
"writes nothing to Dataverse, dotdigital or the state store" a property that is checked rather
than trusted. A refused write raises ``WriteRefused`` (nothing was sent) and the dry run fails
loudly. Only the schedule row's status changes of the run's bookkeeping are dropped quietly:
they are part of every run, and a dry run leaves the row as the administrator sees it. Reads of
the sources are counted for the progress bar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import NoReturn

from shared.domain.engagement import EngagementEvent, EventKind, TimelinePage, WriteResult
from shared.domain.model import EmailAccount, ScheduleUpdate, SyncSchedule, SyncType
from shared.domain.optin import OptInUpdate, RecordValue
from shared.domain.programs import PlatformProgram
from shared.domain.suppression import FlagRecord, SuppressionPlan, SuppressionRow
from shared.services.ports import (
    ContactPage,
    CrmRecords,
    CrmSettings,
    CrmSuppressions,
    EmailPlatform,
    EmailPlatformAccount,
    EngagementEventsPage,
    EngagementSource,
    EventPage,
    EventStore,
    PushResult,
    RequestResult,
)


class WriteRefused(Exception):
    """A dry run reached a write; nothing was written."""


def _refuse(what: str) -> NoReturn:
    raise WriteRefused(f"the dry run tried to {what}")


class ReadOnlySettings:
    def __init__(self, inner: CrmSettings) -> None:
        self._inner = inner

    def email_accounts(self) -> list[EmailAccount]:
        return self._inner.email_accounts()

    def sync_schedules(self) -> list[SyncSchedule]:
        return self._inner.sync_schedules()

    def create_schedule(self, account: EmailAccount, sync_type: SyncType) -> SyncSchedule:
        _refuse("create a schedule row")

    def update_schedule(self, row_id: str, update: ScheduleUpdate) -> None:
        pass  # the run's own status changes: the row stays as the administrator left it


class ReadOnlyRecords:
    def __init__(self, inner: CrmRecords) -> None:
        self._inner = inner

    def find_by_email_keys(self, email_keys: Collection[str]) -> list[RecordValue]:
        return self._inner.find_by_email_keys(email_keys)

    def set_opt_in(self, updates: Sequence[OptInUpdate]) -> None:
        _refuse("write opt-in types to Dataverse")


class ReadOnlySuppressions:
    def __init__(self, inner: CrmSuppressions) -> None:
        self._inner = inner

    def lookup(
        self, email_keys: Collection[str], *, with_records: bool
    ) -> tuple[list[SuppressionRow], list[FlagRecord]]:
        return self._inner.lookup(email_keys, with_records=with_records)

    def apply(self, account_id: str, plan: SuppressionPlan) -> None:
        _refuse("write Email Suppression rows to Dataverse")

    def unpushed_rows(self, account_id: str) -> list[SuppressionRow]:
        return self._inner.unpushed_rows(account_id)

    def mark_pushed(self, results: Sequence[PushResult]) -> None:
        _refuse("stamp pushed rows in Dataverse")

    def resubscribe_requests(self, account_id: str) -> list[SuppressionRow]:
        return self._inner.resubscribe_requests(account_id)

    def record_requests(self, results: Sequence[RequestResult]) -> None:
        _refuse("write Request Resubscribe outcomes to Dataverse")


class ReadingPlatform:
    """dotdigital for reading only; ``on_page(items)`` hears of every page read."""

    def __init__(self, inner: EmailPlatform, on_page: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_page = on_page

    def describe_account(self, account: EmailAccount) -> EmailPlatformAccount:
        return self._inner.describe_account(account)

    def modified_contacts(
        self, account: EmailAccount, since: dt.datetime, *, marker: str | None = None,
        page_size: int = 1000,
    ) -> Iterator[ContactPage]:
        for page in self._inner.modified_contacts(account, since, marker=marker,
                                                  page_size=page_size):
            self._on_page(len(page.contacts))
            yield page

    def suppression_events(
        self, account: EmailAccount, since: dt.datetime, until: dt.datetime, *,
        marker: str | None = None, page_size: int = 1000,
    ) -> Iterator[EventPage]:
        for page in self._inner.suppression_events(account, since, until, marker=marker,
                                                   page_size=page_size):
            self._on_page(len(page.events))
            yield page

    def suppress(self, account: EmailAccount, emails: Sequence[str]) -> set[str]:
        _refuse("suppress addresses in dotdigital")

    def resubscribe(
        self, account: EmailAccount, email: str, *, preferred_locale: str | None,
        return_url: str | None,
    ) -> str:
        _refuse("resubscribe an address in dotdigital")

    def programs(self, account: EmailAccount) -> list[PlatformProgram]:
        return self._inner.programs(account)


class ReadingSource:
    def __init__(self, inner: EngagementSource, on_page: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_page = on_page

    def events(
        self, account: EmailAccount, since: dt.datetime, until: dt.datetime, *,
        marker: str | None = None, page_size: int = 1000,
    ) -> Iterator[EngagementEventsPage]:
        for page in self._inner.events(account, since, until, marker=marker,
                                       page_size=page_size):
            self._on_page(len(page.events))
            yield page


class ReadOnlyEvents:
    def __init__(self, inner: EventStore) -> None:
        self._inner = inner

    def write(self, events: Iterable[EngagementEvent]) -> WriteResult:
        _refuse("store engagement events")

    def timeline(
        self, person_key: str, *, kinds: Collection[EventKind] | None = None, limit: int = 50,
        continuation: str | None = None,
    ) -> TimelinePage:
        return self._inner.timeline(person_key, kinds=kinds, limit=limit,
                                    continuation=continuation)

    def purge(self, before: dt.datetime) -> int:
        _refuse("purge engagement events")


class ReadOnlyJournal:
    def record(self, run_id: str, kind: str, summary: Mapping[str, object]) -> None:
        _refuse("write the run journal")

    def runs(self, kind: str) -> list[dict[str, object]]:
        return []

    def purge(self, before: dt.datetime) -> int:
        _refuse("purge the run journal")
