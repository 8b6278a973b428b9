"""HTTP API of the ribbon's Engagement timeline page.

``GET /api/timeline?entity=contact|lead&id=<guid>&filter=all|emails[&limit=n][&continuation=..]``
answers the record's name and address, its person's summary (first page only) and one page of
events, newest first. Authentication and the error statuses are the ribbon API's (``_answer``);
a record the user may not read is 403, a missing one 404, both as ``{"error": "..."}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from shared import bootstrap
from shared.domain.engagement import PersonSummary, TimelineEntry
from shared.domain.enrolment import NOT_ALLOWED
from shared.entrypoints.crm_http import authenticated, error_response, json_response
from shared.services.timeline import (
    TimelineView,
    parse_timeline_query,
)

bp = func.Blueprint()
NOT_READABLE = "You may not read this record in CRM."
NOT_FOUND = "The record was not found in CRM."


def _time(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(summary: PersonSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {"sends": summary.sends, "opens": summary.opens, "clicks": summary.clicks,
            "pageViews": summary.page_views, "formResponses": summary.form_responses,
            "first": _time(summary.first_at), "last": _time(summary.last_at)}


def _event(entry: TimelineEntry) -> dict[str, Any]:
    return {"id": entry.event_id, "kind": entry.kind.value, "at": _time(entry.at),
            "sourceId": entry.source_id, "title": entry.title, "details": dict(entry.details)}


def _body(view: TimelineView) -> dict[str, Any]:
    page = view.page
    return {
        "name": view.person.name, "email": view.person.email,
        # No address: the view is a first one all the same, with nothing counted.
        "summary": _summary(PersonSummary() if page is None else page.summary),
        "events": [] if page is None else [_event(entry) for entry in page.events],
        "continuation": None if page is None else page.continuation,
        "message": view.message,
    }


def _timeline(req: func.HttpRequest, assertion: str) -> func.HttpResponse:
    query = parse_timeline_query(dict(req.params))
    view = bootstrap.services().timeline_service().view(assertion, query)
    if view.person.refusal is not None:
        return error_response(403, NOT_READABLE) if view.person.refusal == NOT_ALLOWED \
            else error_response(404, NOT_FOUND)
    return json_response(200, _body(view))


@bp.function_name("EngagementTimeline")
@bp.route(route="timeline", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def engagement_timeline(req: func.HttpRequest) -> func.HttpResponse:
    return authenticated(_timeline)(req)
