"""The SuppressionLists demo: per email account, what dotdigital reports and what Dynamics already
holds, so one sync run has every kind of work to do.

For each dotdigital account and its email account row:
- suppressed contacts of several reasons dated over the last weeks, some the address of a Dynamics
  contact, lead or account, some of nobody in Dynamics; no Email Suppression row yet, and their
  Dynamics records do not have *Do not bulk email* set yet;
- resubscribers: subscribed again within the last day, with the active ``Unsubscribed`` row an
  earlier sync wrote; the first is also suppressed by the next account (its row and its dotdigital
  suppression), so its *Do not bulk email* has to stay set;
- Request Resubscribe rows for reasons ``Suppressed`` (dotdigital adds it at once),
  ``Unsubscribed`` (challenged) and ``HardBounced`` (cannot be unsuppressed);
- rows a CRM user added (origin crm, not pushed yet): one address the account knows, one it
  does not.

*Do not bulk email* of a record with an active dotdigital row is set when that row's account has
the option on, as the earlier sync would have left it. People are drawn from pools past the
generator's showcase and never from anyone already suppressed, so the other cases stay intact.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulators.datagen.crm_rows import guid
from emulators.datagen.dates import dataverse_time, iso
from emulators.datagen.dotdigital_accounts import OPT_IN_TYPES
from emulators.datagen.people import PeopleFactory, Person

# Dataverse choice values (infra/dynamics/schema.json, ec_suppressionreason / _origin).
REASON_VALUES = {
    "Unsubscribed": 100000000, "SoftBounced": 100000001, "HardBounced": 100000002,
    "IspComplained": 100000003, "MailBlocked": 100000004, "DirectComplaint": 100000005,
    "Suppressed": 100000006, "NotAllowed": 100000007, "DomainSuppression": 100000008,
    "NoMxRecord": 100000009, "AddedInCrm": 100000010,
}
ORIGIN_DOTDIGITAL = 100000000
ORIGIN_CRM = 100000001
ACTIVE = {"statecode": 0, "statuscode": 1}

# (reason, who holds the address in Dynamics) of the suppressions the run has to bring in.
NEW_SUPPRESSIONS = (
    ("Unsubscribed", "contact"), ("Unsubscribed", "nobody"), ("HardBounced", "lead"),
    ("HardBounced", "nobody"), ("IspComplained", "contact"), ("Suppressed", "account"),
    ("Suppressed", "nobody"), ("SoftBounced", "contact"), ("NotAllowed", "nobody"),
)
NEW_SUPPRESSION_DAYS = (1.0, 42.0)  # spread over the last six weeks
RESUBSCRIBERS = 3
RESUBSCRIBED_WITHIN = dt.timedelta(days=1)
REQUEST_REASONS = ("Suppressed", "Unsubscribed", "HardBounced")
ACTIVE_STATUSES = ("Subscribed", "PendingOptIn")


def key(address: str | None) -> str:
    """How addresses are matched: trimmed and case-folded."""
    return (address or "").strip().casefold()


@dataclass
class DemoPeople:
    """Who may play a part: Dynamics contacts (past the showcase), people with only a lead, the
    CRM accounts' addresses, and the factory for people nobody in Dynamics knows."""

    contacts: list[Person]
    leads: list[Person]
    crm_accounts: list[Person]
    factory: PeopleFactory
    used: set[str] = field(default_factory=set)

    def take(self, rng: random.Random, kind: str) -> Person:
        """A person not used yet; a Dynamics kind with none left falls back to a contact, and
        then to somebody new."""
        pools = {"contact": [self.contacts], "lead": [self.leads, self.contacts],
                 "account": [self.crm_accounts, self.contacts], "nobody": []}[kind]
        for pool in pools:
            while pool:
                person = pool.pop(rng.randrange(len(pool)))
                if key(person.email) not in self.used:
                    self.used.add(key(person.email))
                    return person
        person = self.factory.person()
        self.used.add(key(person.email))
        return person


