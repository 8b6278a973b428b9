"""Reading surveys and forms: ``/v2/surveys`` and a survey's fields and responses."""

from __future__ import annotations

import re
import threading

from emulators.clock import Clock
from emulators.dotdigital.contracts import AccountContext, AccountRoute
from emulators.dotdigital.engagement_surveys import Survey
from emulators.dotdigital.feature_input import (
    RequestRejected,
    get_route,
    path_date,
    path_id,
    read_flag,
    read_page,
)
from emulators.http import Request, Response

SURVEY_NOT_FOUND = "Error: ERROR_SURVEY_NOT_FOUND"
_SURVEY = r"/v2/surveys/(?P<id>[^/]+)"
_DATE = r"(?P<date>[^/]+)"


class SurveyReads:
    def __init__(
        self, lock: threading.RLock, surveys: dict[int, dict[int, Survey]], clock: Clock
    ) -> None:
        self._lock = lock
        self._surveys = surveys
        self.clock = clock

    def routes(self) -> list[AccountRoute]:
        get = get_route
        return [
            get(r"/v2/surveys", "/v2/surveys", self._survey_list),
            get(rf"/v2/surveys/with-activity-since/{_DATE}",
                "/v2/surveys/with-activity-since/{date}", self._survey_list),
            get(rf"{_SURVEY}/fields", "/v2/surveys/{id}/fields", self._survey_fields),
            get(rf"{_SURVEY}/responses", "/v2/surveys/{id}/responses", self._responses),
            get(rf"{_SURVEY}/responses/with-activity-since/{_DATE}",
                "/v2/surveys/{id}/responses/with-activity-since/{date}", self._responses),
            get(r"/v2/surveys/(?P<id>(?!with-activity-since$)[^/]+)", "/v2/surveys/{id}",
                self._survey),
        ]

    def _survey_list(self, ctx: AccountContext, request: Request, match: re.Match[str]) -> Response:
        since = path_date(match["date"]) if match.groupdict().get("date") else None
        assigned_only = read_flag(request, "assignedToAddressBookOnly")
        page = read_page(request, default_select=500, max_select=500)
        now = self.clock.now()
        with self._lock:
            surveys = [
                survey for survey in self._surveys.get(ctx.account_id, {}).values()
                if (assigned_only is None
                    or survey.properties["isAssignedToAddressBook"] == assigned_only)
                and (since is None or survey.last_activity >= since)
            ]
            return Response.json(200, [survey.to_api(now) for survey in page.of(surveys)])

    def _survey(self, ctx: AccountContext, request: Request, match: re.Match[str]) -> Response:
        with self._lock:
            survey = self._find_survey(ctx.account_id, match["id"])
            return Response.json(200, survey.to_api(self.clock.now()))

    def _survey_fields(
        self, ctx: AccountContext, request: Request, match: re.Match[str]
    ) -> Response:
        with self._lock:
            return Response.json(200, self._find_survey(ctx.account_id, match["id"]).pages)

    def _responses(self, ctx: AccountContext, request: Request, match: re.Match[str]) -> Response:
        since = path_date(match["date"]) if match.groupdict().get("date") else None
        page = read_page(request)
        with self._lock:
            survey = self._find_survey(ctx.account_id, match["id"])
            responses = survey.responses if since is None else survey.responses_since(since)
            return Response.json(200, [response.to_api() for response in page.of(responses)])

    def _find_survey(self, account_id: int, raw_id: str) -> Survey:
        survey_id = path_id(raw_id, SURVEY_NOT_FOUND)
        survey = self._surveys.get(account_id, {}).get(survey_id)
        if survey is None:
            raise RequestRejected(404, SURVEY_NOT_FOUND)
        return survey
