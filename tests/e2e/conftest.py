"""End-to-end tests: the app in the dev host, against the emulators over HTTPS and Azurite.

Each test (or module) starts its own ``LocalStack``; settings keep retries and locks short so
faults and redeliveries cost little time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import requests

from devtools.local_stack import Completion, LocalStack
from shared.domain.model import SyncType

FAST = {
    "HTTP_TIMEOUT_SECONDS": "10",
    "RETRY_MAX_WAIT_SECONDS": "2",  # the emulators' shortest Retry-After is 1 s
    "SYNC_READER_MAX_SECONDS": "30",
}


def stack_for(dataset: Mapping[str, Any], *, queues: bool = True, **settings: str) -> LocalStack:
    """A stack on ``dataset`` with the fast settings plus ``settings``."""
    return LocalStack(dataset=dataset, settings={**FAST, **settings}, lock_duration_s=5.0,
                      queues=queues)


# --- SuppressionLists: the contact's side in dotdigital, and what CRM shows -------------------
ACCOUNT_IDS = (2001, 2002, 2003)  # dotdigital account ids of Org's accounts, by index
DOTDIGITAL, CRM = 100000000, 100000001  # ec_origin
REASONS = {"Unsubscribed": 100000000, "HardBounced": 100000002, "IspComplained": 100000003,
           "Suppressed": 100000006}
RECORD_KEYS = {"contacts": "contactid", "leads": "leadid", "accounts": "accountid"}


def suppress(stack: LocalStack, account: int, email: str, reason: str) -> None:
    """The contact unsubscribes, bounces or complains in dotdigital."""
    _admin(stack, "suppress", {"accountId": ACCOUNT_IDS[account], "email": email,
                               "reason": reason})


def confirm_resubscribe(stack: LocalStack, account: int, email: str) -> None:
    """The contact clicks the link of a resubscribe confirmation email."""
    _admin(stack, "confirm-resubscribe", {"accountId": ACCOUNT_IDS[account], "email": email})


def _admin(stack: LocalStack, action: str, body: dict[str, Any]) -> None:
    response = requests.post(f"{stack.dotdigital.base_url}/_emulator/{action}", json=body,
                             verify=stack.cluster.ca_bundle, timeout=30)
    assert response.status_code == 200, (action, response.status_code, response.text)


def resubscribe_without_challenge(stack: LocalStack, account: int, email: str) -> str:
    """An account user resubscribes ``email`` in dotdigital (no confirmation email)."""
    seeded = stack.dataset["dotdigital"]["accounts"][account]
    url = (f"{stack.cluster.dotdigital_server.base_url}/{seeded['region']}"
           "/v2/contacts/resubscribe-with-no-challenge")
    response = requests.post(url, json={"unsubscribedContact": {"email": email}},
                             auth=(seeded["apiUser"], seeded["password"]),
                             verify=stack.cluster.ca_bundle, timeout=30)
    response.raise_for_status()
    status: str = response.json()["status"]
    return status


def sync(stack: LocalStack) -> Completion:
    """Tick Sync Now on every SuppressionLists schedule and run until it is applied."""
    stack.request_sync_now(sync_type=SyncType.SUPPRESSION_LISTS)
    completion = stack.run_until_complete(timeout_s=60)
    assert not completion.timer_failures, completion.timer_failures
    assert not stack.dead_letters(), stack.dead_letters()
    return completion


def dd_contact(stack: LocalStack, account: int, email: str) -> dict[str, Any]:
    """dotdigital's contact (seed format) with ``challengeEmails`` of its address."""
    state = stack.dotdigital.state(accountId=str(ACCOUNT_IDS[account]), email=email)
    found = state["accounts"][0]
    contacts = found["contacts"]
    assert len(contacts) == 1, contacts
    return {**contacts[0], "challengeEmails": found["challengeEmails"]}


def rows(stack: LocalStack, account_row_id: str | None = None) -> dict[str, dict[str, Any]]:
    """Email Suppression rows by lower-cased address (of one email account when given)."""
    found: dict[str, dict[str, Any]] = {}
    for row in stack.dataverse.rows("ec_emailsuppressions"):
        if account_row_id is not None and row["_ec_emailaccountid_value"] != account_row_id:
            continue
        key = str(row["ec_emailaddress"]).lower()
        assert key not in found, f"two rows for {key}"
        found[key] = row
    return found


def notes_on(stack: LocalStack, object_id: str) -> list[dict[str, Any]]:
    return [note for note in stack.dataverse.rows("annotations")
            if note.get("_objectid_value") == object_id]


def flags(stack: LocalStack, entity_set: str) -> dict[str, Any]:
    """``donotbulkemail`` of every row of a record table, by row id."""
    key = RECORD_KEYS[entity_set]
    return {str(row[key]): row.get("donotbulkemail") for row in stack.dataverse.rows(entity_set)}


def when(text: str | None) -> dt.datetime:
    """A Web API or emulator timestamp, to the second (Dataverse keeps no fractions)."""
    assert text, text
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(dt.UTC).replace(microsecond=0)


def minute_text(at: dt.datetime) -> str:
    """How statuses and Notes write a date."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def crm_snapshot(stack: LocalStack) -> dict[str, list[dict[str, Any]]]:
    """What the sync may write in Dataverse; ``versionnumber`` shows any rewrite."""
    ignored = {"modifiedon", "@odata.etag"}
    return {
        table: [{k: v for k, v in row.items() if k not in ignored}
                for row in stack.dataverse.rows(table)]
        for table in ("ec_emailsuppressions", "annotations", "contacts", "leads", "accounts")
    }
