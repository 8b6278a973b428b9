"""dotdigital's suppression list and resubscriptions as ``SuppressionEvent`` pages, and bulk
suppression.

A read has two phases, each resumable from an opaque marker:

1. The suppression list (every reason): ``GET /v2/contacts/suppressed-since/{date}`` pages
   ascending by (``dateRemoved``, contact id) with ``select``/``skip``. Addresses leave that list
   while a read goes on (a resubscription removes them), so a growing offset would shift unread
   entries into pages already read. The read seeks instead: each request starts at the whole
   second (all a path date can express) of the last entry read and skips the entries of that
   second already read. Should some of those leave the list in between, that skip would pass
   over as many unread entries; so each request starts up to ``OVERLAP`` entries earlier and
   drops the entries whose contact ids the previous page ended with. Only more removals than
   that, all inside one second and between two requests, could still hide an entry.
2. Resubscribers: ``GET /contacts/v3?~modified=gte::<since>`` with ``LASTSUBSCRIBED`` and the
   email channel (there is no resubscribed-since endpoint), paged by dotdigital's own v3 marker.
   A contact whose email channel is subscribed and whose last subscription is in
   ``[since, until]`` is a resubscription; a page may hold few or none and is still yielded, so
   the marker moves.

Markers: ``sup|<YYYY-MM-DDTHH:MM:SSZ>|<skip>|<id,id,...>`` during phase 1 and
``res|<v3 marker>`` during phase 2 (an empty v3 marker: its first page). Entries that lack an
address, a date or a reason become events with a blank address, which the applier counts as
invalid; odd data never stops a read.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.adapters.dotdigital.client import DotdigitalClient
from shared.domain.commands import SuppressionEvent
from shared.domain.email import match_key
from shared.services.ports import EventPage

# How many entries each suppression-list request re-reads (at most half a page, so every request
# moves on): removals between two requests inside the boundary second are tolerated up to this.
# 20 re-read entries cost 2% of a 1000-entry page and keep the marker short (ids only).
OVERLAP = 20
# dotdigital documents no maximum for suppress-contacts. 500 addresses make a body of about
# 25 kB that is answered well inside the call timeout; a retry after a lost answer repeats at
# most 500 harmless suppressions; and even under the flat limit of 2000 calls an hour it
# suppresses a million addresses an hour.
SUPPRESS_CHUNK = 500
LAST_SUBSCRIBED = "LASTSUBSCRIBED"

_SUPPRESSIONS = "sup"
_RESUBSCRIBERS = "res"
_PATH_DATE = "%Y-%m-%dT%H:%M:%SZ"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_COUNT = re.compile(r"[0-9]{1,12}")
_IDS = re.compile(r"(?:[0-9]{1,18}(?:,[0-9]{1,18})*)?")


@dataclass(frozen=True, slots=True)
class SuppressionSeek:
    """Phase 1: request from ``date`` (a whole second, UTC) skipping ``skip`` entries; drop the
    entries with these contact ids (the overlap, already read)."""

    date: dt.datetime
    skip: int
    seen: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ResubscriberSeek:
    """Phase 2: dotdigital's v3 marker (None: the first page)."""

    marker: str | None = None


Position = SuppressionSeek | ResubscriberSeek


@dataclass(frozen=True, slots=True)
class ListEntry:
    """Where one suppression-list entry stands in the list's order."""

    at: dt.datetime | None
    contact_id: int | None


def first_position(since: dt.datetime) -> SuppressionSeek:
    return SuppressionSeek(whole_second(since), 0)


