"""What contacts did with dotdigital campaigns and forms in a window, as ``EngagementEvent``
pages resumable from an opaque marker (see ``engagement_marker``).

dotdigital v2 has no "all activity since" endpoint: activity is read per campaign and per
survey, and only for those with activity since the window's start:

1. ``GET /v2/campaigns/with-activity-since/{since}`` and ``GET /v2/surveys/with-activity-since/
   {since}`` (each read once per run, 1000 and 500 a request: the documented maxima);
2. per campaign: ``activities/since-date/{since}`` (2000 rows a request) → a ``send`` per row
   sent in the window; then ``opens``, ``clicks`` and ``page-views`` ``/since-date/{since}``
   (1000 a request) → ``open``, ``click`` and ``page_view`` events. A list that none of the
   campaign's activity rows counts any entry of is not requested (a campaign without site
   tracking costs no page-views call), and a list is left as soon as it passes ``until`` (the
   lists are in date order);
3. per survey: ``responses/with-activity-since/{since}`` (1000 a request) → a ``form_response``
   per response completed in the window, its answers named by ``GET /v2/surveys/{id}/fields``
   (requested once per survey per run, and only when a response needs it).

No call is made per contact. Every request gives one page, yielded at once, so memory stays flat
however long the read; a page may hold few or no events and still moves the marker.

Lists ordered by latest activity (activity rows, responses) reorder while a read goes on: a row
that gains activity moves to the end. Each request therefore re-reads the last entries of the
previous one (``engagement_paging.OVERLAP``) and drops those (by contact id or response id): up
to that many moves between two requests never hide an unread row. A row that moved is read again
at the end; its event repeats one already read (the same event id), which the store keeps once.
Event lists (opens, clicks, page views) only grow at their end, so plain offsets are exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared.adapters.dotdigital import engagement_marker as markers
from shared.adapters.dotdigital.client import DotdigitalClient, format_since
from shared.adapters.dotdigital.engagement_items import (
    LIST_KINDS,
    Source,
    SurveyFields,
    Window,
    completed_at,
    event,
    list_details,
    response_details,
    sent_at,
)
from shared.adapters.dotdigital.engagement_marker import Position
from shared.adapters.dotdigital.engagement_paging import every, page, past_overlap
from shared.adapters.dotdigital.platform import DotdigitalEmailPlatform
from shared.adapters.dotdigital.suppressions import parse_utc
from shared.adapters.http.policy import CallStats
from shared.domain.engagement import EngagementEvent, EventKind
from shared.domain.model import EmailAccount
from shared.services.ports import EngagementEventsPage as EngagementPage

MAX_ACTIVITY_SELECT = 2000  # activities/since-date documents 2000
MAX_LIST_SELECT = 1000  # campaigns, opens, clicks, page views, responses
MAX_SURVEY_SELECT = 500  # surveys/with-activity-since ("between 1 and 500")
MAX_PAGE_SIZE = MAX_ACTIVITY_SELECT
_SUMMARY_COUNTS = {markers.OPENS: "numOpens", markers.CLICKS: "numClicks",
                   markers.PAGE_VIEWS: "numPageViews"}


@dataclass(slots=True)
class Step:
    """One request's events, the entries left out as unmatched, and where the campaign or
    survey goes on (None: it is done)."""

    events: list[EngagementEvent]
    unmatched: int
    position: Position | None = None

    def add(self, found: EngagementEvent | None) -> None:
        if found is None:
            self.unmatched += 1
        else:
            self.events.append(found)


class DotdigitalEngagement:
    def __init__(self, platform: DotdigitalEmailPlatform) -> None:
        self._platform = platform

    @property
    def stats(self) -> CallStats:
        """The platform's request counts (this read's requests are among them)."""
        return self._platform.stats

    def events(
        self, account: EmailAccount, since: dt.datetime, until: dt.datetime, *,
        marker: str | None = None, page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[EngagementPage]:
        """Engagement in ``[since, until]``, in pages, from ``marker`` on (None: the start).
        ``page_size`` caps every request's ``select`` (each endpoint's own maximum applies
        too). Arguments and the marker are checked here, before any request: a malformed
        marker is a ``ValueError``."""
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("since and until must be timezone-aware")
        if since > until:
            raise ValueError("since must not be after until")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        position = markers.start() if marker is None else markers.decode(marker)
        window = Window(since.astimezone(dt.UTC), until.astimezone(dt.UTC))
        return _pages(self._platform.client_for(account), window, position, page_size)


def _pages(
    client: DotdigitalClient, window: Window, position: Position, page_size: int
) -> Iterator[EngagementPage]:
    date = format_since(window.since)
    queue: list[tuple[str, Source]] = []
    if position.phase == markers.CAMPAIGNS:
        campaigns = every(client, f"v2/campaigns/with-activity-since/{date}",
                           "campaigns with activity", MAX_LIST_SELECT)
        queue.extend((markers.CAMPAIGNS, campaign) for campaign in campaigns
                     if campaign.id >= position.source)
    surveys = every(client, f"v2/surveys/with-activity-since/{date}", "surveys with activity",
                     MAX_SURVEY_SELECT)
    queue.extend((markers.SURVEYS, survey) for survey in surveys
                 if position.phase == markers.CAMPAIGNS or survey.id >= position.source)
    if not queue:
        yield EngagementPage(events=[], next_marker=None)
        return
    for number, (phase, source) in enumerate(queue):
        if (phase, source.id) == (position.phase, position.source):
            here = position
        else:  # a new one, or the marker's has left the list: its first entry
            here = markers.first_of(phase, source.id)
        after = markers.first_of(*_key(queue[number + 1])) if number + 1 < len(queue) else None
        steps = (_campaign_steps(client, source, here, window, page_size)
                 if phase == markers.CAMPAIGNS
                 else _survey_steps(client, source, here, window, page_size))
        for step in steps:
            following = step.position or after
            yield EngagementPage(
                events=step.events,
                next_marker=markers.encode(following) if following is not None else None,
                unmatched=step.unmatched,
            )
            del step


def _key(item: tuple[str, Source]) -> tuple[str, int]:
    return item[0], item[1].id


def _campaign_steps(
    client: DotdigitalClient, campaign: Source, position: Position, window: Window,
    page_size: int,
) -> Iterator[Step]:
    date = format_since(window.since)
    base = f"v2/campaigns/{campaign.id}"
    current: Position | None = position
    while current is not None and current.endpoint == markers.ACTIVITIES:
        select = min(page_size, MAX_ACTIVITY_SELECT)
        batch = past_overlap(client, f"{base}/activities/since-date/{date}",
                              "campaign activities since", current, select, "contactId")
        kinds = set(current.kinds)
        step = Step([], 0)
        for row in batch.fresh:
            kinds.update(letter for endpoint, letter in markers.EVENT_LISTS.items()
                         if _positive(row, _SUMMARY_COUNTS[endpoint]))
            at = sent_at(row, window)
            if at is not None:
                step.add(event(row, EventKind.SEND, at, campaign, {}))
        found = "".join(letter for letter in markers.EVENT_LISTS.values() if letter in kinds)
        current = (Position(markers.CAMPAIGNS, campaign.id, markers.ACTIVITIES, batch.read,
                            batch.tail, found) if batch.full
                   else _next_list(campaign.id, markers.ACTIVITIES, found))
        del batch
        step.position = current
        yield step
    while current is not None:
        endpoint, select = current.endpoint, min(page_size, MAX_LIST_SELECT)
        items = page(client, f"{base}/{endpoint}/since-date/{date}",
                      f"campaign {endpoint} since", select, current.skip)
        step, last = Step([], 0), None
        kind, date_name = LIST_KINDS[endpoint]
        for item in items:
            at = parse_utc(item.get(date_name)) if isinstance(item, dict) else None
            last = at or last
            if at is not None and window.holds(at):
                step.add(event(item, kind, at, campaign, list_details(endpoint, item)))
        # In date order: once past ``until``, the rest of the list is too.
        more = len(items) >= select and (last is None or last <= window.until)
        current = (Position(markers.CAMPAIGNS, campaign.id, endpoint,
                            current.skip + len(items), (), current.kinds) if more
                   else _next_list(campaign.id, endpoint, current.kinds))
        del items
        step.position = current
        yield step


def _next_list(campaign_id: int, after: str, kinds: str) -> Position | None:
    """The campaign's next event list that its rows show entries of; None when none is left."""
    endpoints = markers.CAMPAIGN_ENDPOINTS
    for endpoint in endpoints[endpoints.index(after) + 1 :]:
        if markers.EVENT_LISTS[endpoint] in kinds:
            return Position(markers.CAMPAIGNS, campaign_id, endpoint, 0, (), kinds)
    return None


def _survey_steps(
    client: DotdigitalClient, survey: Source, position: Position, window: Window,
    page_size: int,
) -> Iterator[Step]:
    path = f"v2/surveys/{survey.id}/responses/with-activity-since/{format_since(window.since)}"
    fields: SurveyFields | None = None
    current: Position | None = position
    while current is not None:
        select = min(page_size, MAX_LIST_SELECT)
        batch = past_overlap(client, path, "survey responses since", current, select, "id")
        step = Step([], 0)
        for item in batch.fresh:
            at = completed_at(item, window)
            if at is None:
                continue
            if fields is None:
                fields = SurveyFields(client.send_json(
                    "GET", f"v2/surveys/{survey.id}/fields", "survey fields"))
            step.add(event(item, EventKind.FORM_RESPONSE, at, survey,
                           response_details(item, fields)))
        current = (Position(markers.SURVEYS, survey.id, markers.RESPONSES, batch.read,
                            batch.tail) if batch.full else None)
        del batch
        step.position = current
        yield step


def _positive(item: Any, name: str) -> bool:
    value = item.get(name) if isinstance(item, dict) else None
    return not isinstance(value, bool) and isinstance(value, int) and value > 0
