"""A whole cluster seed: Entra users, Dynamics tables and dotdigital accounts that overlap the way
real data does.

Who is where:
- most people are a Dynamics contact *and* a contact of the first dotdigital account;
- some are only in Dynamics, some only in dotdigital; some have a lead or a CRM account too;
- later dotdigital accounts hold a share of the same people with their own opt-in types;
- a few Dynamics rows are duplicates (same address, maybe recased) or have blank or malformed
  addresses;
- each account has the SuppressionLists cases (``suppression_demo``): recent suppressions,
  resubscribers, Request Resubscribe rows and rows made in CRM.

The first people are a fixed showcase, so every case is present once ``contacts`` reaches
``SHOWCASE_MINIMUM``; the rest is drawn from ``random.Random(seed)``. No wall clock is read.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
from typing import Any

from emulators.datagen import crm_rows, suppression_demo
from emulators.datagen.dates import DEFAULT_AS_OF
from emulators.datagen.dotdigital_accounts import (
    OPT_IN_TYPES,
    SUPPRESSION_REASONS,
    AccountBuilder,
)
from emulators.datagen.people import (
    BLANK_ADDRESSES,
    MALFORMED_ADDRESSES,
    STYLES,
    PeopleFactory,
    Person,
    dynamics_copy,
)

SHOWCASE_STYLES = tuple(style for style in STYLES if style != "plain")
SHOWCASE_VARIANTS = ("padded", "recased")
SHOWCASE_MINIMUM = 50
# The shared people the showcase relies on: the one in every account, then one per reason.
SHOWCASE_PEOPLE = 1 + len(SUPPRESSION_REASONS)
ENTRA_TENANT_ID = "3f9a2c4e-7b1d-4e8a-9c5f-2d6b8e1a4c70"


def generate_dataset(
    *, contacts: int, accounts: int = 2, seed: int = 0, leads: int | None = None,
    crm_accounts: int | None = None, activities_per_campaign: int = 200,
    as_of: dt.datetime = DEFAULT_AS_OF,
) -> dict[str, Any]:
    """A seed document for ``EmulatorCluster.seed``: ``{"entra", "dataverse", "dotdigital"}``.

    ``contacts`` is the exact number of Dynamics contact rows; ``leads`` (default contacts/5) and
    ``crm_accounts`` (default contacts/10) likewise. ``accounts`` counts dotdigital accounts.
    """
    if contacts < 0 or accounts < 1 or activities_per_campaign < 0:
        raise ValueError("contacts and activities_per_campaign must be >= 0, accounts >= 1")
    lead_count = contacts // 5 if leads is None else leads
    crm_account_count = contacts // 10 if crm_accounts is None else crm_accounts
    if lead_count < 0 or crm_account_count < 0:
        raise ValueError("leads and crm_accounts must be >= 0")
    # Millions of small dicts would trigger the cyclic collector again and again for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _generate(contacts, accounts, seed, lead_count, crm_account_count,
                         activities_per_campaign, as_of)
    finally:
        if collecting:
            gc.enable()


def _generate(
    contacts: int, accounts: int, seed: int, lead_count: int, crm_account_count: int,
    activities_per_campaign: int, as_of: dt.datetime,
) -> dict[str, Any]:
    rng = random.Random(seed)
    factory = PeopleFactory(rng)
    plan = _DynamicsPlan(rng, factory)
    plan.add_contacts(contacts)
    plan.add_leads(lead_count)
    plan.add_crm_accounts(crm_account_count)
    in_dotdigital = plan.shared + plan.lead_people_in_dotdigital
    in_dotdigital += [factory.person() for _ in range(contacts // 10)]
    dotdigital = _dotdigital_accounts(rng, accounts, in_dotdigital, plan.crm_only, as_of,
                                      activities_per_campaign)
    email_accounts = [
        crm_rows.email_account_row(rng, account, default=index == 0)
        for index, account in enumerate(dotdigital)
    ]
    schedules = [row for account in email_accounts
                 for row in crm_rows.sync_schedule_rows(rng, account)]
    entra = _entra_users(rng)
    crm_tables = {"contacts": plan.contacts, "leads": plan.leads, "accounts": plan.accounts}
    # Drawn last, so everything above is the same with or without the suppression demo.
    suppressions = (
        suppression_demo.build(rng, _demo_people(plan, factory, dotdigital), dotdigital,
                               email_accounts, crm_tables, as_of)
        if contacts >= SHOWCASE_MINIMUM else []
    )
    return {
        "entra": entra,
        "dataverse": {"tables": {
            **crm_tables, "ec_emailaccounts": email_accounts, "ec_syncschedules": schedules,
            "ec_emailsuppressions": suppressions,
        }},
        "dotdigital": {"accounts": dotdigital},
    }


def secrets_for(dataset: dict[str, Any]) -> dict[str, str]:
    """App settings the connector resolves: each ``ec_secretname`` → that account's password."""
    passwords = {account["id"]: account["password"]
                 for account in dataset["dotdigital"]["accounts"]}
    return {
        row["ec_secretname"]: passwords[row["ec_accountid"]]
        for row in dataset["dataverse"]["tables"]["ec_emailaccounts"]
        if row["ec_accountid"] in passwords
    }


