"""Campaign activity of one account: campaigns, one activity row per campaign × contact, and the
events under it (opens, clicks, page views, replies, ROI markers), indexed by time.

The indexes are built once per seed so that since-date reads are a bisect plus a slice, however
many contacts a campaign was sent to.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.dotdigital.feature_input import SeedReader, api_date, unique_by

CAMPAIGN_STATUSES = (
    "Unsent", "Sending", "Sent", "Paused", "Cancelled", "RequiresSystemApproval",
    "RequiresSMSApproval", "RequiresWorkflowApproval", "Triggered",
)
REPLY_ACTIONS = ("Unset", "WebMailForward", "Webmail", "Delete")
_REQUIRED = object()
_CONTACT_EMAIL = object()  # default: the activity row's email address


@dataclass(frozen=True)
class EventKind:
    """One kind of per-contact event: its seed key, path segment, date property and fields."""

    seed_key: str
    path: str
    date_name: str
    # (property, "text" | "flag" | "any" | allowed values, default)
    fields: tuple[tuple[str, Any, Any], ...]


OPENS = EventKind("opens", "opens", "dateOpened", (
    ("mailClient", "text", ""), ("mailClientVersion", "text", ""), ("ipAddress", "text", ""),
    ("userAgent", "text", ""), ("isHtml", "flag", True), ("isForward", "flag", False),
))
CLICKS = EventKind("clicks", "clicks", "dateClicked", (
    ("url", "text", _REQUIRED), ("ipAddress", "text", ""), ("userAgent", "text", ""),
    ("keyword", "text", ""),
))
PAGE_VIEWS = EventKind("pageViews", "page-views", "dateViewed", (("url", "text", _REQUIRED),))
REPLIES = EventKind("replies", "replies", "dateReplied", (
    ("fromAddress", "text", _CONTACT_EMAIL), ("toAddress", "text", ""), ("subject", "text", ""),
    ("message", "text", ""), ("isHtml", "flag", False),
    ("replyType", ("Reply", "AutoReply", "ChallengeResponse", "Unsafe"), "Reply"),
    ("customReplyToAddress", "text", ""),
))
ROI_DETAILS = EventKind("roiDetails", "roi-details", "dateEntered", (
    ("markerName", "text", _REQUIRED), ("dataType", ("String", "Numeric", "Date", "Boolean"),
                                        "String"), ("value", "any", _REQUIRED),
))
EVENT_KINDS = (OPENS, CLICKS, PAGE_VIEWS, REPLIES, ROI_DETAILS)
EVENT_KINDS_BY_PATH = {kind.path: kind for kind in EVENT_KINDS}

_CAMPAIGN_KEYS = (
    "id", "name", "subject", "fromName", "fromAddress", "htmlContent", "plainTextContent",
    "replyAction", "replyToAddress", "isSplitTest", "status", "dateSent", "activities",
)
_ACTIVITY_KEYS = (
    "email", "contactId", "dateSent", "numForwards", "numEstimatedForwards", "unsubscribed",
    "softBounced", "hardBounced", *(kind.seed_key for kind in EVENT_KINDS),
)


@dataclass(frozen=True)
class Event:
    date: dt.datetime
    values: dict[str, Any]


@dataclass
class ContactActivity:
    """What one contact did with one campaign."""

    email: str
    contact_id: int | None
    date_sent: dt.datetime
    events: dict[str, list[Event]]
    num_forwards: int = 0
    num_estimated_forwards: int = 0
    unsubscribed: bool = False
    soft_bounced: bool = False
    hard_bounced: bool = False

    @property
    def last_activity(self) -> dt.datetime:
        latest = [items[-1].date for items in self.events.values() if items]
        return max([self.date_sent, *latest])

    def to_seed(self) -> dict[str, Any]:
        seed: dict[str, Any] = {"email": self.email}
        if self.contact_id is not None:
            seed["contactId"] = self.contact_id
        seed.update({
            "dateSent": api_date(self.date_sent), "numForwards": self.num_forwards,
            "numEstimatedForwards": self.num_estimated_forwards,
            "unsubscribed": self.unsubscribed, "softBounced": self.soft_bounced,
            "hardBounced": self.hard_bounced,
        })
        for kind in EVENT_KINDS:
            if self.events[kind.seed_key]:
                seed[kind.seed_key] = [
                    {"date": api_date(event.date), **event.values}
                    for event in self.events[kind.seed_key]
                ]
        return seed


ContactIdOf = Callable[[ContactActivity], int]


@dataclass
class Campaign:
    id: int
    properties: dict[str, Any]
    date_sent: dt.datetime | None
    activities: list[ContactActivity]
    by_email: dict[str, ContactActivity] = field(default_factory=dict)
    by_contact_id: dict[int, ContactActivity] = field(default_factory=dict)
    by_activity: list[ContactActivity] = field(default_factory=list)
    activity_keys: list[dt.datetime] = field(default_factory=list)
    events: dict[str, list[tuple[ContactActivity, Event]]] = field(default_factory=dict)
    event_keys: dict[str, list[dt.datetime]] = field(default_factory=dict)
    last_activity: dt.datetime | None = None

    def reindex(self) -> None:
        self.by_email = {row.email.lower(): row for row in self.activities}
        self.by_contact_id = {
            row.contact_id: row for row in self.activities if row.contact_id is not None
        }
        self.by_activity = sorted(self.activities, key=lambda row: row.last_activity)
        self.activity_keys = [row.last_activity for row in self.by_activity]
        for kind in EVENT_KINDS:
            flat = sorted(
                ((row, event) for row in self.activities for event in row.events[kind.seed_key]),
                key=lambda pair: pair[1].date,
            )
            self.events[kind.seed_key] = flat
            self.event_keys[kind.seed_key] = [event.date for _, event in flat]
        self.last_activity = self.activity_keys[-1] if self.activity_keys else None

    def active_since(self, since: dt.datetime) -> list[ContactActivity]:
        return self.by_activity[bisect.bisect_left(self.activity_keys, since) :]

    def events_since(
        self, kind: EventKind, since: dt.datetime | None
    ) -> list[tuple[ContactActivity, Event]]:
        flat = self.events[kind.seed_key]
        if since is None:
            return flat
        return flat[bisect.bisect_left(self.event_keys[kind.seed_key], since) :]

    def to_api(self, *, with_content: bool) -> dict[str, Any]:
        shaped = {"id": self.id, **self.properties}
        if not with_content:
            # List responses leave the content out, as the documented examples show.
            shaped["htmlContent"] = shaped["plainTextContent"] = None
        return shaped

    def to_seed(self) -> dict[str, Any]:
        seed = {"id": self.id, **self.properties}
        if self.date_sent is not None:
            seed["dateSent"] = api_date(self.date_sent)
        seed["activities"] = [row.to_seed() for row in self.activities]
        return seed


def contact_summary(row: ContactActivity, contact_id: int) -> dict[str, Any]:
    opens = row.events[OPENS.seed_key]
    return {
        "contactId": contact_id, "email": row.email, "numOpens": len(opens),
        "numPageViews": len(row.events[PAGE_VIEWS.seed_key]),
        "numClicks": len(row.events[CLICKS.seed_key]), "numForwards": row.num_forwards,
        "numEstimatedForwards": row.num_estimated_forwards,
        "numReplies": len(row.events[REPLIES.seed_key]), "dateSent": api_date(row.date_sent),
        "dateFirstOpened": api_date(opens[0].date) if opens else None,
        "dateLastOpened": api_date(opens[-1].date) if opens else None,
        "firstOpenIp": opens[0].values["ipAddress"] if opens else None,
        "unsubscribed": row.unsubscribed, "softBounced": row.soft_bounced,
        "hardBounced": row.hard_bounced,
    }


def event_to_api(
    kind: EventKind, row: ContactActivity, event: Event, contact_id: int
) -> dict[str, Any]:
    return {
        "contactId": contact_id, "email": row.email, **event.values,
        kind.date_name: api_date(event.date),
    }


def parse_campaigns(items: list[tuple[str, Any]]) -> dict[int, Campaign]:
    campaigns = [_parse_campaign(where, raw) for where, raw in items]
    unique_by(campaigns, lambda campaign: campaign.id, "campaign id", "campaigns")
    return {campaign.id: campaign for campaign in sorted(campaigns, key=lambda c: c.id)}


def _parse_campaign(where: str, raw: Mapping[str, Any]) -> Campaign:
    reader = SeedReader(raw, where, _CAMPAIGN_KEYS)
    campaign_id = reader.integer("id")
    from_address = raw.get("fromAddress")
    if from_address is not None:
        address = SeedReader(from_address, f"{where}.fromAddress", ("id", "email"))
        from_address = {"id": address.integer("id", 0), "email": address.text("email")}
    name = reader.text("name")
    properties = {
        "name": name, "subject": reader.text("subject", name),
        "fromName": reader.text("fromName", ""), "fromAddress": from_address,
        "htmlContent": reader.optional_text("htmlContent"),
        "plainTextContent": reader.optional_text("plainTextContent"),
        "replyAction": reader.choice("replyAction", REPLY_ACTIONS, "Unset"),
        "replyToAddress": reader.optional_text("replyToAddress"),
        "isSplitTest": reader.flag("isSplitTest"),
        "status": reader.choice("status", CAMPAIGN_STATUSES, "Sent"),
    }
    date_sent = reader.optional_date("dateSent")
    rows = [_parse_activity(at, item, date_sent) for at, item in reader.objects("activities")]
    unique_by(rows, lambda row: row.email.lower(), "activity email", f"{where}.activities")
    campaign = Campaign(campaign_id, properties, date_sent, rows)
    campaign.reindex()
    return campaign


def _parse_activity(
    where: str, raw: Mapping[str, Any], campaign_sent: dt.datetime | None
) -> ContactActivity:
    reader = SeedReader(raw, where, _ACTIVITY_KEYS)
    email = reader.text("email").strip()
    if "@" not in email:
        raise ValueError(f"{where}.email: {email!r} is not an email address")
    if campaign_sent is None and not reader.has("dateSent"):
        raise ValueError(f"{where}.dateSent: required when the campaign has no dateSent")
    events = {
        kind.seed_key: sorted(
            (_parse_event(kind, at, item, email) for at, item in reader.objects(kind.seed_key)),
            key=lambda event: event.date,
        )
        for kind in EVENT_KINDS
    }
    return ContactActivity(
        email=email, contact_id=reader.optional_integer("contactId"),
        date_sent=reader.date("dateSent", campaign_sent), events=events,
        num_forwards=reader.integer("numForwards", 0),
        num_estimated_forwards=reader.integer("numEstimatedForwards", 0),
        unsubscribed=reader.flag("unsubscribed"), soft_bounced=reader.flag("softBounced"),
        hard_bounced=reader.flag("hardBounced"),
    )


def _parse_event(kind: EventKind, where: str, raw: Any, email: str) -> Event:
    reader = SeedReader(raw, where, ("date", *(name for name, _, _ in kind.fields)))
    values: dict[str, Any] = {}
    for name, value_kind, default in kind.fields:
        if default is _REQUIRED and name not in raw:
            raise ValueError(f"{where}.{name}: required")
        if value_kind == "any":
            values[name] = raw[name]
        elif value_kind == "flag":
            values[name] = reader.flag(name, default)
        elif value_kind == "text":
            values[name] = reader.text(name, email if default is _CONTACT_EMAIL else default)
        else:
            values[name] = reader.choice(name, value_kind, default)
    return Event(reader.date("date"), values)


def merged_activities(campaign: Campaign, items: list[tuple[str, Any]]) -> list[ContactActivity]:
    """The campaign's rows with ``items`` applied: a row for a known email replaces the old one."""
    rows = {row.email.lower(): row for row in campaign.activities}
    added = [_parse_activity(where, raw, campaign.date_sent) for where, raw in items]
    unique_by(added, lambda row: row.email.lower(), "activity email", "activities")
    for row in added:
        rows[row.email.lower()] = row
    return list(rows.values())
