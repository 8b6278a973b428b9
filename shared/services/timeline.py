"""A CRM record's engagement timeline (capability C4, the ribbon's Engagement timeline page).

The record is read as the signed-in user, so the user's security roles decide whether its
timeline may be seen at all; only then is the event store asked, once, for one page of the
person's events. The store is keyed by the person's match key, never by an address, so the
address read from CRM is the only way in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.domain.email import InvalidEmail, match_key
from shared.domain.engagement import EMAIL_KINDS, EventKind, TimelinePage, person_key
from shared.domain.enrolment import RecordPerson, RequestRefused, parse_entity, parse_guid
from shared.services.ports import CrmRecordsAsUser, EventStore

DEFAULT_PAGE = 50
MAX_PAGE = 200  # a page the browser draws at once; the store allows more
FILTERS: dict[str, frozenset[EventKind] | None] = {"all": None, "emails": EMAIL_KINDS}
PARAMETERS = frozenset({"entity", "id", "filter", "limit", "continuation"})
# The store's continuation is base64url of JSON; anything else is refused before a read.
_CONTINUATION = re.compile(r"[A-Za-z0-9_=-]{1,2048}")

NO_ADDRESS = "This record has no email address, so no engagement can be matched to it."
BAD_ADDRESS = "This record's email address is not valid, so no engagement can be matched to it."


@dataclass(frozen=True, slots=True)
class TimelineQuery:
    entity: str
    record_id: str
    filter: str = "all"
    limit: int = DEFAULT_PAGE
    continuation: str | None = None


@dataclass(frozen=True, slots=True)
class TimelineView:
    """What the page shows: the person, and their page of events; ``page`` is None (and
    ``message`` says why) when the record has no address to match, or when it was refused."""

    person: RecordPerson
    page: TimelinePage | None
    message: str | None = None


def parse_timeline_query(params: Mapping[str, str]) -> TimelineQuery:
    """The query in a request's parameters, or ``RequestRefused`` naming the rule broken
    (never echoing a value)."""
    unknown = set(params) - PARAMETERS
    if unknown:
        raise RequestRefused("unknown parameters: " + ", ".join(sorted(unknown)))
    chosen = params.get("filter", "all")
    if chosen not in FILTERS:
        raise RequestRefused("filter must be one of " + ", ".join(FILTERS))
    limit_text = params.get("limit")
    limit = DEFAULT_PAGE
    if limit_text is not None:
        if not limit_text.isascii() or not limit_text.isdigit() or \
                not 1 <= int(limit_text) <= MAX_PAGE:
            raise RequestRefused(f"limit must be a whole number from 1 to {MAX_PAGE}")
        limit = int(limit_text)
    continuation = params.get("continuation")
    if continuation is not None and not _CONTINUATION.fullmatch(continuation):
        raise RequestRefused("continuation is malformed")
    return TimelineQuery(entity=parse_entity(params.get("entity")),
                         record_id=parse_guid(params.get("id"), "id"),
                         filter=chosen, limit=limit, continuation=continuation)


class TimelineService:
    def __init__(self, records: CrmRecordsAsUser, store: EventStore) -> None:
        self._records = records
        self._store = store

    def view(self, assertion: str, query: TimelineQuery) -> TimelineView:
        """The record as the user may see it, then one query of the event store (none when the
        record is refused or has no usable address)."""
        person = self._records.person(assertion, query.entity, query.record_id)
        if person.refusal is not None:
            return TimelineView(person, None)
        if person.email is None:
            return TimelineView(person, None, NO_ADDRESS)
        key = match_key(person.email)
        if isinstance(key, InvalidEmail):
            return TimelineView(person, None, BAD_ADDRESS)
        try:
            page = self._store.timeline(person_key(key), kinds=FILTERS[query.filter],
                                        limit=query.limit, continuation=query.continuation)
        except ValueError:
            # Every other argument is valid by construction: the continuation was tampered
            # with or belongs to another store.
            raise RequestRefused("continuation is malformed") from None
        return TimelineView(person, page)
