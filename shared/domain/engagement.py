"""Engagement events (capability C4): what a person did with the account's emails and forms.

The event store keeps one partition per person, so a timeline view is one partition read. Keys
are derived here, purely, so the store and its fake agree and a replayed read lands on the same
row:

- the partition key is the sha256 of the person's match key (``person_key``): an address never
  appears in a key, and the same person spelled ``Ann@X.com`` or `` ann@x.com`` is one partition;
- an event's id is a hash of what identifies it in dotdigital (kind, campaign or survey id, time
  to the second, clicked/viewed URL or response id, match key), never of its display fields, so a
  campaign renamed between two reads still yields the same id;
- row keys sort the partition's summary row first and then events newest first, because Table
  Storage returns rows in ascending key order and a timeline shows the latest events first.

Times are kept to the second: dotdigital reports whole seconds, and a sub-second difference
between two reads of one event must not make it two events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from shared.domain.email import InvalidEmail, match_key


class EventKind(StrEnum):
    SEND = "send"
    OPEN = "open"
    CLICK = "click"
    PAGE_VIEW = "page_view"
    FORM_RESPONSE = "form_response"


# The timeline's "Emails" filter (architecture C4).
EMAIL_KINDS: frozenset[EventKind] = frozenset({EventKind.SEND, EventKind.OPEN})

SUMMARY_ROW_KEY = "a|summary"
EVENT_ROW_PREFIX = "e|"
# Upper bound (exclusive) of every event row key: "|" is 0x7C and "}" 0x7D.
EVENT_ROW_END = "e}"
# Eleven digits of seconds reach past the year 5000; the inverted value stays non-negative.
_MAX_SECONDS = 10**11 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A string property holds at most 32k characters in Table Storage, and a transaction of 100 rows
# must stay under 4 MiB; details are meant to be small (a URL, a handful of answers).
MAX_DETAILS_CHARS = 16_000
MAX_TITLE_CHARS = 400
MAX_SOURCE_ID_CHARS = 200
# The details key that tells two events of one kind, source and second apart.
_DISCRIMINATORS = ("response_id", "url")


def person_key(key: str) -> str:
    """The partition of the person with match key ``key`` (see ``shared.domain.email``)."""
    if not isinstance(key, str) or not key or key != key.strip().casefold():
        raise ValueError("person_key needs a match key (trimmed and case-folded)")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_person_key(value: object) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(char in "0123456789abcdef" for char in value))


MAX_TIMELINE_PAGE = 500  # events an event store returns in one page at most


def timeline_kinds(
    person_key: str, kinds: Collection[EventKind] | None, limit: int
) -> frozenset[EventKind] | None:
    """What a timeline page asks for, checked by the rules every event store keeps: the kinds
    (None: all); ``ValueError`` naming the first rule broken."""
    if not is_person_key(person_key):
        raise ValueError("invalid person key")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_TIMELINE_PAGE:
        raise ValueError(f"limit must be 1..{MAX_TIMELINE_PAGE}")
    if kinds is None:
        return None
    wanted = frozenset(EventKind(kind) for kind in kinds)
    if not wanted:
        raise ValueError("kinds must name at least one kind, or be None for all")
    return wanted


def _whole_seconds(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(seconds=1)


def _check_time(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
    at = value.astimezone(UTC).replace(microsecond=0)
    if not 0 <= _whole_seconds(at) <= _MAX_SECONDS:
        raise ValueError(f"{what} {at.isoformat()} is before 1970 or too far ahead")
    return at


def _canonical_details(details: object) -> tuple[dict[str, Any], str]:
    """Details as they read back from JSON, and their JSON text; ValueError if not JSON-able."""
    if not isinstance(details, Mapping):
        raise ValueError("details must be a mapping")
    try:
        text = json.dumps(details, sort_keys=True, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise ValueError(f"details are not JSON: {error}") from error
    if len(text) > MAX_DETAILS_CHARS:
        raise ValueError(f"details longer than {MAX_DETAILS_CHARS} characters as JSON")
    loaded: dict[str, Any] = json.loads(text)
    return loaded, text


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """An event as the store keeps it: without the address (the partition says whose it is)."""

    event_id: str
    kind: EventKind
    at: datetime
    source_id: str
    title: str
    details: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class EngagementEvent:
    """One interaction as read from dotdigital.

    ``details`` holds what the timeline expands to: ``url`` for a click or page view,
    ``answers`` (a list of ``{"question", "answer"}``) and ``response_id`` for a form response,
    e.g. ``mail_client`` for an open. Raises ValueError for an address that matches nothing
    (the reader counts those and leaves them out), a naive time, or details that are not JSON.
    A title longer than ``MAX_TITLE_CHARS`` is shortened: it is for display only.
    """

    email: str
    kind: EventKind
    at: datetime
    source_id: str
    title: str
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = match_key(self.email)
        if isinstance(key, InvalidEmail):
            raise ValueError(f"event address cannot be matched: {key.reason}")
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "kind", EventKind(self.kind))
        object.__setattr__(self, "at", _check_time(self.at, "event time"))
        if not isinstance(self.source_id, str) or not 0 < len(self.source_id) <= \
                MAX_SOURCE_ID_CHARS:
            raise ValueError(f"source id must be 1-{MAX_SOURCE_ID_CHARS} characters")
        if not isinstance(self.title, str):
            raise ValueError("title must be text")
        object.__setattr__(self, "title", self.title[:MAX_TITLE_CHARS])
        object.__setattr__(self, "details", _canonical_details(self.details)[0])

    @property
    def person_key(self) -> str:
        return person_key(self.key)

    @property
    def event_id(self) -> str:
        """Deterministic: the same event read twice (even with another title) has the same id."""
        discriminator = next(
            (str(self.details[name]) for name in _DISCRIMINATORS if name in self.details), ""
        )
        # JSON keeps the parts apart whatever characters they contain.
        identity = json.dumps([self.kind.value, self.source_id, _whole_seconds(self.at),
                               discriminator, self.key], ensure_ascii=False)
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]

    @property
    def details_json(self) -> str:
        return _canonical_details(self.details)[1]

    def entry(self) -> TimelineEntry:
        return TimelineEntry(self.event_id, self.kind, self.at, self.source_id, self.title,
                             self.details)


def row_key(event: EngagementEvent | TimelineEntry) -> str:
    """``e|<inverted seconds>|<event id>``: ascending order is newest first, ties by id."""
    inverted = _MAX_SECONDS - _whole_seconds(_check_time(event.at, "event time"))
    return f"{EVENT_ROW_PREFIX}{inverted:011d}|{event.event_id}"


def first_row_key_before(before: datetime) -> str:
    """The lowest event row key of an event strictly earlier than ``before``."""
    bound = _check_time(before, "before")
    newest_purged = _whole_seconds(bound) - (1 if bound == before.astimezone(UTC) else 0)
    # An event at second s is earlier than ``before`` iff s < before (seconds are whole).
    if newest_purged < 0:
        return EVENT_ROW_END  # nothing is that old
    return f"{EVENT_ROW_PREFIX}{_MAX_SECONDS - newest_purged:011d}|"


@dataclass(frozen=True, slots=True)
class PersonSummary:
    """Outline statistics of one person; counts what the store holds (after retention)."""

    sends: int = 0
    opens: int = 0
    clicks: int = 0
    page_views: int = 0
    form_responses: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None

    def count(self, kind: EventKind) -> int:
        value: int = getattr(self, _FIELD_OF[kind])
        return value

    @property
    def total(self) -> int:
        return sum(self.count(kind) for kind in EventKind)


_FIELD_OF: dict[EventKind, str] = {
    EventKind.SEND: "sends",
    EventKind.OPEN: "opens",
    EventKind.CLICK: "clicks",
    EventKind.PAGE_VIEW: "page_views",
    EventKind.FORM_RESPONSE: "form_responses",
}
EMPTY_SUMMARY = PersonSummary()


class Countable(Protocol):
    """What a summary needs of an event (an ``EngagementEvent``, a ``TimelineEntry``, a row)."""

    @property
    def kind(self) -> EventKind: ...

    @property
    def at(self) -> datetime: ...


def add(summary: PersonSummary, events: Iterable[Countable]) -> PersonSummary:
    """``summary`` with ``events`` counted; sums, min and max, so the order never matters.

    The caller passes each event once: the store adds only the rows it has just created.
    """
    counts = {kind: summary.count(kind) for kind in EventKind}
    first, last = summary.first_at, summary.last_at
    for event in events:
        counts[event.kind] += 1
        first = event.at if first is None or event.at < first else first
        last = event.at if last is None or event.at > last else last
    return replace(summary, **{_FIELD_OF[kind]: n for kind, n in counts.items()},
                   first_at=first, last_at=last)


def summarise(events: Iterable[Countable]) -> PersonSummary:
    return add(EMPTY_SUMMARY, events)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """``new`` rows created; ``existing`` events already stored or repeated within the input."""

    new: int
    existing: int


@dataclass(frozen=True, slots=True)
class TimelinePage:
    """One page of a person's timeline, newest first.

    ``summary`` is given on the first page only (None on continuation pages: the view already
    shows it); an unknown person's first page has an empty summary. ``continuation`` is opaque;
    None when nothing follows. A page may hold fewer events than asked for (even none) and still
    have a continuation: the store stops where the service stopped scanning.
    """

    summary: PersonSummary | None
    events: tuple[TimelineEntry, ...]
    continuation: str | None
