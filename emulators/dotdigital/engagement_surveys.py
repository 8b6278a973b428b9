"""Surveys and forms of one account (``/v2/surveys``): the form, its pages of fields, responses.

Responses are keyed by email address, never by contact id, as in the real API.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.dotdigital.feature_input import SeedReader, api_date, unique_by

SURVEY_STATES = ("Active", "Inactive", "Pending", "Expired")
_SURVEY_KEYS = (
    "id", "name", "url", "state", "dateCreated", "dateModified", "isAssignedToAddressBook",
    "assignedAddressBookTarget", "assignedSpecificAddressBookId", "totalViews", "pages",
    "responses",
)
_PAGE_KEYS = ("id", "name", "fields")
_FIELD_DEFAULTS: dict[str, Any] = {
    "type": "singleline", "text": "", "isRequired": False, "defaultValue": None, "mode": None,
    "choices": [], "subFields": [], "hasOtherOption": False, "otherOptionChoiceId": 0,
    "otherOptionSubFieldId": 0, "otherOptionTextFieldId": 0,
    "isAssignedToContactDataField": False, "assignedContactDataFieldName": None,
    "assignedContactDataExistsAction": "OverwriteData",
}
_RESPONSE_KEYS = ("id", "email", "dateStarted", "dateCompleted", "givenAnswers")
_ANSWER_KEYS = ("fieldId", "subFieldId", "value")


@dataclass
class SurveyResponse:
    id: int
    email: str
    date_started: dt.datetime
    date_completed: dt.datetime | None
    answers: list[dict[str, Any]]

    @property
    def last_activity(self) -> dt.datetime:
        return self.date_completed or self.date_started

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id, "email": self.email, "started": True,
            "dateStarted": api_date(self.date_started),
            "complete": self.date_completed is not None,
            "dateCompleted": api_date(self.date_completed), "givenAnswers": self.answers,
        }

    def to_seed(self) -> dict[str, Any]:
        seed = self.to_api()
        del seed["started"], seed["complete"]
        if self.date_completed is None:
            del seed["dateCompleted"]
        return seed


@dataclass
class Survey:
    id: int
    properties: dict[str, Any]
    date_created: dt.datetime
    date_modified: dt.datetime
    total_views: int | None
    pages: list[dict[str, Any]]
    responses: list[SurveyResponse]
    by_activity: list[SurveyResponse] = field(default_factory=list)
    activity_keys: list[dt.datetime] = field(default_factory=list)

    def reindex(self) -> None:
        self.by_activity = sorted(self.responses, key=lambda response: response.last_activity)
        self.activity_keys = [response.last_activity for response in self.by_activity]

    @property
    def last_activity(self) -> dt.datetime:
        latest = self.activity_keys[-1] if self.activity_keys else self.date_modified
        return max(latest, self.date_modified)

    def responses_since(self, since: dt.datetime) -> list[SurveyResponse]:
        return self.by_activity[bisect.bisect_left(self.activity_keys, since) :]

    def to_api(self, now: dt.datetime) -> dict[str, Any]:
        complete = [item for item in self.responses if item.date_completed is not None]
        durations = [
            int((item.date_completed - item.date_started).total_seconds())
            for item in complete if item.date_completed is not None
        ]
        return {
            "id": self.id, "name": self.properties["name"], "url": self.properties["url"],
            "dateSurveyCreated": api_date(self.date_created),
            "dateSurveyModified": api_date(self.date_modified),
            "state": self.properties["state"],
            "firstActiveDate": api_date(self.date_created), "lastInactiveDate": None,
            "scheduledStartDate": None, "scheduledEndDate": None, "confirmationMode": "Text",
            "submissionMode": "Single",
            "fieldCount": sum(len(page["fields"]) for page in self.pages),
            "notifyCreatorOnResponse": False, "respondentNotificationType": "None",
            "respondentNotificationCampaignId": None,
            "isAssignedToAddressBook": self.properties["isAssignedToAddressBook"],
            "assignedAddressBookTarget": self.properties["assignedAddressBookTarget"],
            "assignedSpecificAddressBookId": self.properties["assignedSpecificAddressBookId"],
            "firstResponseDate": api_date(
                min((item.date_started for item in self.responses), default=None)
            ),
            "lastResponseDate": api_date(self.activity_keys[-1] if self.activity_keys else None),
            "totalCompleteResponses": len(complete),
            "totalCompleteResponsesInLastDay": _completed_within(complete, now, 1),
            "totalCompleteResponsesInLastWeek": _completed_within(complete, now, 7),
            "totalIncompleteResponses": len(self.responses) - len(complete),
            "totalViews": (
                self.total_views if self.total_views is not None else len(self.responses)
            ),
            "totalBounces": 0, "timeToCompleteMax": max(durations, default=0),
            "timeToCompleteMin": min(durations, default=0),
            "timeToCompleteTotal": sum(durations), "sourceDirectTotal": 0,
            "sourceEmailTotal": 0, "sourceEmbeddedTotal": 0, "sourcePopoverTotal": 0,
            "sourceFacebookTotal": 0, "sourceTwitterTotal": 0, "sourceGooglePlusTotal": 0,
            "sourceOtherTotal": 0,
        }

    def to_seed(self) -> dict[str, Any]:
        seed: dict[str, Any] = {"id": self.id, **self.properties}
        seed["dateCreated"] = api_date(self.date_created)
        seed["dateModified"] = api_date(self.date_modified)
        if self.total_views is not None:
            seed["totalViews"] = self.total_views
        seed["pages"] = self.pages
        seed["responses"] = [response.to_seed() for response in self.responses]
        return seed


def _completed_within(complete: list[SurveyResponse], now: dt.datetime, days: int) -> int:
    cutoff = now - dt.timedelta(days=days)
    return sum(1 for item in complete if item.date_completed and item.date_completed >= cutoff)


def parse_surveys(items: list[tuple[str, Any]], now: dt.datetime) -> dict[int, Survey]:
    surveys = [_parse_survey(where, raw, now) for where, raw in items]
    unique_by(surveys, lambda survey: survey.id, "survey id", "surveys")
    return {survey.id: survey for survey in sorted(surveys, key=lambda s: s.id)}


def _parse_survey(where: str, raw: Mapping[str, Any], now: dt.datetime) -> Survey:
    reader = SeedReader(raw, where, _SURVEY_KEYS)
    survey_id = reader.integer("id")
    created = reader.date("dateCreated", now)
    properties = {
        "name": reader.text("name"),
        "url": reader.text("url", f"https://r1.dotdigital-pages.com/p/{survey_id}"),
        "state": reader.choice("state", SURVEY_STATES, "Active"),
        "isAssignedToAddressBook": reader.flag("isAssignedToAddressBook"),
        "assignedAddressBookTarget": reader.text("assignedAddressBookTarget", "AllContacts"),
        "assignedSpecificAddressBookId": reader.optional_integer("assignedSpecificAddressBookId"),
    }
    pages = [_parse_page(at, item) for at, item in reader.objects("pages")]
    responses: list[SurveyResponse] = []
    for index, (at, item) in enumerate(reader.objects("responses"), start=1):
        responses.append(_parse_response(at, item, index))
    unique_by(responses, lambda response: response.id, "response id", f"{where}.responses")
    survey = Survey(
        survey_id, properties, created, reader.date("dateModified", created),
        reader.optional_integer("totalViews"), pages, responses,
    )
    survey.reindex()
    return survey


def _parse_page(where: str, raw: Any) -> dict[str, Any]:
    reader = SeedReader(raw, where, _PAGE_KEYS)
    fields = []
    for at, item in reader.objects("fields"):
        field_reader = SeedReader(item, at, ("id", *_FIELD_DEFAULTS))
        fields.append({"id": field_reader.integer("id"), **_FIELD_DEFAULTS, **item})
    return {"id": reader.integer("id"), "name": reader.optional_text("name"), "fields": fields}


def _parse_response(where: str, raw: Any, position: int) -> SurveyResponse:
    reader = SeedReader(raw, where, _RESPONSE_KEYS)
    answers = []
    for at, item in reader.objects("givenAnswers"):
        answer = SeedReader(item, at, _ANSWER_KEYS)
        if "value" not in item:
            raise ValueError(f"{at}.value: required")
        answers.append({
            "fieldId": answer.integer("fieldId"),
            "subFieldId": answer.optional_integer("subFieldId"), "value": item["value"],
        })
    started = reader.date("dateStarted")
    completed = reader.optional_date("dateCompleted")
    if completed is not None and completed < started:
        raise ValueError(f"{where}.dateCompleted: before dateStarted")
    return SurveyResponse(
        id=reader.integer("id", position), email=reader.text("email"), date_started=started,
        date_completed=completed, answers=answers,
    )


def merged_responses(survey: Survey, items: list[tuple[str, Any]]) -> list[SurveyResponse]:
    """The survey's responses with ``items`` appended (ids continue after the highest one)."""
    next_id = max((response.id for response in survey.responses), default=0) + 1
    added = [_parse_response(where, raw, next_id + index) for index, (where, raw) in
             enumerate(items)]
    merged = [*survey.responses, *added]
    unique_by(merged, lambda response: response.id, "response id", "responses")
    return merged
