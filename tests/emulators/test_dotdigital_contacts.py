"""dotdigital v2 contacts: upserts by email, lookups, since-date paging, address books."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin

USER, PASSWORD = "apiuser-contacts@apiconnector.com", "Secr3t-pass"
INVALID_EMAIL = {"message": "Email is not a valid email address. ERROR_PARAMETER_INVALID"}
INVALID_PAGING = {"message": "select must be between 1 and 1000, skip must not be negative. "
                             "ERROR_PARAMETER_INVALID"}
NOT_FOUND = {"message": "Error: ERROR_CONTACT_NOT_FOUND"}


class Api:
    def __init__(self, cluster: EmulatorCluster) -> None:
        self.base = f"{cluster.dotdigital_server.base_url}/r1"
        self.verify = cluster.ca_bundle

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.base + path, auth=(USER, PASSWORD),
                                verify=self.verify, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.request("POST", path, json=body)


@pytest.fixture
def api(cluster: EmulatorCluster, dotdigital_admin: Admin) -> Api:
    dotdigital_admin.seed({"accounts": [{
        "id": 1001, "apiUser": USER, "password": PASSWORD, "region": "r1",
        "addressBooks": [{"id": 500, "name": "Newsletter", "visibility": "Public"}],
        "contacts": [
            {"id": 10, "email": "Mixed.Case@Example.com", "optInType": "Single",
             "dataFields": {"FIRSTNAME": "Mia", "LASTNAME": "Case"}, "addressBooks": [500],
             "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z"},
            {"id": 11, "email": "gone@example.com", "status": "Unsubscribed",
             "created": "2024-01-01T00:00:00Z", "modified": "2024-01-02T00:00:00Z"},
        ],
    }]})
    return Api(cluster)


def data(contact: dict[str, Any]) -> dict[str, Any]:
    return {item["key"]: item["value"] for item in contact["dataFields"]}


def test_post_creates_a_contact_and_returns_the_full_api_contact(api: Api) -> None:
    response = api.post("/v2/contacts", {
        "email": "new.person@example.com", "optInType": "Double", "emailType": "PlainText",
        "dataFields": [{"key": "FIRSTNAME", "value": "New"}],
    })
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "optInType", "emailType", "dataFields", "status"}
    assert (body["email"], body["optInType"], body["emailType"], body["status"]) == (
        "new.person@example.com", "Double", "PlainText", "Subscribed")
    fields = data(body)
    assert fields["FIRSTNAME"] == "New"
    assert fields["LASTNAME"] is None
    assert fields["LASTSUBSCRIBED"].endswith("Z")
    assert api.get(f"/v2/contacts/{body['id']}").json()["email"] == "new.person@example.com"


def test_post_updates_by_email_ignoring_case_and_overwrites_only_what_is_supplied(
    api: Api,
) -> None:
    response = api.post("/v2/contacts", {
        "Email": "mixed.case@EXAMPLE.com", "OptInType": "verifieddouble",
        "DataFields": [{"Key": "lastname", "Value": "Changed"}],
    })
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == 10
    assert body["email"] == "Mixed.Case@Example.com"
    assert body["optInType"] == "VerifiedDouble"
    assert body["status"] == "Subscribed"
    assert data(body)["FIRSTNAME"] == "Mia"
    assert data(body)["LASTNAME"] == "Changed"
    assert len(api.get("/v2/contacts").json()) == 2


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"email": "demo@apiconnector"}, INVALID_EMAIL),
        ({"email": "no at sign"}, INVALID_EMAIL),
        ({"optInType": "Single"}, INVALID_EMAIL),
        ({"email": "ok@example.com", "optInType": "Sometimes"},
         {"message": "The request is invalid."}),
        ({"email": "ok@example.com", "dataFields": {"FIRSTNAME": "x"}},
         {"message": "The request is invalid."}),
        (["not", "an", "object"], {"message": "The request is invalid."}),
    ],
)
def test_bad_contact_bodies_are_rejected_and_create_nothing(
    api: Api, body: Any, expected: dict[str, str]
) -> None:
    response = api.post("/v2/contacts", body)
    assert (response.status_code, response.json()) == (400, expected)
    assert len(api.get("/v2/contacts").json()) == 2


def test_get_by_id_hides_unsubscribed_contacts_but_get_by_email_shows_them(api: Api) -> None:
    assert api.get("/v2/contacts/11").status_code == 404
    assert api.get("/v2/contacts/11").json() == NOT_FOUND
    by_email = api.get("/v2/contacts/GONE%40example.com")
    assert by_email.status_code == 200
    assert by_email.json()["status"] == "Unsubscribed"
    assert api.get("/v2/contacts/10").json()["email"] == "Mixed.Case@Example.com"


def test_unknown_contacts_are_not_found(api: Api) -> None:
    for path in ("/v2/contacts/999", "/v2/contacts/nobody@example.com"):
        response = api.get(path)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_modified_since_pages_with_select_and_skip_without_gaps_or_duplicates(api: Api) -> None:
    for number in range(23):
        api.post("/v2/contacts", {"email": f"page{number:02d}@example.com"})
    seen: list[int] = []
    skip = 0
    while True:
        page = api.get("/v2/contacts/modified-since/2024-01-01", params={
            "select": 5, "skip": skip}).json()
        if not page:
            break
        seen.extend(contact["id"] for contact in page)
        skip += 5
    assert len(seen) == len(set(seen)) == 25
    assert seen[:2] == [10, 11]  # oldest modification first
    assert api.get("/v2/contacts/modified-since/2024-01-01",
                   params={"select": 5, "skip": 1000}).json() == []


def test_lists_hide_data_fields_unless_full_data_is_asked_for(api: Api) -> None:
    plain = api.get("/v2/contacts/modified-since/2020-01-01").json()
    assert all(contact["dataFields"] is None for contact in plain)
    full = api.get("/v2/contacts/modified-since/2020-01-01", params={"withFullData": "true"})
    fields = data(full.json()[0])
    assert fields["FIRSTNAME"] == "Mia"
    assert "LASTSUBSCRIBED" in fields


@pytest.mark.parametrize(
    "params",
    [{"select": 0}, {"select": 1001}, {"skip": -1}, {"select": "abc"}, {"select": -5}],
)
def test_invalid_paging_is_a_parameter_error(api: Api, params: dict[str, Any]) -> None:
    for path in ("/v2/contacts/modified-since/2020-01-01", "/v2/contacts",
                 "/v2/contacts/suppressed-since/2020-01-01", "/v2/address-books"):
        response = api.get(path, params=params)
        assert (response.status_code, response.json()) == (400, INVALID_PAGING)


def test_select_up_to_1000_is_accepted(api: Api) -> None:
    response = api.get("/v2/contacts/modified-since/2020-01-01", params={"select": 1000})
    assert response.status_code == 200


def test_an_update_moves_the_contact_to_the_end_of_modified_since(
    api: Api, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.advance_clock(60)
    api.post("/v2/contacts", {"email": "MIXED.case@example.com",
                              "dataFields": [{"key": "FIRSTNAME", "value": "Mila"}]})
    ids = [contact["id"] for contact in api.get("/v2/contacts/modified-since/2020-01-01").json()]
    assert ids == [11, 10]


def test_created_since_only_returns_contacts_created_from_that_date(api: Api) -> None:
    created = api.post("/v2/contacts", {"email": "fresh@example.com"}).json()
    since = api.get("/v2/contacts/created-since/2024-06-01").json()
    assert [contact["id"] for contact in since] == [created["id"]]


def test_address_books_list_includes_the_system_books(api: Api) -> None:
    books = {book["name"]: book for book in api.get("/v2/address-books").json()}
    assert set(books) == {"All contacts", "Test", "Newsletter"}
    assert books["Newsletter"] == {"id": 500, "name": "Newsletter", "visibility": "Public",
                                   "contacts": 1}
    assert books["All contacts"]["contacts"] == 1  # the unsubscribed contact is not in it


def test_new_contacts_land_in_all_contacts(api: Api) -> None:
    created = api.post("/v2/contacts", {"email": "joiner@example.com"}).json()
    all_contacts = next(book for book in api.get("/v2/address-books").json()
                        if book["name"] == "All contacts")
    members = api.get(f"/v2/address-books/{all_contacts['id']}/contacts").json()
    assert created["id"] in [member["id"] for member in members]


def test_adding_to_an_address_book_creates_or_updates_and_joins_the_list(api: Api) -> None:
    response = api.post("/v2/address-books/500/contacts", {
        "email": "listed@example.com", "dataFields": [{"key": "FIRSTNAME", "value": "Lis"}]})
    assert response.status_code == 200
    assert data(response.json())["FIRSTNAME"] == "Lis"
    members = [member["email"] for member in api.get("/v2/address-books/500/contacts").json()]
    assert members == ["Mixed.Case@Example.com", "listed@example.com"]
    books = api.get(f"/v2/contacts/{response.json()['id']}/address-books").json()
    assert {book["name"] for book in books} == {"All contacts", "Newsletter"}


def test_a_suppressed_contact_cannot_be_added_to_a_list(api: Api) -> None:
    response = api.post("/v2/address-books/500/contacts", {
        "email": "gone@example.com", "dataFields": [{"key": "FIRSTNAME", "value": "X"}]})
    assert response.status_code == 400
    assert response.json() == {"message": "Contact is suppressed. ERROR_CONTACT_SUPPRESSED"}
    contact = api.get("/v2/contacts/gone@example.com").json()
    assert data(contact)["FIRSTNAME"] is None
    assert len(api.get("/v2/address-books/500/contacts").json()) == 1


def test_unknown_and_read_only_address_books(api: Api) -> None:
    for book in ("999", "abc"):
        response = api.post(f"/v2/address-books/{book}/contacts", {"email": "x@example.com"})
        assert (response.status_code, response.json()) == (
            404, {"message": "Error: ERROR_ADDRESSBOOK_NOT_FOUND"})
    test_book = next(book for book in api.get("/v2/address-books").json()
                     if book["name"] == "Test")
    response = api.post(f"/v2/address-books/{test_book['id']}/contacts",
                        {"email": "x@example.com"})
    assert response.status_code == 400
    assert response.json()["message"].endswith("ERROR_ADDRESSBOOK_NOTWRITABLE")
    assert api.get("/v2/contacts/x@example.com").status_code == 404


def test_address_book_modified_since_only_returns_members(api: Api) -> None:
    api.post("/v2/contacts", {"email": "outsider@example.com"})
    members = api.get("/v2/address-books/500/contacts/modified-since/2020-01-01").json()
    assert [member["id"] for member in members] == [10]


def test_verified_double_opt_in_makes_a_pending_contact_until_confirmed(
    api: Api, dotdigital_admin: Admin
) -> None:
    created = api.post("/v2/contacts", {"email": "careful@example.com",
                                        "optInType": "VerifiedDouble"}).json()
    assert created["status"] == "PendingOptIn"
    assert data(created)["LASTSUBSCRIBED"] is None
    state = dotdigital_admin.state(accountId=1001, email="careful@example.com")
    assert [mail["kind"] for mail in state["accounts"][0]["challengeEmails"]] == ["optIn"]
    dotdigital_admin.call("POST", "confirm-resubscribe",
                          {"accountId": 1001, "email": "careful@example.com"})
    confirmed = api.get("/v2/contacts/careful@example.com").json()
    assert confirmed["status"] == "Subscribed"
    assert data(confirmed)["LASTSUBSCRIBED"] is not None
