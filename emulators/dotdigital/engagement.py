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
from emulators.dotdigital.contracts import AccountRoute, ContactDirectory
from emulators.dotdigital.engagement_campaign_reads import CampaignReads
from emulators.dotdigital.engagement_campaigns import Campaign, merged_activities, parse_campaigns
from emulators.dotdigital.engagement_survey_reads import SurveyReads
from emulators.dotdigital.engagement_surveys import Survey, merged_responses, parse_surveys
from emulators.dotdigital.feature_input import seed_items
from emulators.http import Request, Response, Route, route


class EngagementFeature:
    def __init__(self, clock: Clock, contacts: ContactDirectory) -> None:
        self.clock = clock
        self.contacts = contacts
        self._lock = threading.RLock()
        self._campaigns: dict[int, dict[int, Campaign]] = {}
        self._surveys: dict[int, dict[int, Survey]] = {}
        self._campaign_reads = CampaignReads(self._lock, self._campaigns, contacts)
        self._survey_reads = SurveyReads(self._lock, self._surveys, clock)

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
        return [*self._campaign_reads.routes(), *self._survey_reads.routes()]


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
