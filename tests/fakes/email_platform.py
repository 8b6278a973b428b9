"""In-memory ``EmailPlatform``: per-account contacts with change times, paged like dotdigital v3.

``GET /contacts/v3?~modified=gte::<since>`` lists contacts in ascending (modified, id) order and
pages by marker: a page's ``next`` marker is the key of the last contact it served, and the next
page starts after that key. So a contact modified while a read goes on moves behind the marker
and is read again, and no other contact shifts past a page boundary (an offset, such as the index
of the next contact, would skip one whenever an earlier contact moved to the end). The last page
is the one without a ``next`` marker, as the emulator answers.

The SuppressionLists side (``suppression_events``, ``suppress``, ``resubscribe``) keeps its own
addresses (``FakeAddress``), apart from the opt-in contacts above, and behaves as the dotdigital
adapter does: the suppression list (ascending by removal date and id) first, then every contact
modified since ``since`` as a resubscriber candidate, of which only those subscribed with a last
subscription in ``[since, until]`` are events. Both phases page by key, so an address leaving
the list during a read hides no other; phase 1 ends at its first short page and a candidate page
may hold no event, as the adapter's pages do. Resubscribe answers follow dotdigital's rules.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from shared.domain.commands import OptInChange, SuppressionEvent
from shared.domain.email import match_key
from shared.domain.model import EmailAccount
from shared.domain.programs import PlatformProgram
from shared.errors import AppError, BadRequest, System
from shared.services.ports import ContactPage, EmailPlatformAccount, EventPage

PAGE_SIZE = 1000


@dataclass(frozen=True)
class StoredContact:
    email: str
    opt_in_type: str
    modified: dt.datetime
    contact_id: int  # dotdigital's id: breaks ties between equal change times

    @property
    def key(self) -> tuple[dt.datetime, int]:
        return (self.modified, self.contact_id)


def marker_after(contact: StoredContact) -> str:
    """The marker of the page that ends with ``contact`` (opaque to the app)."""
    return f"{contact.modified.isoformat()}|{contact.contact_id}"


def _key_of(marker: str) -> tuple[dt.datetime, int]:
    modified, _, contact_id = marker.rpartition("|")
    return dt.datetime.fromisoformat(modified), int(contact_id)


# --- SuppressionLists -----------------------------------------------------------------------------
SUBSCRIBED = "Subscribed"
RESUBSCRIBABLE = frozenset({"Unsubscribed", "Suppressed"})
MAX_SELECT = 1000


@dataclass
class FakeAddress:
    """One dotdigital contact as the suppression sync sees it. ``status`` is ``Subscribed`` or
    the suppression reason; ``removed_at`` is set while suppressed."""

    email: str
    contact_id: int
    status: str
    modified: dt.datetime
    removed_at: dt.datetime | None = None
    last_subscribed: dt.datetime | None = None
    challenged_at: dt.datetime | None = None

    @property
    def list_key(self) -> tuple[dt.datetime, int]:
        assert self.removed_at is not None
        return (self.removed_at, self.contact_id)

    @property
    def change_key(self) -> tuple[dt.datetime, int]:
        return (self.modified, self.contact_id)


def _key_text(key: tuple[dt.datetime, int]) -> str:
    return f"{key[0].isoformat()}|{key[1]}"


def _parse_event_marker(marker: str) -> tuple[str, tuple[dt.datetime, int] | None]:
    """("sup" | "res", the key the next page starts after); ValueError when malformed."""
    phase, separator, rest = marker.partition(":")
    if phase not in ("sup", "res") or not separator or (phase == "sup" and not rest):
        raise ValueError("not a marker of a suppression read")
    if not rest:
        return phase, None
    moment, _, contact_id = rest.rpartition("|")
    try:
        parsed = dt.datetime.fromisoformat(moment)
        if parsed.tzinfo is None or not contact_id.isdigit():
            raise ValueError(marker)
    except ValueError:
        raise ValueError("not a marker of a suppression read") from None
    return phase, (parsed, int(contact_id))


class _SuppressionSide:
    """The three SuppressionLists methods of ``FakeEmailPlatform`` (mixed in below)."""

    addresses: dict[str, dict[str, FakeAddress]]
    now: Callable[[], dt.datetime]
    resend_window: dt.timedelta
    event_requests: list[tuple[str, str | None]]
    fail_event_request: int | None
    event_failure: AppError | None
    on_request: Callable[[], None]
    suppress_calls: list[tuple[str, list[str]]]
    suppress_failure: AppError | None
    suppress_refused: set[str]
    resubscribe_calls: list[tuple[str, str, str | None, str | None]]
    resubscribe_answers: dict[str, str | AppError]
    challenge_emails: list[tuple[str, str, dt.datetime]]
    _ids: Iterator[int]

    # Seeding and playing the contact's side.
    def _address(self, account: str, email: str, at: dt.datetime) -> FakeAddress:
        key = match_key(email)
        assert isinstance(key, str), "fake addresses must be valid"
        book = self.addresses.setdefault(account, {})
        if key not in book:
            book[key] = FakeAddress(email, next(self._ids), SUBSCRIBED, at)
        return book[key]

    def add_suppression(self, account: str, email: str, reason: str, at: dt.datetime) -> None:
        """The address is suppressed at ``at`` (an address already suppressed keeps its first
        reason and date, as dotdigital does)."""
        address = self._address(account, email, at)
        if address.removed_at is None:
            address.status, address.removed_at, address.modified = reason, at, at

    def add_subscriber(self, account: str, email: str, last_subscribed: dt.datetime | None,
                       modified: dt.datetime) -> None:
        address = self._address(account, email, modified)
        address.status, address.removed_at = SUBSCRIBED, None
        address.last_subscribed, address.modified = last_subscribed, modified

    def resubscribe_contact(self, account: str, email: str, at: dt.datetime) -> None:
        """The address is resubscribed at ``at`` (a form, or a confirmed challenge email)."""
        self.add_subscriber(account, email, at, at)
        self._address(account, email, at).challenged_at = None

    # EmailPlatform.
    def suppression_events(
        self, account: EmailAccount, since: dt.datetime, until: dt.datetime, *,
        marker: str | None = None, page_size: int = MAX_SELECT,
    ) -> Iterator[EventPage]:
        if since.tzinfo is None or until.tzinfo is None or since > until:
            raise ValueError("since and until must be aware, since not after until")
        if not 1 <= page_size <= MAX_SELECT:
            raise ValueError(f"page_size must be between 1 and {MAX_SELECT}")
        phase, after = ("sup", None) if marker is None else _parse_event_marker(marker)
        return self._event_pages(account.row_id, since, until, phase, after, page_size)

    def _event_pages(
        self, account: str, since: dt.datetime, until: dt.datetime, phase: str,
        after: tuple[dt.datetime, int] | None, page_size: int,
    ) -> Iterator[EventPage]:
        marker: str | None = None
        while True:
            self.event_requests.append((account, marker))
            self.on_request()
            if self.fail_event_request == len(self.event_requests) and self.event_failure:
                raise self.event_failure
            # Sorted per request: addresses changed since the last page are in their new place.
            book = self.addresses.get(account, {}).values()
            if phase == "sup":
                listed = sorted((a for a in book if a.removed_at is not None
                                 and a.removed_at >= since
                                 and (after is None or a.list_key > after)),
                                key=lambda a: a.list_key)[:page_size]
                events = [SuppressionEvent(a.email, a.list_key[0], a.status) for a in listed]
                if len(listed) < page_size:
                    phase, after, marker = "res", None, "res:"
                else:
                    after = listed[-1].list_key
                    marker = f"sup:{_key_text(after)}"
                yield EventPage(events=events, next_marker=marker)
                continue
            matching = sorted((a for a in book if a.modified >= since
                               and (after is None or a.change_key > after)),
                              key=lambda a: a.change_key)
            candidates = matching[:page_size]
            events = [SuppressionEvent(a.email, a.last_subscribed, "") for a in candidates
                      if a.status == SUBSCRIBED and a.last_subscribed is not None
                      and since <= a.last_subscribed <= until]
            if len(matching) <= page_size:
                yield EventPage(events=events, next_marker=None)
                return
            after = candidates[-1].change_key
            marker = f"res:{_key_text(after)}"
            yield EventPage(events=events, next_marker=marker)

    def suppress(self, account: EmailAccount, emails: Sequence[str]) -> set[str]:
        self.suppress_calls.append((account.row_id, list(emails)))
        if self.suppress_failure is not None:
            raise self.suppress_failure
        if any(match_key(email) in self.suppress_refused for email in emails):
            # dotdigital refuses the whole call for one address it will not take.
            raise BadRequest(System.DOTDIGITAL, "Email is not a valid email address. "
                             "ERROR_PARAMETER_INVALID", status=400, operation="suppress")
        book = self.addresses.get(account.row_id, {})
        not_found: set[str] = set()
        for email in emails:
            key = match_key(email)
            if not isinstance(key, str):
                continue  # not sent: it can be no contact
            if key in book:
                self.add_suppression(account.row_id, email, "Suppressed", self.now())
            else:
                not_found.add(key)
        return not_found

    def resubscribe(
        self, account: EmailAccount, email: str, *, preferred_locale: str | None,
        return_url: str | None,
    ) -> str:
        self.resubscribe_calls.append((account.row_id, email, preferred_locale, return_url))
        key = match_key(email)
        if not isinstance(key, str):
            raise BadRequest(System.DOTDIGITAL,
                             "Email is not a valid email address. ERROR_PARAMETER_INVALID",
                             status=400, operation="resubscribe", code="ERROR_PARAMETER_INVALID")
        override = self.resubscribe_answers.get(key)
        if isinstance(override, AppError):
            raise override
        if override is not None:
            return override
        now = self.now()
        address = self.addresses.get(account.row_id, {}).get(key)
        if address is None or address.status == SUBSCRIBED:
            if address is None:
                self.add_subscriber(account.row_id, email, now, now)
            return "ContactAdded"
        if address.status not in RESUBSCRIBABLE:
            return "ContactCannotBeUnsuppressed"
        if address.status == "Suppressed":  # suppressed by the account: lifted at once
            self.resubscribe_contact(account.row_id, email, now)
            return "ContactAdded"
        previous = address.challenged_at
        if previous is None or now - previous >= self.resend_window:
            address.challenged_at = now
            self.challenge_emails.append((account.row_id, address.email, now))
        return "ContactChallenged"


class _ProgramsSide:
    """``programs``: each account's programs as dotdigital would list them, every status."""

    program_lists: dict[str, list[PlatformProgram]]
    program_requests: list[str]  # account row id per call
    program_failures: dict[str, AppError]  # by account row id: the call raises

    def set_programs(self, account: str, *programs: PlatformProgram) -> None:
        self.program_lists[account] = list(programs)

    def programs(self, account: EmailAccount) -> list[PlatformProgram]:
        self.program_requests.append(account.row_id)
        failure = self.program_failures.get(account.row_id)
        if failure is not None:
            raise failure
        return list(self.program_lists.get(account.row_id, []))


