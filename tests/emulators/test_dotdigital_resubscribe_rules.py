"""dotdigital resubscribe rules by suppression reason, over HTTPS.

"Suppressed by you" (reason ``Suppressed``) is lifted at once by every variant with no email;
``Unsubscribed`` is challenged once per resend window; bounces cannot be unsuppressed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin
from tests.emulators.test_dotdigital_suppressions import Api as SuppressionsApi

USER, PASSWORD = "apiuser-resub@apiconnector.com", "Secr3t-pass"
ACCOUNT = 1005
BOOK = 710
SUPPRESSED_ON = "2024-03-01T00:00:00Z"


class Api(SuppressionsApi):
    def __init__(self, cluster: EmulatorCluster) -> None:
        super().__init__(cluster, USER, PASSWORD)

    def resubscribe(self, path: str, email: str, **extra: Any) -> dict[str, Any]:
        body = {"unsubscribedContact": {"email": email}, **extra}
        response = self.request("POST", path, json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def suppressed(email: str, reason: str) -> dict[str, Any]:
    return {"email": email, "suppression": {"reason": reason, "dateRemoved": SUPPRESSED_ON},
            "created": "2024-01-01T00:00:00Z", "modified": SUPPRESSED_ON}


def seed(admin: Admin, **settings: Any) -> None:
    admin.seed({"accounts": [{
        "id": ACCOUNT, "apiUser": USER, "password": PASSWORD, "settings": settings,
        "addressBooks": [{"id": BOOK, "name": "Offers"}],
        "contacts": [
            suppressed("byyou@example.com", "Suppressed"),
            suppressed("left@example.com", "Unsubscribed"),
            suppressed("bounced@example.com", "HardBounced"),
        ],
    }]})


@pytest.fixture
def api(cluster: EmulatorCluster, dotdigital_admin: Admin) -> Api:
    seed(dotdigital_admin)
    return Api(cluster)


def challenge_emails(admin: Admin, email: str) -> list[dict[str, Any]]:
    state = admin.state(accountId=ACCOUNT, email=email)
    return list(state["accounts"][0]["challengeEmails"])


def last_subscribed(contact: dict[str, Any]) -> dt.datetime:
    value = {item["key"]: item["value"] for item in contact["dataFields"]}["LASTSUBSCRIBED"]
    return dt.datetime.fromisoformat(value)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


CHALLENGE_PATHS = ("/v2/contacts/resubscribe", f"/v2/address-books/{BOOK}/contacts/resubscribe")


@pytest.mark.parametrize("path", CHALLENGE_PATHS)
def test_suppressed_by_you_is_added_at_once_without_an_email(
    cluster: EmulatorCluster, api: Api, dotdigital_admin: Admin, path: str
) -> None:
    before = cluster.clock.now().replace(microsecond=0)
    result = api.resubscribe(path, "byyou@example.com", preferredLocale="en-EN",
                             returnUrlToUseIfChallenged="https://example.com/back")
    after = cluster.clock.now()
    assert result["status"] == "ContactAdded"
    assert result["contact"]["status"] == "Suppressed"  # as it was, like the documented example
    assert challenge_emails(dotdigital_admin, "byyou@example.com") == []
    contact = api.get("/v2/contacts/byyou@example.com")
    assert contact["status"] == "Subscribed"
    assert before <= last_subscribed(contact) <= after


def test_the_address_book_variant_puts_a_suppressed_by_you_contact_in_the_list(api: Api) -> None:
    api.resubscribe(f"/v2/address-books/{BOOK}/contacts/resubscribe", "byyou@example.com")
    members = api.get(f"/v2/address-books/{BOOK}/contacts")
    assert [member["email"] for member in members] == ["byyou@example.com"]


def test_enforced_double_opt_in_still_adds_suppressed_by_you_at_once(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    seed(dotdigital_admin, enforceDoubleOptIn=True)
    api = Api(cluster)
    for path in ("/v2/contacts/resubscribe", "/v2/contacts/resubscribe-with-no-challenge"):
        assert api.resubscribe(path, "byyou@example.com")["status"] == "ContactAdded"
    assert challenge_emails(dotdigital_admin, "byyou@example.com") == []
    assert api.get("/v2/contacts/byyou@example.com")["status"] == "Subscribed"


def test_a_resubscribed_suppressed_by_you_contact_reads_as_a_resubscriber(
    cluster: EmulatorCluster, api: Api, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.advance_clock(60)
    since = cluster.clock.now().replace(microsecond=0)
    api.resubscribe("/v2/contacts/resubscribe", "byyou@example.com")
    rows = api.get("/v2/contacts/suppressed-since/2020-01-01")
    assert "byyou@example.com" not in [row["suppressedContact"]["email"] for row in rows]
    page = api.get("/contacts/v3", params={
        "~modified": f"gte::{iso(since)}", "data-fields": "LASTSUBSCRIBED",
        "include": "channelProperties"})
    [item] = page["_items"]
    assert item["identifiers"]["email"] == "byyou@example.com"
    assert item["status"] == "subscribed"
    assert item["channelProperties"]["email"]["status"] == "subscribed"
    assert dt.datetime.fromisoformat(item["dataFields"]["LASTSUBSCRIBED"]) >= since


def test_unsubscribed_is_challenged_once_within_the_resend_window(
    api: Api, dotdigital_admin: Admin
) -> None:
    for _ in range(2):
        result = api.resubscribe("/v2/contacts/resubscribe", "left@example.com")
        assert result["status"] == "ContactChallenged"
        dotdigital_admin.advance_clock(3600)
    [mail] = challenge_emails(dotdigital_admin, "left@example.com")
    assert mail["kind"] == "resubscribe"
    assert api.get("/v2/contacts/left@example.com")["status"] == "Unsubscribed"


@pytest.mark.parametrize("path", CHALLENGE_PATHS)
def test_hard_bounced_cannot_be_unsuppressed(
    api: Api, dotdigital_admin: Admin, path: str
) -> None:
    before = api.get("/v2/contacts/bounced@example.com")
    result = api.resubscribe(path, "bounced@example.com")
    assert result["status"] == "ContactCannotBeUnsuppressed"
    assert api.get("/v2/contacts/bounced@example.com") == before
    assert challenge_emails(dotdigital_admin, "bounced@example.com") == []
