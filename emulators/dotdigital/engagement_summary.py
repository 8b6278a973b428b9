"""``GET /v2/campaigns/{id}/summary``: a campaign's totals, computed from its activity rows."""

from __future__ import annotations

from typing import Any

from emulators.dotdigital.engagement_campaigns import CLICKS, OPENS, PAGE_VIEWS, REPLIES, Campaign
from emulators.dotdigital.feature_input import api_date


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    """``ApiCampaignSummary``. Every send is counted as HTML: text-only sends are not modelled."""
    rows = campaign.activities
    sent = len(rows)
    hard = sum(row.hard_bounced for row in rows)
    soft = sum(row.soft_bounced for row in rows)
    delivered = sent - hard - soft
    counts = {
        "UniqueOpens": sum(bool(row.events[OPENS.seed_key]) for row in rows),
        "Opens": len(campaign.events[OPENS.seed_key]),
        "Clicks": len(campaign.events[CLICKS.seed_key]),
        "PageViews": len(campaign.events[PAGE_VIEWS.seed_key]),
        "Forwards": sum(row.num_forwards for row in rows),
        "EstimatedForwards": sum(row.num_estimated_forwards for row in rows),
        "Replies": len(campaign.events[REPLIES.seed_key]),
        "HardBounces": hard, "SoftBounces": soft,
        "Unsubscribes": sum(row.unsubscribed for row in rows),
        "IspComplaints": 0, "MailBlocks": 0, "Sent": sent, "Delivered": delivered,
    }
    first_sent = min((row.date_sent for row in rows), default=campaign.date_sent)
    summary: dict[str, Any] = {"dateSent": api_date(campaign.date_sent or first_sent)}
    for name, value in counts.items():
        summary[f"num{name}"] = value
        summary[f"numText{name}"] = 0
        summary[f"numTotal{name}"] = value
    clicked = sum(bool(row.events[CLICKS.seed_key]) for row in rows)
    summary["numRecipientsClicked"] = clicked
    # The ratios follow the documented example: most are per delivered email, two per send.
    summary.update({
        "percentageDelivered": _ratio(delivered, sent),
        "percentageUniqueOpens": _ratio(counts["UniqueOpens"], delivered),
        "percentageOpens": _ratio(counts["Opens"], delivered),
        "percentageUnsubscribes": _ratio(counts["Unsubscribes"], delivered),
        "percentageReplies": _ratio(counts["Replies"], delivered),
        "percentageHardBounces": _ratio(hard, sent),
        "percentageSoftBounces": _ratio(soft, delivered),
        "percentageUsersClicked": _ratio(clicked, delivered),
        "percentageClicksToOpens": _ratio(counts["Clicks"], counts["Opens"]),
    })
    return summary


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