class FakeEmailPlatform(_SuppressionSide, _ProgramsSide):
    def __init__(self) -> None:
        self.program_lists = {}
        self.program_requests = []
        self.program_failures = {}
        self.contacts: dict[str, list[StoredContact]] = {}
        self.requests: list[tuple[str, dt.datetime, str | None]] = []  # (account, since, marker)
        self.fail_describe: dict[str, AppError] = {}
        self.fail_at_request: int | None = None  # 1-based request number that raises
        self.failure: AppError | None = None
        self.on_request: Callable[[], None] = lambda: None  # e.g. to move a fake clock on
        self._ids = itertools.count(1)
        # SuppressionLists: addresses per account by match key, and what was asked of them.
        self.addresses: dict[str, dict[str, FakeAddress]] = {}
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self.resend_window = dt.timedelta(hours=24)
        self.event_requests: list[tuple[str, str | None]] = []  # (account, marker)
        self.fail_event_request: int | None = None  # 1-based event request number that raises
        self.event_failure: AppError | None = None
        self.suppress_calls: list[tuple[str, list[str]]] = []
        self.suppress_failure: AppError | None = None
        self.suppress_refused: set[str] = set()  # match keys whose suppress call is refused
        self.resubscribe_calls: list[tuple[str, str, str | None, str | None]] = []
        self.resubscribe_answers: dict[str, str | AppError] = {}  # by match key: overrides
        self.challenge_emails: list[tuple[str, str, dt.datetime]] = []  # (account, email, sent)

    def add(self, account: str, email: str, opt_in_type: str, modified: dt.datetime) -> None:
        self.contacts.setdefault(account, []).append(
            StoredContact(email, opt_in_type, modified, next(self._ids))
        )

    def modify(self, account: str, email: str, opt_in_type: str, modified: dt.datetime) -> None:
        """Change a contact as dotdigital would: same id, a new change time (so a later place in
        the change order)."""
        stored = self.contacts[account]
        (index,) = [n for n, contact in enumerate(stored) if contact.email == email]
        stored[index] = replace(stored[index], opt_in_type=opt_in_type, modified=modified)

    def describe_account(self, account: EmailAccount) -> EmailPlatformAccount:
        if account.row_id in self.fail_describe:
            raise self.fail_describe[account.row_id]
        return EmailPlatformAccount(account_id=1001, api_endpoint="https://r1-api.example/")

    def modified_contacts(
        self, account: EmailAccount, since: dt.datetime, *, marker: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[ContactPage]:
        while True:
            self.requests.append((account.row_id, since, marker))
            self.on_request()
            if self.fail_at_request == len(self.requests) and self.failure is not None:
                raise self.failure
            after = None if marker is None else _key_of(marker)
            # Sorted per request: contacts modified since the last page are in their new place.
            matching = sorted(
                (c for c in self.contacts.get(account.row_id, [])
                 if c.modified >= since and (after is None or c.key > after)),
                key=lambda c: c.key,
            )
            page = matching[:page_size]
            marker = marker_after(page[-1]) if len(matching) > page_size else None
            yield ContactPage(
                contacts=[OptInChange(c.email, c.opt_in_type) for c in page], next_marker=marker,
            )
            if marker is None:
                return
