"""Engagement data (v2 only): campaigns and their per-contact activity, and survey/form responses.

All of it is read-only through the API and comes from the account seed (keys ``campaigns`` and
``surveys``, documented in FEATURES.md). Activity rows name their contact by email; the contact id
in responses is the seeded ``contactId`` or, failing that, the contact's id in the account now.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from emulators.clock import Clock
from emulators.dotdigital.contracts import (
    AccountContext,
    AccountHandler,
    AccountRoute,
    ContactDirectory,
    account_route,
)
from emulators.dotdigital.engagement_campaigns import (
    EVENT_KINDS_BY_PATH,
    REPLIES,
    Campaign,
    ContactActivity,
    campaign_summary,
    contact_summary,
    event_to_api,
    merged_activities,
    parse_campaigns,
)
from emulators.dotdigital.engagement_surveys import Survey, merged_responses, parse_surveys
from emulators.dotdigital.feature_input import (
    RequestRejected,
    path_date,
    path_id,
    read_flag,
    read_page,
    rejecting,
    seed_items,
)
from emulators.dotdigital.v2_input import CONTACT_NOT_FOUND
from emulators.http import Request, Response, Route, route

CAMPAIGN_NOT_FOUND = "Error: ERROR_CAMPAIGN_NOT_FOUND"
SURVEY_NOT_FOUND = "Error: ERROR_SURVEY_NOT_FOUND"
_CAMPAIGN = r"/v2/campaigns/(?P<id>[^/]+)"
_SURVEY = r"/v2/surveys/(?P<id>[^/]+)"
_DATE = r"(?P<date>[^/]+)"


class EngagementFeature:
    def __init__(self, clock: Clock, contacts: ContactDirectory) -> None:
        self.clock = clock
        self.contacts = contacts
        self._lock = threading.RLock()
        self._campaigns: dict[int, dict[int, Campaign]] = {}
        self._surveys: dict[int, dict[int, Survey]] = {}

    # --- contract ------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._campaigns.clear()
            self._surveys.clear()

    def seed_account(self, account_id: int, raw_account: Mapping[str, Any]) -> dict[str, int]:
        where = f"account {account_id}"
        campaign_items = seed_items(raw_account, "campaigns", where)
        survey_items = seed_items(raw_account, "surveys", where)
        # Parse everything before touching state, so a bad seed loads nothing.
        campaigns = None if campaign_items is None else parse_campaigns(campaign_items)
        surveys = None if survey_items is None else parse_surveys(survey_items, self.clock.now())
        with self._lock:
            if campaigns is not None:
                self._campaigns[account_id] = campaigns
            if surveys is not None:
                self._surveys[account_id] = surveys
            loaded_campaigns = self._campaigns.get(account_id, {})
            loaded_surveys = self._surveys.get(account_id, {})
            return {
                "campaigns": len(loaded_campaigns),
                "campaignActivities": sum(len(c.activities) for c in loaded_campaigns.values()),
                "surveys": len(loaded_surveys),
                "surveyResponses": sum(len(s.responses) for s in loaded_surveys.values()),
            }

    def export_account(self, account_id: int) -> dict[str, Any]:
        with self._lock:
            exported: dict[str, Any] = {}
            if account_id in self._campaigns:
                campaigns = self._campaigns[account_id].values()
                exported["campaigns"] = [campaign.to_seed() for campaign in campaigns]
            if account_id in self._surveys:
                surveys = self._surveys[account_id].values()
                exported["surveys"] = [survey.to_seed() for survey in surveys]
            return exported

    def state(self, account_id: int) -> dict[str, Any]:
        return self.export_account(account_id)

    def admin_routes(self) -> list[Route]:
        return [
            route("POST", r"/engagement/campaign-activity", "engagement campaign activity",
                  self._admin_campaign_activity),
            route("POST", r"/engagement/survey-responses", "engagement survey responses",
                  self._admin_survey_responses),
        ]

    def _admin_campaign_activity(self, request: Request, _: re.Match[str]) -> Response:
        """New activity after the seed: ``{"accountId", "campaignId", "activities": [...]}``;
        a row for an email the campaign already has replaces that row."""
        payload = _admin_payload(request, "campaignId", "activities")
        with self._lock:
            campaign = self._campaigns.get(payload["accountId"], {}).get(payload["campaignId"])
            if campaign is None:
                raise ValueError(f"no campaign {payload['campaignId']} in that account")
            campaign.activities = merged_activities(campaign, _located(payload, "activities"))
            campaign.reindex()
            return Response.json(200, {"activities": len(campaign.activities)})

    def _admin_survey_responses(self, request: Request, _: re.Match[str]) -> Response:
        """New responses after the seed: ``{"accountId", "surveyId", "responses": [...]}``."""
        payload = _admin_payload(request, "surveyId", "responses")
        with self._lock:
            survey = self._surveys.get(payload["accountId"], {}).get(payload["surveyId"])
            if survey is None:
                raise ValueError(f"no survey {payload['surveyId']} in that account")
            survey.responses = merged_responses(survey, _located(payload, "responses"))
            survey.reindex()
            return Response.json(200, {"responses": len(survey.responses)})

    def routes(self) -> list[AccountRoute]:
        def get(pattern: str, name: str, handler: AccountHandler) -> AccountRoute:
            return account_route("GET", pattern, f"GET {name}", rejecting(handler))

        kinds = "|".join(EVENT_KINDS_BY_PATH)
        return [
            get(r"/v2/campaigns", "/v2/campaigns", self._campaign_list),
            get(rf"/v2/campaigns/with-activity-since/{_DATE}",
                "/v2/campaigns/with-activity-since/{date}", self._campaigns_with_activity),
            get(rf"{_CAMPAIGN}/summary", "/v2/campaigns/{id}/summary", self._summary),
            get(rf"{_CAMPAIGN}/activities", "/v2/campaigns/{id}/activities", self._activities),
            get(rf"{_CAMPAIGN}/activities/since-date/{_DATE}",
                "/v2/campaigns/{id}/activities/since-date/{date}", self._activities),
            get(rf"{_CAMPAIGN}/activities/(?P<contact>(?!since-date$)[^/]+)",
                "/v2/campaigns/{id}/activities/{contactId}", self._contact_activity),
            get(rf"{_CAMPAIGN}/activities/(?P<contact>[^/]+)/(?P<kind>{kinds})",
                "/v2/campaigns/{id}/activities/{contactId}/{kind}", self._contact_events),
            get(rf"{_CAMPAIGN}/(?P<kind>opens|clicks)", "/v2/campaigns/{id}/{kind}",
                self._campaign_events),
            get(rf"{_CAMPAIGN}/(?P<kind>opens|clicks|page-views|roi-details)/since-date/{_DATE}",
                "/v2/campaigns/{id}/{kind}/since-date/{date}", self._campaign_events),
            get(rf"{_CAMPAIGN}/hard-bouncing-contacts", "/v2/campaigns/{id}/hard-bouncing-contacts",
                self._hard_bounces),
            get(r"/v2/campaigns/(?P<id>(?!with-activity-since$)[^/]+)", "/v2/campaigns/{id}",
                self._campaign),
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

    # --- campaigns -----------------------------------------------------------------------------
    def _campaign_list(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        page = read_page(request)
        with self._lock:
            campaigns = list(self._campaigns.get(ctx.account_id, {}).values())
            return Response.json(200, [c.to_api(with_content=False) for c in page.of(campaigns)])

    def _campaigns_with_activity(
        self, ctx: AccountContext, request: Request, match: re.Match[str]
    ) -> Response:
        since = path_date(match["date"])
        page = read_page(request)
        with self._lock:
            campaigns = [
                campaign for campaign in self._campaigns.get(ctx.account_id, {}).values()
                if campaign.last_activity is not None and campaign.last_activity >= since
            ]
            return Response.json(200, [c.to_api(with_content=False) for c in page.of(campaigns)])

    def _campaign(self, ctx: AccountContext, request: Request, match: re.Match[str]) -> Response:
        with self._lock:
            campaign = self._find_campaign(ctx.account_id, match["id"])
            return Response.json(200, campaign.to_api(with_content=True))

    def _summary(self, ctx: AccountContext, request: Request, match: re.Match[str]) -> Response:
        with self._lock:
            campaign = self._find_campaign(ctx.account_id, match["id"])
            return Response.json(200, campaign_summary(campaign))

    def _activities(self, ctx: AccountContext, request: Request, match: re.Match[str]) -> Response:
        since = path_date(match["date"]) if match.groupdict().get("date") else None
        # The since-date variant documents a larger default page than the plain list.
        size = 2000 if since is not None else 1000
        page = read_page(request, default_select=size, max_select=size)
        with self._lock:
            campaign = self._find_campaign(ctx.account_id, match["id"])
            rows = campaign.activities if since is None else campaign.active_since(since)
            return Response.json(200, [
                contact_summary(row, self._contact_id_of(ctx.account_id, row))
                for row in page.of(rows)
            ])

    def _contact_activity(
        self, ctx: AccountContext, request: Request, match: re.Match[str]
    ) -> Response:
        with self._lock:
            campaign = self._find_campaign(ctx.account_id, match["id"])
            contact_id, row = self._find_row(ctx.account_id, campaign, match["contact"])
            if row is None:
                raise RequestRejected(404, CONTACT_NOT_FOUND)
            return Response.json(200, contact_summary(row, contact_id))

    def _contact_events(
        self, ctx: AccountContext, request: Request, match: re.Match[str]
    ) -> Response:
        kind = EVENT_KINDS_BY_PATH[match["kind"]]
        limit = 5 if kind is REPLIES else 1000
        page = read_page(request, default_select=limit, max_select=limit)
        with self._lock:
            campaign = self._find_campaign(ctx.account_id, match["id"])
            contact_id, row = self._find_row(ctx.account_id, campaign, match["contact"])
            events = [] if row is None else row.events[kind.seed_key]
            return Response.json(200, [
                event_to_api(kind, row, event, contact_id)
                for event in page.of(events) if row is not None
            ])

    def _campaign_events(
        self, ctx: AccountContext, request: Request, match: re.Match[str]
    ) -> Response:
        kind = EVENT_KINDS_BY_PATH[match["kind"]]
        since = path_date(match["date"]) if match.groupdict().get("date") else None
        page = read_page(request)
        with self._lock:
            campaign = self._find_campaign(ctx.account_id, match["id"])
            return Response.json(200, [
                event_to_api(kind, row, event, self._contact_id_of(ctx.account_id, row))
                for row, event in page.of(campaign.events_since(kind, since))
            ])

    def _hard_bounces(
        self, ctx: AccountContext, request: Request, match: re.Match[str]
    ) -> Response:
        page = read_page(request)
        with_full_data = bool(read_flag(request, "withFullData"))
        with self._lock:
            campaign = self._find_campaign(ctx.account_id, match["id"])
            contacts = []
            for row in campaign.activities:
                contact = row.hard_bounced and self.contacts.contact_by_email(
                    ctx.account_id, row.email
                )
                if contact:
                    contacts.append(contact if with_full_data else {**contact, "dataFields": None})
            return Response.json(200, page.of(contacts))

    def _find_campaign(self, account_id: int, raw_id: str) -> Campaign:
        campaign_id = path_id(raw_id, CAMPAIGN_NOT_FOUND)
        campaign = self._campaigns.get(account_id, {}).get(campaign_id)
        if campaign is None:
            raise RequestRejected(404, CAMPAIGN_NOT_FOUND)
        return campaign

    def _find_row(
        self, account_id: int, campaign: Campaign, raw_contact: str
    ) -> tuple[int, ContactActivity | None]:
        """The contact's activity row (None when the campaign never reached it); 404 if no such
        contact exists at all."""
        contact_id = path_id(raw_contact, CONTACT_NOT_FOUND)
        row = campaign.by_contact_id.get(contact_id)
        if row is not None:
            return contact_id, row
        contact = self.contacts.contact_by_id(account_id, contact_id)
        if contact is None:
            raise RequestRejected(404, CONTACT_NOT_FOUND)
        row = campaign.by_email.get(str(contact.get("email") or "").lower())
        if row is not None and row.contact_id not in (None, contact_id):
            row = None  # the row belongs to another contact that once had this address
        return contact_id, row

    def _contact_id_of(self, account_id: int, row: ContactActivity) -> int:
        if row.contact_id is not None:
            return row.contact_id
        contact = self.contacts.contact_by_email(account_id, row.email)
        return int(contact["id"]) if contact else 0

    # --- surveys -------------------------------------------------------------------------------
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


def _admin_payload(request: Request, id_key: str, list_key: str) -> dict[str, Any]:
    payload = request.json()
    expected = {"accountId", id_key, list_key}
    if not isinstance(payload, dict) or set(payload) != expected:
        raise ValueError(f"body must be an object with exactly {sorted(expected)}")
    for key in ("accountId", id_key):
        if isinstance(payload[key], bool) or not isinstance(payload[key], int):
            raise ValueError(f"{key} must be an integer")
    return payload


def _located(payload: Mapping[str, Any], key: str) -> list[tuple[str, Any]]:
    items = seed_items(payload, key, "body")
    return items or []
