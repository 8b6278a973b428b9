"""Reading campaign activity: ``/v2/campaigns`` and everything under a campaign.

Each handler takes the feature's lock itself: the core's lock covers API calls, but the admin
routes that add activity arrive outside it.
"""

from __future__ import annotations

import re
import threading

from emulators.dotdigital.contracts import AccountContext, AccountRoute, ContactDirectory
from emulators.dotdigital.engagement_campaigns import (
    EVENT_KINDS_BY_PATH,
    REPLIES,
    Campaign,
    ContactActivity,
    contact_summary,
    event_to_api,
)
from emulators.dotdigital.engagement_summary import campaign_summary
from emulators.dotdigital.feature_input import (
    RequestRejected,
    get_route,
    path_date,
    path_id,
    read_flag,
    read_page,
)
from emulators.dotdigital.v2_input import CONTACT_NOT_FOUND
from emulators.http import Request, Response

CAMPAIGN_NOT_FOUND = "Error: ERROR_CAMPAIGN_NOT_FOUND"
_CAMPAIGN = r"/v2/campaigns/(?P<id>[^/]+)"
_DATE = r"(?P<date>[^/]+)"


class CampaignReads:
    def __init__(
        self, lock: threading.RLock, campaigns: dict[int, dict[int, Campaign]],
        contacts: ContactDirectory,
    ) -> None:
        self._lock = lock
        self._campaigns = campaigns
        self.contacts = contacts

    def routes(self) -> list[AccountRoute]:
        get = get_route
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
        ]

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