class DotdigitalSide:
    """One generated dotdigital account, changed contact by contact (one contact per address)."""

    def __init__(self, rng: random.Random, account: dict[str, Any]) -> None:
        self.rng = rng
        self.account = account
        self.by_key = {key(contact["email"]): contact for contact in account["contacts"]}
        self.next_id = max((contact["id"] for contact in account["contacts"]),
                           default=account["id"] * 1_000_000) + 1

    def suppress(self, person: Person, reason: str, at: dt.datetime) -> dict[str, Any]:
        contact = self._contact(person, before=at)
        contact["status"] = reason
        contact["suppression"] = {"reason": reason, "dateRemoved": iso(at)}
        contact["modified"] = iso(at)
        contact.pop("addressBooks", None)  # suppressing takes a contact out of every list
        return contact

    def resubscribe(self, person: Person, suppressed_at: dt.datetime,
                    at: dt.datetime) -> dict[str, Any]:
        """Subscribed again at ``at`` after a suppression at ``suppressed_at``."""
        contact = self._contact(person, before=suppressed_at)
        contact["status"] = "Subscribed"
        contact.pop("suppression", None)
        contact.pop("addressBooks", None)  # a resubscribe restores "All contacts" only
        contact["dataFields"]["LASTSUBSCRIBED"] = iso(at)
        contact["modified"] = iso(at)
        return contact

    def subscribed(self, person: Person, before: dt.datetime) -> dict[str, Any]:
        return self._contact(person, before=before)

    def _contact(self, person: Person, *, before: dt.datetime) -> dict[str, Any]:
        """The person's contact, created before ``before`` (made earlier when it was not)."""
        contact = self.by_key.get(key(person.email))
        if contact is None:
            contact = self._new_contact(person, before)
        elif _parse(contact["created"]) >= before:
            created = iso(before - dt.timedelta(days=self.rng.uniform(30, 365)))
            contact["created"] = created
            contact["dataFields"]["LASTSUBSCRIBED"] = created
        return contact

    def _new_contact(self, person: Person, before: dt.datetime) -> dict[str, Any]:
        created = iso(before - dt.timedelta(days=self.rng.uniform(30, 365)))
        contact: dict[str, Any] = {
            "id": self.next_id, "email": person.email, "optInType": self.rng.choice(OPT_IN_TYPES),
            "emailType": "Html", "status": "Subscribed",
            "dataFields": {"FIRSTNAME": person.first, "LASTNAME": person.last,
                           "LASTSUBSCRIBED": created},
            "created": created, "modified": created,
        }
        self.next_id += 1
        self.account["contacts"].append(contact)
        self.by_key[key(person.email)] = contact
        return contact


def build(
    rng: random.Random, people: DemoPeople, dotdigital: Sequence[dict[str, Any]],
    email_accounts: Sequence[dict[str, Any]], crm_tables: dict[str, list[dict[str, Any]]],
    as_of: dt.datetime,
) -> list[dict[str, Any]]:
    """Change ``dotdigital`` and the CRM records' *Do not bulk email* in place; return the
    ``ec_emailsuppressions`` rows."""
    sides = [DotdigitalSide(rng, account) for account in dotdigital]
    rows: list[dict[str, Any]] = []
    not_yet_flagged: set[str] = set()
    for index, email_account in enumerate(email_accounts):
        side = sides[index]
        not_yet_flagged |= _new_suppressions(rng, people, side, as_of)
        other = (index + 1) % len(sides)
        rows += _resubscribers(rng, people, side, email_account, as_of,
                               (sides[other], email_accounts[other]) if other != index else None)
        rows += _requests(rng, people, side, email_account, as_of)
        rows += _crm_rows(rng, people, side, email_account, as_of)
    _settle_flags(rows, email_accounts, crm_tables, not_yet_flagged)
    return rows


def _new_suppressions(
    rng: random.Random, people: DemoPeople, side: DotdigitalSide, as_of: dt.datetime
) -> set[str]:
    low, high = NEW_SUPPRESSION_DAYS
    span = (high - low) / len(NEW_SUPPRESSIONS)
    keys = set()
    for position, (reason, kind) in enumerate(NEW_SUPPRESSIONS):
        # One date per slot of the span, so the dates cover the whole six weeks.
        at = _whole(as_of - dt.timedelta(days=low + span * (position + rng.random())))
        person = people.take(rng, kind)
        side.suppress(person, reason, at)
        keys.add(key(person.email))
    return keys


