"""Dynamics rows in the shape the Web API returns them: logical names, lookups as ``_x_value``."""

from __future__ import annotations

import random
import uuid
from typing import Any

from emulators.datagen.people import Person
from emulators.datagen.weighted import WeightedChoice

OPT_IN_CHOICES = {"Unknown": 100000000, "Single": 100000001, "Double": 100000002,
                  "VerifiedDouble": 100000003}
_OPT_IN_DRAW = WeightedChoice(tuple(OPT_IN_CHOICES.values()), (20, 45, 25, 10))
# SuppressionLists is manual (interval 0): it runs when Sync Now is ticked, so a demo run decides
# when suppressions and Request Resubscribe rows are processed.
SYNC_TYPES = ((100000000, "ContactOptIn", 15), (100000001, "SuppressionLists", 0),
              (100000002, "Engagement", 240))
PREFERRED_LOCALE = "en-EN"  # one of the locales dotdigital's resubscribe calls accept
SYNC_STATUS_NONE = 100000000
COMPANY_WORDS = ("Northwind", "Contoso", "Fabrikam", "Tailspin", "Adventure", "Litware",
                 "Proseware", "Wingtip", "Lucerne", "Margie's", "Alpine", "Coho", "Trey",
                 "Woodgrove")
COMPANY_KINDS = ("Traders", "Ltd", "Group", "& Sons", "Partners", "Logistics", "Studios")


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def opt_in_value(rng: random.Random) -> int | None:
    """About 40% of CRM records have never had an opt-in type set."""
    if rng.random() < 0.4:
        return None
    return _OPT_IN_DRAW.pick(rng)


def contact_row(
    rng: random.Random, first: str | None, last: str, email: str | None
) -> dict[str, Any]:
    return {
        "contactid": guid(rng), "firstname": first, "lastname": last, "emailaddress1": email,
        "donotbulkemail": rng.random() < 0.05, "ec_optintype": opt_in_value(rng),
    }


def lead_row(rng: random.Random, person: Person, email: str) -> dict[str, Any]:
    return {
        "leadid": guid(rng), "subject": f"Enquiry from {person.first} {person.last}",
        "firstname": person.first, "lastname": person.last, "emailaddress1": email,
        "donotbulkemail": rng.random() < 0.05, "ec_optintype": opt_in_value(rng),
    }


def account_row(rng: random.Random, name: str, email: str | None) -> dict[str, Any]:
    return {
        "accountid": guid(rng), "name": name, "emailaddress1": email,
        "donotbulkemail": rng.random() < 0.05, "ec_optintype": opt_in_value(rng),
    }


def company_name(rng: random.Random, index: int) -> str:
    return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {index}"


def email_account_row(
    rng: random.Random, dotdigital_account: dict[str, Any], *, default: bool
) -> dict[str, Any]:
    account_id = dotdigital_account["id"]
    slug = dotdigital_account["name"].lower().replace(" ", "-")
    return {
        "ec_emailaccountid": guid(rng), "ec_name": dotdigital_account["name"],
        "ec_description": f"dotdigital account {account_id} ({dotdigital_account['region']})",
        "ec_accountid": account_id, "ec_isdefault": default,
        "ec_apiusername": dotdigital_account["apiUser"], "ec_secretname": secret_name(account_id),
        "ec_updatedonotbulkemail": default, "ec_preferredlocale": PREFERRED_LOCALE,
        "ec_resubscribereturnurl": f"https://www.example.com/{slug}/welcome-back",
    }


def sync_schedule_rows(rng: random.Random, email_account: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "ec_syncscheduleid": guid(rng), "ec_name": f"{email_account['ec_name']}: {label}",
            "_ec_emailaccountid_value": email_account["ec_emailaccountid"],
            "ec_synctype": value, "ec_intervalminutes": minutes, "ec_windowstart": None,
            "ec_windowend": None, "ec_status": SYNC_STATUS_NONE, "ec_syncnow": False,
        }
        for value, label, minutes in SYNC_TYPES
    ]


def secret_name(account_id: int) -> str:
    """The app setting that holds the API user's password (never stored in Dataverse)."""
    return f"DOTDIGITAL_SECRET_ACCOUNT{account_id}"