class _DynamicsPlan:
    def __init__(self, rng: random.Random, factory: PeopleFactory) -> None:
        self.rng = rng
        self.factory = factory
        self.contacts: list[dict[str, Any]] = []
        self.leads: list[dict[str, Any]] = []
        self.accounts: list[dict[str, Any]] = []
        self.shared: list[Person] = []  # Dynamics contact and dotdigital contact
        self.crm_only: list[Person] = []
        self.lead_people_in_dotdigital: list[Person] = []

    def add_contacts(self, count: int) -> None:
        rng = self.rng
        showcase = count >= SHOWCASE_MINIMUM
        faulty = max(2, count * 3 // 100) if showcase else 0
        duplicates = max(1, count // 100) if showcase else 0
        crm_only = count // 10
        shared = count - faulty - duplicates - crm_only
        for index in range(shared):
            style = SHOWCASE_STYLES[index] if showcase and index < len(SHOWCASE_STYLES) else None
            person = self.factory.person(style)
            variant_at = index - len(SHOWCASE_STYLES)
            variant = (SHOWCASE_VARIANTS[variant_at]
                       if showcase and 0 <= variant_at < len(SHOWCASE_VARIANTS) else None)
            self.shared.append(person)
            self._contact(person, dynamics_copy(rng, person.email, variant))
        for _ in range(crm_only):
            person = self.factory.person()
            self.crm_only.append(person)
            self._contact(person, dynamics_copy(rng, person.email))
        for _ in range(duplicates):
            person = rng.choice(self.shared)
            self._contact(person, dynamics_copy(rng, person.email))
        for index in range(faulty):
            pool = BLANK_ADDRESSES if index % 2 == 0 else MALFORMED_ADDRESSES
            address = pool[(index // 2) % len(pool)]
            self.contacts.append(crm_rows.contact_row(rng, rng.choice(("Pat", None)), "Unknown",
                                                      address))
        rng.shuffle(self.contacts)

    def add_leads(self, count: int) -> None:
        rng = self.rng
        reused = min(len(self.shared), count * 3 // 10)
        for person in self.shared[:reused]:
            self.leads.append(crm_rows.lead_row(rng, person, dynamics_copy(rng, person.email)))
        for index in range(count - reused):
            person = self.factory.person()
            (self.lead_people_in_dotdigital if index % 2 == 0 else self.crm_only).append(person)
            self.leads.append(crm_rows.lead_row(rng, person, dynamics_copy(rng, person.email)))

    def add_crm_accounts(self, count: int) -> None:
        rng = self.rng
        # The first shared people also have a lead: their address is on a contact, a lead and
        # an account at once.
        reused = min(len(self.shared), max(1, count // 5) if count else 0)
        for person in self.shared[:reused]:
            name = f"{person.last} Consulting"
            self.accounts.append(crm_rows.account_row(rng, name, dynamics_copy(rng, person.email)))
        for index in range(count - reused):
            name = crm_rows.company_name(rng, index + 1)
            email = None if rng.random() < 0.1 else f"info@company{index + 1}.example.com"
            self.accounts.append(crm_rows.account_row(rng, name, email))

    def _contact(self, person: Person, email: str) -> None:
        self.contacts.append(crm_rows.contact_row(self.rng, person.first, person.last, email))


def _dotdigital_accounts(
    rng: random.Random, count: int, people: list[Person], crm_only: list[Person],
    as_of: dt.datetime, activities_per_campaign: int,
) -> list[dict[str, Any]]:
    built: list[dict[str, Any]] = []
    for index in range(count):
        builder = AccountBuilder(rng, index, as_of)
        for position, person in enumerate(people):
            if position == 0:
                # One address in every account, with a different opt-in type in each.
                builder.add_contact(person, opt_in=OPT_IN_TYPES[index % len(OPT_IN_TYPES)])
            elif index == 0:
                reason_at = position - 1
                reason = (SUPPRESSION_REASONS[reason_at]
                          if reason_at < len(SUPPRESSION_REASONS) else None)
                builder.add_contact(person, reason=reason)
            elif rng.random() < 0.4:
                builder.add_contact(person)
        if index == 0:
            for position, person in enumerate(crm_only):
                if position == 0 or rng.random() < 0.1:
                    builder.add_suppression_only(person, rng.choice(SUPPRESSION_REASONS))
        builder.add_programs()
        builder.add_campaigns(activities_per_campaign)
        builder.add_form()
        built.append(builder.account)
    return built


def _demo_people(
    plan: _DynamicsPlan, factory: PeopleFactory, dotdigital: list[dict[str, Any]]
) -> suppression_demo.DemoPeople:
    """Who the suppression demo may use: never the showcase (the first shared people carry the
    every-account address and every suppression reason) nor anyone suppressed already."""
    showcase = {suppression_demo.key(person.email)
                for person in plan.shared[:SHOWCASE_PEOPLE]}
    crm_account_people = [
        Person("Info", row["name"], row["emailaddress1"], "plain") for row in plan.accounts
        if row["emailaddress1"] is not None and row["emailaddress1"].startswith("info@")
    ]
    return suppression_demo.DemoPeople(
        contacts=plan.shared[SHOWCASE_PEOPLE:], leads=list(plan.lead_people_in_dotdigital),
        crm_accounts=crm_account_people, factory=factory,
        used=showcase | suppression_demo.suppressed_anywhere(dotdigital),
    )


def _entra_users(rng: random.Random) -> dict[str, Any]:
    names = (("Morgan", "Reed"), ("Casey", "Lee"), ("Sam", "Carter"))
    return {
        "tenant_id": ENTRA_TENANT_ID,
        "users": [
            {"oid": crm_rows.guid(rng), "display_name": f"{first} {last}",
             "upn": f"{first.lower()}.{last.lower()}@connectordev.onmicrosoft.com"}
            for first, last in names
        ],
    }