def _resubscribers(
    rng: random.Random, people: DemoPeople, side: DotdigitalSide, email_account: dict[str, Any],
    as_of: dt.datetime, other: tuple[DotdigitalSide, dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    rows = []
    for position in range(RESUBSCRIBERS):
        person = people.take(rng, "contact")
        resubscribed = _whole(as_of - dt.timedelta(
            seconds=rng.uniform(60, RESUBSCRIBED_WITHIN.total_seconds() - 60)))
        suppressed = _whole(as_of - dt.timedelta(days=rng.uniform(3, 40)))
        contact = side.resubscribe(person, suppressed, resubscribed)
        rows.append(_row(rng, email_account, contact["email"], "Unsubscribed", suppressed,
                         ORIGIN_DOTDIGITAL))
        if position == 0 and other is not None:
            other_side, other_account = other
            still = _whole(as_of - dt.timedelta(days=rng.uniform(3, 40)))
            other_contact = other_side.suppress(person, "Unsubscribed", still)
            rows.append(_row(rng, other_account, other_contact["email"], "Unsubscribed", still,
                             ORIGIN_DOTDIGITAL))
    return rows


def _requests(
    rng: random.Random, people: DemoPeople, side: DotdigitalSide, email_account: dict[str, Any],
    as_of: dt.datetime,
) -> list[dict[str, Any]]:
    rows = []
    for reason in REQUEST_REASONS:
        suppressed = _whole(as_of - dt.timedelta(days=rng.uniform(2, 30)))
        contact = side.suppress(people.take(rng, "contact"), reason, suppressed)
        row = _row(rng, email_account, contact["email"], reason, suppressed, ORIGIN_DOTDIGITAL)
        row["ec_requestresubscribe"] = True
        rows.append(row)
    return rows


def _crm_rows(
    rng: random.Random, people: DemoPeople, side: DotdigitalSide, email_account: dict[str, Any],
    as_of: dt.datetime,
) -> list[dict[str, Any]]:
    added = [_whole(as_of - dt.timedelta(days=rng.uniform(0.1, 10))) for _ in range(2)]
    known = side.subscribed(people.take(rng, "contact"), before=added[0])
    unknown = people.take(rng, "nobody")  # in no dotdigital account and no Dynamics record
    return [_row(rng, email_account, address, "AddedInCrm", at, ORIGIN_CRM)
            for address, at in ((known["email"], added[0]), (unknown.email, added[1]))]


def _settle_flags(
    rows: Iterable[dict[str, Any]], email_accounts: Sequence[dict[str, Any]],
    crm_tables: dict[str, list[dict[str, Any]]], not_yet_flagged: set[str],
) -> None:
    """Records behind an active row of an account with the option on carry the flag (the
    earlier sync set it); those of the new suppressions do not yet."""
    option_on = {row["ec_emailaccountid"] for row in email_accounts
                 if row["ec_updatedonotbulkemail"]}
    flagged = {key(row["ec_emailaddress"]) for row in rows
               if row["ec_origin"] == ORIGIN_DOTDIGITAL and row["statecode"] == 0
               and row["_ec_emailaccountid_value"] in option_on}
    with_rows = {key(row["ec_emailaddress"]) for row in rows
                 if row["ec_origin"] == ORIGIN_DOTDIGITAL}
    for table in ("contacts", "leads", "accounts"):
        for record in crm_tables[table]:
            address = key(record.get("emailaddress1"))
            if address in with_rows:
                record["donotbulkemail"] = address in flagged
            elif address in not_yet_flagged:
                record["donotbulkemail"] = False


def _row(
    rng: random.Random, email_account: dict[str, Any], email: str, reason: str,
    suppressed_on: dt.datetime, origin: int,
) -> dict[str, Any]:
    return {
        "ec_emailsuppressionid": guid(rng), "ec_emailaddress": email,
        "_ec_emailaccountid_value": email_account["ec_emailaccountid"],
        "ec_reason": REASON_VALUES[reason], "ec_suppressedon": dataverse_time(suppressed_on),
        "ec_origin": origin, "ec_pushedon": None, "ec_requestresubscribe": False,
        "ec_resubscriptionstatus": None, "ec_resubscriptionrequestedon": None, **ACTIVE,
    }


def suppressed_anywhere(dotdigital: Iterable[dict[str, Any]]) -> set[str]:
    """Addresses suppressed in some account already: the demo leaves them as they are."""
    found: set[str] = set()
    for account in dotdigital:
        found |= {key(contact["email"]) for contact in account["contacts"]
                  if contact["status"] not in ACTIVE_STATUSES}
        found |= {key(item["email"]) for item in account["suppressions"]}
    return found


def _whole(moment: dt.datetime) -> dt.datetime:
    """Whole seconds: Dataverse keeps no fractions, and both sides must show the same date."""
    return moment.replace(microsecond=0)


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