def whole_second(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC without its fraction: what a v2 path date can say (it floors)."""
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def encode_marker(position: Position) -> str:
    if isinstance(position, ResubscriberSeek):
        return f"{_RESUBSCRIBERS}|{position.marker or ''}"
    ids = ",".join(str(contact_id) for contact_id in position.seen)
    return f"{_SUPPRESSIONS}|{position.date.strftime(_PATH_DATE)}|{position.skip}|{ids}"


def decode_marker(marker: str) -> Position:
    """The position a marker names; ``ValueError`` if it is not one this module wrote."""
    if isinstance(marker, str):
        phase, separator, rest = marker.partition("|")
        if phase == _RESUBSCRIBERS and separator:
            return ResubscriberSeek(rest or None)
        parts = rest.split("|")
        if phase == _SUPPRESSIONS and len(parts) == 3 and _DATE.fullmatch(parts[0]) \
                and _COUNT.fullmatch(parts[1]) and _IDS.fullmatch(parts[2]):
            try:
                date = dt.datetime.strptime(parts[0], _PATH_DATE).replace(tzinfo=dt.UTC)
            except ValueError:
                pass  # digits in the right places that make no date
            else:
                seen = tuple(int(contact_id) for contact_id in parts[2].split(",") if contact_id)
                return SuppressionSeek(date, int(parts[1]), seen)
    raise ValueError("not a marker of a dotdigital suppression read")


def parse_utc(value: object) -> dt.datetime | None:
    """An ISO 8601 date-time as aware UTC (zone-less values are UTC, as dotdigital runs in UTC);
    None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


def read_suppression(item: Any, fallback_at: dt.datetime) -> tuple[SuppressionEvent, ListEntry]:
    """One ``ApiContactSuppression`` as an event, and its place in the list."""
    if not isinstance(item, dict):
        return SuppressionEvent("", fallback_at, ""), ListEntry(None, None)
    contact = item.get("suppressedContact")
    email = contact.get("email") if isinstance(contact, dict) else None
    contact_id = contact.get("id") if isinstance(contact, dict) else None
    if isinstance(contact_id, bool) or not isinstance(contact_id, int) or contact_id < 0:
        contact_id = None
    at = parse_utc(item.get("dateRemoved"))
    reason = item.get("reason")
    # One shared string per reason name: a flush buffers tens of thousands of events.
    reason = sys.intern(reason.strip()) if isinstance(reason, str) else ""
    entry = ListEntry(at, contact_id)
    if not isinstance(email, str) or not email.strip() or at is None or not reason:
        # A blank reason would read as a resubscription; a blank address is counted instead.
        return SuppressionEvent("", at or fallback_at, reason), entry
    return SuppressionEvent(email, at, reason), entry


def next_position(current: SuppressionSeek, entries: Sequence[ListEntry]) -> SuppressionSeek:
    """Where the request after a full page of ``entries`` (requested at ``current``) starts."""
    last_at = next((entry.at for entry in reversed(entries) if entry.at is not None), None)
    boundary = whole_second(last_at) if last_at is not None else current.date
    if boundary <= current.date:
        # Still the second the page started in: everything read since then is skipped.
        boundary, tail = current.date, len(entries)
        read_in_second = current.skip + len(entries)
    else:
        # Ascending order: the entries of the boundary second end the page.
        tail = 0
        for entry in reversed(entries):
            if entry.at is not None and entry.at < boundary:
                break
            tail += 1
        read_in_second = tail
    window = min(OVERLAP, len(entries) // 2, tail)
    seen: list[int] = []
    for entry in reversed(entries):
        if len(seen) == window or entry.contact_id is None:
            break
        seen.append(entry.contact_id)
    seen.reverse()
    return SuppressionSeek(boundary, read_in_second - len(seen), tuple(seen))


def read_resubscription(
    item: Any, since: dt.datetime, until: dt.datetime
) -> SuppressionEvent | None:
    """A v3 contact as a resubscription event, or None when it is not one: its email channel is
    not subscribed, or its last subscription is not a date in ``[since, until]``."""
    if not isinstance(item, dict):
        return None
    channels = item.get("channelProperties")
    channel = channels.get("email") if isinstance(channels, dict) else None
    status = channel.get("status") if isinstance(channel, dict) else None
    if not isinstance(status, str) or status.casefold() != "subscribed":
        return None
    at = parse_utc(_data_field(item.get("dataFields"), LAST_SUBSCRIBED))
    if at is None or not since <= at <= until:
        return None
    identifiers = item.get("identifiers")
    email = identifiers.get("email") if isinstance(identifiers, dict) else None
    return SuppressionEvent(email if isinstance(email, str) else "", at, "")


def _data_field(fields: object, name: str) -> object:
    if not isinstance(fields, Mapping):
        return None
    if name in fields:
        return fields[name]
    # Data field names are case-insensitive in dotdigital.
    return next((value for key, value in fields.items()
                 if isinstance(key, str) and key.upper() == name), None)


def event_pages(
    client: DotdigitalClient, since: dt.datetime, until: dt.datetime, position: Position,
    page_size: int,
) -> Iterator[EventPage]:
    """The pages of a read from ``position`` on; each page's JSON is dropped before the next
    request, so memory stays flat in the size of the read."""
    while isinstance(position, SuppressionSeek):
        raw = client.suppressed_since(position.date, select=page_size, skip=position.skip)
        full = len(raw) >= page_size
        events: list[SuppressionEvent] = []
        entries: list[ListEntry] = []
        for item in raw:
            event, entry = read_suppression(item, since)
            entries.append(entry)
            if entry.contact_id is not None and entry.contact_id in position.seen:
                continue  # the overlap: read with the previous page
            if entry.at is not None and entry.at < since:
                continue  # the path date floors ``since`` to its second
            events.append(event)
        del raw
        # A short page ends the list: what follows is the resubscribers' first page.
        position = next_position(position, entries) if full else ResubscriberSeek()
        del entries
        yield EventPage(events=events, next_marker=encode_marker(position))
        del events
    for page in client.subscribed_candidates(since, marker=position.marker, limit=page_size):
        found = [read_resubscription(item, since, until) for item in page.items]
        marker = page.next_marker
        del page
        yield EventPage(
            events=[event for event in found if event is not None],
            next_marker=encode_marker(ResubscriberSeek(marker)) if marker else None,
        )
        del found


def suppress_all(client: DotdigitalClient, emails: Sequence[str]) -> set[str]:
    """Suppress every address in chunks; the match keys of those dotdigital does not know.

    Each address is sent once, trimmed, in the spelling first given; one that cannot be an
    address (no match key) is not sent, as it can be no contact.
    """
    addresses: dict[str, str] = {}
    for email in emails:
        key = match_key(email)
        if isinstance(key, str):
            addresses.setdefault(key, email.strip())
    unique = list(addresses.values())
    del addresses
    not_found: set[str] = set()
    for start in range(0, len(unique), SUPPRESS_CHUNK):
        for entry in client.suppress_contacts(unique[start : start + SUPPRESS_CHUNK]):
            key = match_key(entry.get("email") if isinstance(entry, dict) else None)
            if isinstance(key, str):
                not_found.add(key)
    return not_found
