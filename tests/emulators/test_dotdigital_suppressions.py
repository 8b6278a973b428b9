"""dotdigital suppressions and resubscribes: since-date reads, unsubscribe, suppress-contacts,
the four resubscribe variants and the contact confirming a challenge email."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin

USER, PASSWORD = "apiuser-supp@apiconnector.com", "Secr3t-pass"
BOOK = 700


class Api:
    def __init__(self, cluster: EmulatorCluster, user: str = USER,
                 password: str = PASSWORD) -> None:
        self.base = f"{cluster.dotdigital_server.base_url}/r1"
        self.verify = cluster.ca_bundle
        self.auth = (user, password)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.base + path, auth=self.auth,
                                verify=self.verify, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: Any) -> requests.Response:
        return self.request("POST", path, json=body)


def suppressed(email: str, reason: str, removed: str = "2024-03-01T00:00:00Z",
               **extra: Any) -> dict[str, Any]:
    return {"email": email, "suppression": {"reason": reason, "dateRemoved": removed},
            "created": "2024-01-01T00:00:00Z", "modified": removed, **extra}


def seed(admin: Admin, **settings: Any) -> None:
    admin.seed({"accounts": [{
        "id": 1001, "apiUser": USER, "password": PASSWORD, "settings": settings,
        "addressBooks": [{"id": BOOK, "name": "Offers"}],
        "contacts": [
            {"email": "active@example.com", "created": "2024-01-01T00:00:00Z",
             "modified": "2024-01-01T00:00:00Z"},
            suppressed("left@example.com", "Unsubscribed", "2024-03-01T00:00:00Z"),
            suppressed("bounced@example.com", "HardBounced", "2024-03-02T00:00:00Z"),
            suppressed("complained@example.com", "IspComplained", "2024-03-03T00:00:00Z"),
            suppressed("blocked@example.com", "DomainSuppression", "2024-03-04T00:00:00Z"),
            suppressed("global@example.com", "NotAllowed", "2024-03-05T00:00:00Z"),
            suppressed("byyou@example.com", "Suppressed", "2024-03-06T00:00:00Z"),
            suppressed("forgiven@example.com", "HardBounced", "2024-03-07T00:00:00Z",
                       resubscribable=True),
        ],
        "suppressions": [{"email": "listonly@example.com", "reason": "Unsubscribed",
                          "dateRemoved": "2024-03-08T00:00:00Z"}],
    }]})


@pytest.fixture
def api(cluster: EmulatorCluster, dotdigital_admin: Admin) -> Api:
    seed(dotdigital_admin)
    return Api(cluster)


def resubscribe_body(email: str, **extra: Any) -> dict[str, Any]:
    return {"unsubscribedContact": {"email": email,
                                    "dataFields": [{"key": "FIRSTNAME", "value": "Back"}]},
            **extra}


def challenge_emails(admin: Admin, email: str) -> list[dict[str, Any]]:
    state = admin.state(accountId=1001, email=email)
    return list(state["accounts"][0]["challengeEmails"])


def field(contact: dict[str, Any], name: str) -> Any:
    return {item["key"]: item["value"] for item in contact["dataFields"]}[name]


def test_suppressed_since_returns_one_row_per_suppression_from_the_date(api: Api) -> None:
    rows = api.get("/v2/contacts/suppressed-since/2024-03-03T00:00:00Z")
    assert [row["suppressedContact"]["email"] for row in rows] == [
        "complained@example.com", "blocked@example.com", "global@example.com",
        "byyou@example.com", "forgiven@example.com", "listonly@example.com"]
    assert rows[0] == {
        "suppressedContact": {"id": rows[0]["suppressedContact"]["id"],
                              "email": "complained@example.com", "optInType": "Unknown",
                              "emailType": "Html", "dataFields": None, "status": "IspComplained"},
        "dateRemoved": "2024-03-03T00:00:00.000Z", "reason": "IspComplained",
    }
    page = api.get("/v2/contacts/suppressed-since/2020-01-01", params={"select": 2, "skip": 6})
    assert [row["reason"] for row in page] == ["HardBounced", "Unsubscribed"]


def test_unsubscribed_since_only_returns_unsubscribes(api: Api) -> None:
    rows = api.get("/v2/contacts/unsubscribed-since/2020-01-01")
    assert [(row["suppressedContact"]["email"], row["reason"]) for row in rows] == [
        ("left@example.com", "Unsubscribed"), ("listonly@example.com", "Unsubscribed")]


def test_unsubscribe_suppresses_the_contact_and_bumps_it(
    api: Api, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.advance_clock(5)
    response = api.post("/v2/contacts/unsubscribe", {"Email": "ACTIVE@example.com"})
    assert response.status_code == 200
    body = response.json()
    assert body["reason"] == "Unsubscribed"
    assert body["suppressedContact"]["status"] == "Unsubscribed"
    assert body["dateRemoved"].endswith("Z")
    latest = api.get("/v2/contacts/unsubscribed-since/2024-12-01")
    assert [row["suppressedContact"]["email"] for row in latest] == ["active@example.com"]
    modified = api.get("/v2/contacts/modified-since/2020-01-01")
    assert modified[-1]["email"] == "active@example.com"
    contact_id = body["suppressedContact"]["id"]
    assert api.request("GET", f"/v2/contacts/{contact_id}").status_code == 404


def test_unsubscribe_of_unknown_or_invalid_addresses_changes_nothing(api: Api) -> None:
    before = api.get("/v2/contacts/suppressed-since/2020-01-01")
    unknown = api.post("/v2/contacts/unsubscribe", {"email": "stranger@example.com"})
    assert (unknown.status_code, unknown.json()) == (
        404, {"message": "Error: ERROR_CONTACT_NOT_FOUND"})
    invalid = api.post("/v2/contacts/unsubscribe", {"email": "not-an-address"})
    assert invalid.status_code == 400
    assert api.get("/v2/contacts/suppressed-since/2020-01-01") == before


def test_suppress_contacts_reports_suppressed_and_not_found(api: Api) -> None:
    active_id = api.get("/v2/contacts/active@example.com")["id"]
    response = api.request("PUT", "/v2/contacts/suppress-contacts", json=[
        {"id": active_id}, {"email": "unknown@emailsim.co"}, {"email": "LEFT@example.com"}])
    assert response.status_code == 200
    assert response.json() == {
        "suppressed": [{"id": active_id, "email": "active@example.com"},
                       {"id": api.get("/v2/contacts/left@example.com")["id"],
                        "email": "left@example.com"}],
        "notFound": [{"id": 0, "email": "unknown@emailsim.co"}],
    }
    assert api.get("/v2/contacts/active@example.com")["status"] == "Suppressed"
    assert api.get("/v2/contacts/left@example.com")["status"] == "Unsubscribed"


@pytest.mark.parametrize("body", [{"email": "x@example.com"}, [], [{"id": "seven"}], [{}], [3]])
def test_bad_suppress_contacts_bodies_change_nothing(api: Api, body: Any) -> None:
    response = api.request("PUT", "/v2/contacts/suppress-contacts", json=body)
    assert (response.status_code, response.json()) == (400, {"message": "The request is invalid."})
    assert api.get("/v2/contacts/active@example.com")["status"] == "Subscribed"


@pytest.mark.parametrize(
    ("email", "outcome"),
    [
        ("left@example.com", "ContactAdded"),
        ("byyou@example.com", "ContactAdded"),
        ("bounced@example.com", "ContactCannotBeUnsuppressed"),
        ("complained@example.com", "ContactCannotBeUnsuppressed"),
        ("blocked@example.com", "ContactCannotBeUnsuppressed"),
        ("global@example.com", "ContactCannotBeUnsuppressed"),
        ("forgiven@example.com", "ContactAdded"),
        ("active@example.com", "ContactAdded"),
    ],
)
def test_resubscribe_without_challenge_follows_the_contact_state(
    api: Api, email: str, outcome: str
) -> None:
    before = api.get(f"/v2/contacts/{email}")
    response = api.post("/v2/contacts/resubscribe-with-no-challenge", resubscribe_body(email))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == outcome
    # The result carries the contact as it was, like the documented examples.
    assert body["contact"]["status"] == before["status"]
    assert body["contact"]["dataFields"] is None
    after = api.get(f"/v2/contacts/{email}")
    if outcome == "ContactAdded":
        assert after["status"] == "Subscribed"
        assert field(after, "FIRSTNAME") == "Back"
    else:
        assert after == before


def test_a_resubscribed_contact_shows_up_as_a_resubscriber(
    api: Api, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.advance_clock(10)
    api.post("/v2/contacts/resubscribe-with-no-challenge", resubscribe_body("left@example.com"))
    changed = api.get("/v2/contacts/modified-since/2024-12-01", params={"withFullData": "true"})
    assert [contact["email"] for contact in changed] == ["left@example.com"]
    assert changed[0]["status"] == "Subscribed"
    assert field(changed[0], "LASTSUBSCRIBED").endswith("Z")
    emails = [row["suppressedContact"]["email"]
              for row in api.get("/v2/contacts/suppressed-since/2020-01-01")]
    assert "left@example.com" not in emails
    all_contacts = next(book for book in api.get("/v2/address-books")
                        if book["name"] == "All contacts")
    members = api.get(f"/v2/address-books/{all_contacts['id']}/contacts")
    assert "left@example.com" in [member["email"] for member in members]


def test_resubscribe_with_challenge_waits_for_the_contact_to_confirm(
    api: Api, dotdigital_admin: Admin
) -> None:
    response = api.post("/v2/contacts/resubscribe", resubscribe_body(
        "left@example.com", preferredLocale="de-DE",
        returnUrlToUseIfChallenged="https://example.com/thanks"))
    assert response.json()["status"] == "ContactChallenged"
    assert api.get("/v2/contacts/left@example.com")["status"] == "Unsubscribed"
    [mail] = challenge_emails(dotdigital_admin, "left@example.com")
    assert (mail["kind"], mail["preferredLocale"], mail["returnUrl"]) == (
        "resubscribe", "de-DE", "https://example.com/thanks")
    dotdigital_admin.advance_clock(30)
    confirmed = dotdigital_admin.call("POST", "confirm-resubscribe",
                                      {"accountId": 1001, "email": "LEFT@example.com"})
    assert confirmed["contact"]["status"] == "Subscribed"
    contact = api.get("/v2/contacts/left@example.com")
    assert contact["status"] == "Subscribed"
    assert field(contact, "FIRSTNAME") == "Back"  # data applied on confirmation
    assert field(contact, "LASTSUBSCRIBED") is not None
    changed = api.get("/v2/contacts/modified-since/2024-12-01")
    assert [item["email"] for item in changed] == ["left@example.com"]


def test_repeated_challenges_send_one_email_until_the_resend_window_passes(
    api: Api, dotdigital_admin: Admin
) -> None:
    for _ in range(3):
        response = api.post("/v2/contacts/resubscribe", resubscribe_body("left@example.com"))
        assert response.json()["status"] == "ContactChallenged"
    assert len(challenge_emails(dotdigital_admin, "left@example.com")) == 1
    dotdigital_admin.advance_clock(24 * 3600 + 1)
    api.post("/v2/contacts/resubscribe", resubscribe_body("left@example.com"))
    assert len(challenge_emails(dotdigital_admin, "left@example.com")) == 2


def test_challenge_variant_cannot_unsuppress_a_complaint(api: Api, dotdigital_admin: Admin) -> None:
    response = api.post("/v2/contacts/resubscribe", resubscribe_body("complained@example.com"))
    assert response.json()["status"] == "ContactCannotBeUnsuppressed"
    assert challenge_emails(dotdigital_admin, "complained@example.com") == []


def test_enforced_double_opt_in_challenges_even_without_challenge(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    seed(dotdigital_admin, enforceDoubleOptIn=True)
    api = Api(cluster)
    response = api.post("/v2/contacts/resubscribe-with-no-challenge",
                        resubscribe_body("left@example.com"))
    assert response.json()["status"] == "ContactChallenged"
    assert api.get("/v2/contacts/left@example.com")["status"] == "Unsubscribed"
    assert len(challenge_emails(dotdigital_admin, "left@example.com")) == 1


def test_address_book_variant_without_challenge_joins_the_list(api: Api) -> None:
    response = api.post(f"/v2/address-books/{BOOK}/contacts/resubscribe-with-no-challenge",
                        resubscribe_body("left@example.com"))
    assert response.json()["status"] == "ContactAdded"
    members = api.get(f"/v2/address-books/{BOOK}/contacts")
    assert [member["email"] for member in members] == ["left@example.com"]


def test_address_book_variant_with_challenge_joins_the_list_after_confirmation(
    api: Api, dotdigital_admin: Admin
) -> None:
    response = api.post(f"/v2/address-books/{BOOK}/contacts/resubscribe",
                        resubscribe_body("left@example.com"))
    assert response.json()["status"] == "ContactChallenged"
    assert api.get(f"/v2/address-books/{BOOK}/contacts") == []
    dotdigital_admin.call("POST", "confirm-resubscribe",
                          {"accountId": 1001, "email": "left@example.com"})
    members = api.get(f"/v2/address-books/{BOOK}/contacts")
    assert [member["email"] for member in members] == ["left@example.com"]


def test_resubscribing_an_unknown_address_creates_a_subscribed_contact(api: Api) -> None:
    response = api.post("/v2/contacts/resubscribe", resubscribe_body("brand.new@example.com"))
    assert response.json()["status"] == "ContactAdded"
    assert api.get("/v2/contacts/brand.new@example.com")["status"] == "Subscribed"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v2/contacts/resubscribe", {"email": "left@example.com"}, 400,
         "The request is invalid."),
        ("/v2/contacts/resubscribe", {"unsubscribedContact": {"email": "nope"}}, 400,
         "Email is not a valid email address. ERROR_PARAMETER_INVALID"),
        ("/v2/contacts/resubscribe",
         resubscribe_body("left@example.com", preferredLocale="xx-XX"), 400,
         "The request is invalid."),
        ("/v2/address-books/9999/contacts/resubscribe", resubscribe_body("left@example.com"),
         404, "Error: ERROR_ADDRESSBOOK_NOT_FOUND"),
    ],
)
def test_bad_resubscribe_requests_change_nothing(
    api: Api, dotdigital_admin: Admin, path: str, body: Any, status: int, message: str
) -> None:
    response = api.post(path, body)
    assert (response.status_code, response.json()) == (status, {"message": message})
    assert api.get("/v2/contacts/left@example.com")["status"] == "Unsubscribed"
    assert challenge_emails(dotdigital_admin, "left@example.com") == []


def test_confirming_needs_a_pending_challenge(
    cluster: EmulatorCluster, api: Api
) -> None:
    url = f"{cluster.dotdigital_server.base_url}/_emulator/confirm-resubscribe"

    def confirm(body: Any) -> requests.Response:
        return requests.post(url, json=body, verify=cluster.ca_bundle, timeout=10)

    assert confirm({"accountId": 1001, "email": "left@example.com"}).status_code == 409
    assert confirm({"accountId": 1001, "email": "who@example.com"}).status_code == 404
    assert confirm({"accountId": 4242, "email": "left@example.com"}).status_code == 404
    assert confirm({"accountId": "1001", "email": "left@example.com"}).status_code == 400
    assert api.get("/v2/contacts/left@example.com")["status"] == "Unsubscribed"


def test_admin_suppress_plays_a_bounce(cluster: EmulatorCluster, api: Api,
                                       dotdigital_admin: Admin) -> None:
    dotdigital_admin.call("POST", "suppress", {"accountId": 1001, "email": "active@example.com",
                                                "reason": "hardbounced"})
    rows = api.get("/v2/contacts/suppressed-since/2024-12-01")
    assert [(row["suppressedContact"]["email"], row["reason"]) for row in rows] == [
        ("active@example.com", "HardBounced")]
    response = requests.post(
        f"{cluster.dotdigital_server.base_url}/_emulator/suppress",
        json={"accountId": 1001, "email": "left@example.com", "reason": "Bored"},
        verify=cluster.ca_bundle, timeout=10)
    assert response.status_code == 400
