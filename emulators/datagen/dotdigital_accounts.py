"""dotdigital accounts in the emulator's seed format: contacts, suppressions, programs, campaigns.

Campaign activity follows the engagement feature's seed keys: per campaign ``activities`` rows of
``{"email", "contactId", "dateSent", "opens": [{"date"}], "clicks": [{"date", "url"}],
"pageViews": [{"date", "url"}]}`` (pages visited after a click, as site tracking records them);
per account one form (``surveys``) with responses from part of the campaigns' audience.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from typing import Any

from emulators.datagen.dates import between, days_before, iso
from emulators.datagen.people import Person
from emulators.datagen.weighted import WeightedChoice

REGIONS = ("r1", "r2", "r3")
OPT_IN_TYPES = ("Unknown", "Single", "Double", "VerifiedDouble")
_OPT_IN_DRAW = WeightedChoice(OPT_IN_TYPES, (20, 45, 25, 10))
SUPPRESSION_REASONS = (
    "Unsubscribed", "SoftBounced", "HardBounced", "IspComplained", "MailBlocked",
    "DirectComplaint", "Suppressed", "NotAllowed", "DomainSuppression", "NoMxRecord",
)
_REASON_DRAW = WeightedChoice(SUPPRESSION_REASONS, (50, 6, 10, 4, 3, 3, 12, 3, 4, 5))
SUPPRESSED_SHARE = 0.08
PROGRAM_STATUSES = ("Active", "Draft", "Deactivated", "Active")
CAMPAIGNS_PER_ACCOUNT = 3
SITE_PAGES = ("pricing", "contact", "blog", "stores", "faq")
FORM_TOPICS = ("Offers", "Product news", "Events")


class AccountBuilder:
    """Builds one account; ``showcase_reasons`` puts every suppression reason on early members."""

    def __init__(self, rng: random.Random, index: int, as_of: dt.datetime) -> None:
        self.rng = rng
        self.index = index
        self.as_of = as_of
        self.account_id = 1001 + index
        token = "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))
        self.account: dict[str, Any] = {
            "id": self.account_id,
            "apiUser": f"apiuser-{token}@apiconnector.com",
            "password": "".join(rng.choices(string.ascii_letters + string.digits, k=20)),
            "region": REGIONS[index % len(REGIONS)],
            "name": f"Brand {index + 1}",
            "settings": {"enforceDoubleOptIn": index % 2 == 1},
            "addressBooks": [{"id": self.newsletter_book, "name": "Newsletter"}],
            "contacts": [], "suppressions": [], "programs": [], "campaigns": [], "surveys": [],
        }
        # Page views and form responses draw from a generator of their own, so that adding
        # them left every other generated value as it was.
        self.engagement_rng = random.Random(self.account["apiUser"])
        self._next_contact_id = self.account_id * 1_000_000

    @property
    def newsletter_book(self) -> int:
        return self.account_id * 100 + 1

    def add_contact(
        self, person: Person, *, opt_in: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        rng = self.rng
        self._next_contact_id += 1
        created = days_before(rng, self.as_of, 30, 3 * 365)
        modified = between(rng, created, self.as_of)
        if reason is None and rng.random() < SUPPRESSED_SHARE:
            reason = _REASON_DRAW.pick(rng)
        contact: dict[str, Any] = {
            "id": self._next_contact_id, "email": person.email,
            "optInType": opt_in or _OPT_IN_DRAW.pick(rng),
            "emailType": "Html" if rng.random() < 0.9 else "PlainText",
            "status": reason or "Subscribed",
            "dataFields": {"FIRSTNAME": person.first, "LASTNAME": person.last,
                           "LASTSUBSCRIBED": iso(created)},
            "created": iso(created), "modified": iso(modified),
        }
        if reason is not None:
            contact["suppression"] = {"reason": reason, "dateRemoved": iso(modified)}
        elif rng.random() < 0.5:
            contact["addressBooks"] = [self.newsletter_book]
        self.account["contacts"].append(contact)
        return contact

    def add_suppression_only(self, person: Person, reason: str) -> None:
        """An address on the suppression list that is not (any longer) a contact."""
        removed = days_before(self.rng, self.as_of, 1, 365)
        self.account["suppressions"].append(
            {"email": person.email, "reason": reason, "dateRemoved": iso(removed)}
        )

    def add_programs(self) -> None:
        for offset, status in enumerate(PROGRAM_STATUSES):
            created = days_before(self.rng, self.as_of, 10, 400)
            self.account["programs"].append({
                "id": self.account_id * 10 + offset + 1,
                "name": f"{('Welcome', 'Win-back', 'Birthday', 'Onboarding')[offset]} journey",
                "status": status, "dateCreated": iso(created),
            })

    def add_campaigns(self, activities_per_campaign: int) -> None:
        rng = self.rng
        subscribed = [c for c in self.account["contacts"] if c["status"] == "Subscribed"]
        for offset in range(CAMPAIGNS_PER_ACCOUNT):
            sent = days_before(rng, self.as_of, 2 + offset * 20, 20 + offset * 20)
            name = f"{('Spring sale', 'Product news', 'Customer survey')[offset]} {self.index + 1}"
            audience = rng.sample(subscribed, min(activities_per_campaign, len(subscribed)))
            self.account["campaigns"].append({
                "id": self.account_id * 100 + offset + 11, "name": name, "subject": name,
                "fromName": self.account["name"], "status": "Sent", "dateSent": iso(sent),
                "activities": [self._activity(contact, sent) for contact in audience],
            })

    def _activity(self, contact: dict[str, Any], sent: dt.datetime) -> dict[str, Any]:
        rng = self.rng
        row: dict[str, Any] = {"email": contact["email"], "contactId": contact["id"],
                               "dateSent": iso(sent)}
        opens = sorted(between(rng, sent, sent + dt.timedelta(days=3))
                       for _ in range(rng.choice((0, 0, 1, 1, 2, 3))))
        if opens:
            row["opens"] = [{"date": iso(moment)} for moment in opens]
            if rng.random() < 0.4:
                clicked = between(rng, opens[0], opens[0] + dt.timedelta(hours=2))
                page = rng.choice(("offers", "news", "survey", "account"))
                row["clicks"] = [{"date": iso(clicked), "url": f"https://www.example.com/{page}"}]
                row["pageViews"] = self._page_views(clicked, page)
        return row

    def _page_views(self, clicked: dt.datetime, landing: str) -> list[dict[str, str]]:
        rng = self.engagement_rng
        moment, views = clicked, []
        for page in (landing, *rng.sample(SITE_PAGES, rng.choice((0, 1, 2, 3)))):
            moment += dt.timedelta(seconds=rng.randint(5, 240))
            views.append({"date": iso(moment), "url": f"https://www.example.com/{page}"})
        return views

    def add_form(self) -> None:
        """A preference form answered by part of the campaigns' audience after a send."""
        rng = self.engagement_rng
        form_id = self.account_id * 10 + 7
        sent = {row["email"]: row["dateSent"] for campaign in self.account["campaigns"]
                for row in campaign["activities"]}
        responses = []
        for email in sorted(sent)[: len(sent) // 4]:
            started = dt.datetime.fromisoformat(sent[email].replace("Z", "+00:00"))
            started += dt.timedelta(hours=rng.randint(1, 48))
            responses.append({
                "email": email, "dateStarted": iso(started),
                "dateCompleted": iso(started + dt.timedelta(seconds=rng.randint(20, 300))),
                "givenAnswers": [
                    {"fieldId": form_id * 10 + 1, "value": rng.choice(FORM_TOPICS)},
                    {"fieldId": form_id * 10 + 2, "value": rng.choice(("Weekly", "Monthly"))},
                ]})
        self.account["surveys"].append({
            "id": form_id, "name": f"Email preferences {self.index + 1}",
            "dateCreated": iso(days_before(rng, self.as_of, 70, 90)),
            "pages": [{"id": 1, "name": "Your preferences", "fields": [
                {"id": form_id * 10 + 1, "type": "singleline",
                 "text": "Which topics interest you?", "isRequired": True},
                {"id": form_id * 10 + 2, "type": "singleline",
                 "text": "How often would you like to hear from us?", "isRequired": False},
            ]}],
            "responses": responses,
        })
