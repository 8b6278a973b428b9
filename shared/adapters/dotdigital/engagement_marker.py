"""Where an engagement read stands, and the opaque marker that carries it between runs.

A read walks the campaigns with activity (ascending id), each through its endpoints in
``CAMPAIGN_ENDPOINTS`` order, then the surveys with activity (ascending id) through their
responses. A position names the campaign or survey by id, never by index in a list: on resume
the list is read again and may have grown, and "the first one whose id is at least this" stays
correct whatever joined it.

Marker: ``eng1|<phase>|<id>|<endpoint>|<skip>|<id,id,...>|<kinds>``

- ``phase``: ``cmp`` (campaigns) or ``srv`` (surveys); ``id``: the campaign or survey to go on
  with (or the first one after it, if it has gone from the list);
- ``endpoint`` and ``skip``: the list being read there and how many of its entries are read;
- the ids: the overlap (contact ids for campaign activity rows, response ids for responses): the
  last entries read, requested again and dropped, so that rows which moved to the end of a list
  ordered by latest activity do not shift unread rows into the part already read;
- ``kinds``: which event lists the campaign's activity rows showed any of (``o`` opens, ``c``
  clicks, ``p`` page views); a list none of its rows has is never requested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CAMPAIGNS = "cmp"
SURVEYS = "srv"
ACTIVITIES = "activities"
OPENS = "opens"
CLICKS = "clicks"
PAGE_VIEWS = "page-views"
RESPONSES = "responses"
# The event lists after a campaign's activity rows, with their letter in the marker.
EVENT_LISTS = {OPENS: "o", CLICKS: "c", PAGE_VIEWS: "p"}
CAMPAIGN_ENDPOINTS = (ACTIVITIES, *EVENT_LISTS)
_ENDPOINTS = {CAMPAIGNS: CAMPAIGN_ENDPOINTS, SURVEYS: (RESPONSES,)}
_PREFIX = "eng1"
_COUNT = re.compile(r"[0-9]{1,19}")
_IDS = re.compile(r"(?:[0-9]{1,19}(?:,[0-9]{1,19})*)?")
_KINDS = re.compile(r"o?c?p?")
# Whatever id dotdigital hands out is carried: a marker this module writes must always read
# back, or the run that saved it could never go on. int64 is the bound JSON and the API share.
_INT64_MAX = 9_223_372_036_854_775_807


@dataclass(frozen=True, slots=True)
class Position:
    phase: str
    source: int
    endpoint: str
    skip: int = 0
    seen: tuple[int, ...] = ()
    kinds: str = ""


def start() -> Position:
    return Position(CAMPAIGNS, 0, ACTIVITIES)


def first_of(phase: str, source: int) -> Position:
    """The start of a campaign or survey."""
    return Position(phase, source, _ENDPOINTS[phase][0])


def encode(position: Position) -> str:
    numbers = (position.source, position.skip, *position.seen)
    if not all(0 <= number <= _INT64_MAX for number in numbers):
        # Refused here, where the bad id is read, never when the saved marker is read back.
        raise ValueError("an engagement read position holds an id outside int64")
    seen = ",".join(str(item) for item in position.seen)
    return "|".join((_PREFIX, position.phase, str(position.source), position.endpoint,
                     str(position.skip), seen, position.kinds))


def decode(marker: str) -> Position:
    """The position a marker names; ``ValueError`` if it is not one this module wrote."""
    parts = marker.split("|") if isinstance(marker, str) else []
    if len(parts) == 7 and parts[0] == _PREFIX:
        _, phase, source, endpoint, skip, seen, kinds = parts
        if endpoint in _ENDPOINTS.get(phase, ()) and _COUNT.fullmatch(source) \
                and _COUNT.fullmatch(skip) and _IDS.fullmatch(seen) \
                and _KINDS.fullmatch(kinds) and (phase == CAMPAIGNS or not kinds):
            ids = tuple(int(item) for item in seen.split(",") if item)
            numbers = (int(source), int(skip), *ids)
            if all(number <= _INT64_MAX for number in numbers) and len(ids) <= int(skip):
                return Position(phase, int(source), endpoint, int(skip), ids, kinds)
    raise ValueError("not a marker of a dotdigital engagement read")
