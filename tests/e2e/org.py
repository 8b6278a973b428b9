"""Small hand-made organisations for the end-to-end tests: dotdigital accounts, their email
account and schedule rows in CRM, and CRM contacts, leads and accounts, with known ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from emulators.datagen.crm_rows import secret_name
from shared.domain.model import OptInType, SyncStatus, SyncType

TABLES = {"contacts": "contactid", "leads": "leadid", "accounts": "accountid"}
OPT_IN_NAMES = tuple(t.dotdigital_name for t in OptInType)


def value_of(name: str | None) -> int | None:
    """The Dataverse choice value of a dotdigital opt-in type name."""
    if name is None:
        return None
    found = OptInType.from_dotdigital(name)
    assert found is not None, name
    return int(found)


@dataclass
class Org:
    """Build with ``add_*``; ``dataset()`` is a cluster seed for ``LocalStack(dataset=...)``."""

    email_accounts: int = 1
    dotdigital: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)  # ec_emailaccountid per account index

    def __post_init__(self) -> None:
        self.tables = {name: [] for name in (*TABLES, "ec_emailaccounts", "ec_syncschedules")}
        for index in range(self.email_accounts):
            account_id = 2001 + index
            row_id = str(uuid.UUID(int=index + 1))
            self.ids.append(row_id)
            self.dotdigital.append({
                "id": account_id, "apiUser": f"apiuser-{index}@apiconnector.com",
                "password": f"password-{index}-secret", "region": ("r1", "r2", "r3")[index % 3],
                "name": f"Brand {index + 1}", "contacts": [],
            })
            self.tables["ec_emailaccounts"].append({
                "ec_emailaccountid": row_id, "ec_name": f"Brand {index + 1}",
                "ec_accountid": account_id, "ec_isdefault": index == 0,
                "ec_apiusername": f"apiuser-{index}@apiconnector.com",
                "ec_secretname": secret_name(account_id), "ec_updatedonotbulkemail": False,
            })

    def add_schedule(self, account: int, *, interval: int = 0, sync_now: bool = False,
                     window: tuple[int, int] | None = None) -> str:
        row_id = str(uuid.uuid4())
        self.tables["ec_syncschedules"].append({
            "ec_syncscheduleid": row_id, "ec_name": f"Brand {account + 1}: ContactOptIn",
            "_ec_emailaccountid_value": self.ids[account],
            "ec_synctype": int(SyncType.CONTACT_OPT_IN), "ec_intervalminutes": interval,
            "ec_windowstart": window[0] if window else None,
            "ec_windowend": window[1] if window else None,
            "ec_status": int(SyncStatus.NONE), "ec_syncnow": sync_now,
        })
        return row_id

    def add_dotdigital(self, account: int, email: str, opt_in: str) -> None:
        # No dates: the emulator stamps them with its clock, so every run re-reads them within
        # the read overlap.
        self.dotdigital[account]["contacts"].append({"email": email, "optInType": opt_in})

    def add_crm(self, entity_set: str, email: str | None, opt_in: str | None = None) -> str:
        row_id = str(uuid.uuid4())
        row: dict[str, Any] = {TABLES[entity_set]: row_id, "emailaddress1": email,
                               "ec_optintype": value_of(opt_in)}
        row.update({"contacts": {"lastname": "Person"}, "leads": {"subject": "Enquiry"},
                    "accounts": {"name": "Company"}}[entity_set])
        self.tables[entity_set].append(row)
        return row_id

    def dataset(self) -> dict[str, Any]:
        return {"dataverse": {"tables": self.tables}, "dotdigital": {"accounts": self.dotdigital}}


# --- SuppressionLists ---------------------------------------------------------------------------
def add_suppression_schedule(org: Org, account: int, *, sync_now: bool = False) -> str:
    """A manual SuppressionLists schedule row for ``account``."""
    row_id = str(uuid.uuid4())
    org.tables["ec_syncschedules"].append({
        "ec_syncscheduleid": row_id, "ec_name": f"Brand {account + 1}: SuppressionLists",
        "_ec_emailaccountid_value": org.ids[account],
        "ec_synctype": int(SyncType.SUPPRESSION_LISTS), "ec_intervalminutes": 0,
        "ec_windowstart": None, "ec_windowend": None,
        "ec_status": int(SyncStatus.NONE), "ec_syncnow": sync_now,
    })
    return row_id


def add_crm_suppression(org: Org, account: int, email: str, **columns: Any) -> str:
    """An Email Suppression row as a CRM user makes it (origin CRM, not pushed), active."""
    row_id = str(uuid.uuid4())
    row: dict[str, Any] = {
        "ec_emailsuppressionid": row_id, "ec_emailaddress": email,
        "_ec_emailaccountid_value": org.ids[account], "ec_origin": 100000001,
        "ec_pushedon": None, "ec_requestresubscribe": False, "statecode": 0, "statuscode": 1,
    }
    row.update(columns)
    org.tables.setdefault("ec_emailsuppressions", []).append(row)
    return row_id
