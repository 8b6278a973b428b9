"""dotdigital's engagement entries (v2 JSON, read defensively) as ``EngagementEvent`` values.

An entry without a usable date cannot be placed in the window and is left out; one whose address
matches nobody is left out and counted (the page's ``unmatched``). Odd data never stops a read.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.adapters.dotdigital.suppressions import parse_utc
from shared.domain.engagement import EngagementEvent, EventKind


@dataclass(frozen=True, slots=True)
class Window:
    since: dt.datetime
    until: dt.datetime

    def holds(self, at: dt.datetime) -> bool:
        return self.since <= at <= self.until


@dataclass(frozen=True, slots=True)
class Source:
    """A campaign or survey: its id and name (the events' title)."""

    id: int
    name: str


# The date property of each campaign event list, and the event kind it becomes.
LIST_KINDS = {"opens": (EventKind.OPEN, "dateOpened"), "clicks": (EventKind.CLICK, "dateClicked"),
              "page-views": (EventKind.PAGE_VIEW, "dateViewed")}


def event(
    item: dict[str, Any], kind: EventKind, at: dt.datetime, source: Source,
    details: Mapping[str, Any],
) -> EngagementEvent | None:
    """The event, or None when its address matches nobody (the address is never logged)."""
    email = item.get("email")
    try:
        return EngagementEvent(email if isinstance(email, str) else "", kind, at,
                               str(source.id), source.name, details)
    except ValueError:
        return None


def entry_id(item: Any, name: str) -> int | None:
    value = item.get(name) if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def sources(items: list[Any]) -> list[Source]:
    found = {}
    for item in items:
        source_id = entry_id(item, "id")
        if source_id is not None:
            name = item.get("name")
            found[source_id] = Source(source_id, name if isinstance(name, str) else "")
    return sorted(found.values(), key=lambda source: source.id)


def sent_at(item: Any, window: Window) -> dt.datetime | None:
    """When an ``ApiCampaignContactSummary`` row was sent, if that is in the window."""
    at = parse_utc(item.get("dateSent")) if isinstance(item, dict) else None
    return at if at is not None and window.holds(at) else None


def list_details(endpoint: str, item: dict[str, Any]) -> dict[str, Any]:
    """What an open, click or page view shows when expanded: the URL, or the mail client."""
    name, value = ("mail_client", item.get("mailClient")) if endpoint == "opens" \
        else ("url", item.get("url"))
    return {name: value} if isinstance(value, str) and value else {}


class SurveyFields:
    """A survey's questions by field id (and sub-field id), from ``GET /v2/surveys/{id}/fields``
    (pages of fields; a flat list of fields is read as well)."""

    def __init__(self, body: Any) -> None:
        self._text: dict[tuple[int, int | None], str] = {}
        self._choices: dict[int, dict[str, str]] = {}
        for field in _fields(body):
            field_id = entry_id(field, "id")
            if field_id is None:
                continue
            text = _text(field, "text") or f"Field {field_id}"
            self._text[(field_id, None)] = text
            for sub in field.get("subFields") or []:
                sub_id = entry_id(sub, "id")
                if sub_id is not None:
                    self._text[(field_id, sub_id)] = f"{text}: {_text(sub, 'text') or sub_id}"
            self._choices[field_id] = {
                str(choice["id"]): _text(choice, "text")
                for choice in field.get("choices") or []
                if isinstance(choice, dict) and "id" in choice and _text(choice, "text")
            }

    def question(self, field_id: int, sub_id: int | None) -> str:
        return self._text.get((field_id, sub_id)) or self._text.get((field_id, None)) \
            or f"Field {field_id}"

    def answer(self, field_id: int, value: Any) -> str:
        """The answer as text; a choice id becomes the choice's text."""
        if isinstance(value, list):
            return ", ".join(self.answer(field_id, item) for item in value)
        if value is None:
            return ""
        text = value if isinstance(value, str) else str(value)
        return self._choices.get(field_id, {}).get(text, text)


def _fields(body: Any) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else []
    fields: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("fields"), list):
            fields.extend(field for field in item["fields"] if isinstance(field, dict))
        elif isinstance(item, dict):
            fields.append(item)
    return fields


def _text(item: Any, name: str) -> str:
    value = item.get(name) if isinstance(item, dict) else None
    # One shared string per question: every response repeats them.
    return sys.intern(value.strip()) if isinstance(value, str) else ""


def completed_at(item: Any, window: Window) -> dt.datetime | None:
    """When a response was completed, if it is complete and that is in the window. Incomplete
    responses become events when they are completed (that is activity a later read sees)."""
    if not isinstance(item, dict) or item.get("complete") is False:
        return None
    at = parse_utc(item.get("dateCompleted"))
    return at if at is not None and window.holds(at) else None


def response_details(item: dict[str, Any], fields: SurveyFields) -> dict[str, Any]:
    """A completed ``ApiSurveyResponse``'s id and its answers, each with its question, in the
    order given (a list: two answers may share a question's text)."""
    answers = []
    for answer in item.get("givenAnswers") or []:
        field_id = entry_id(answer, "fieldId")
        if field_id is not None:
            answers.append({
                "question": fields.question(field_id, entry_id(answer, "subFieldId")),
                "answer": fields.answer(field_id, answer.get("value")),
            })
    response_id = entry_id(item, "id")
    return {"response_id": str(response_id) if response_id is not None else "",
            "answers": answers}
