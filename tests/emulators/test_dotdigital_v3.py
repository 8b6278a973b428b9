"""dotdigital v3 contacts: ``~modified``/``~created`` filters, marker paging, links, errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin

USER, PASSWORD = "apiuser-v3@apiconnector.com", "Secr3t-pass"


class Api:
    def __init__(self, cluster: EmulatorCluster) -> None:
        self.base = f"{cluster.dotdigital_server.base_url}/r3"
        self.verify = cluster.ca_bundle

    def get(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        url = path_or_url if path_or_url.startswith("https://") else self.base + path_or_url
        return requests.get(url, auth=(USER, PASSWORD), verify=self.verify, timeout=10, **kwargs)


@pytest.fixture
def api(cluster: EmulatorCluster, dotdigital_admin: Admin) -> Api:
    contacts = [
        {"id": 100 + number, "email": f"person{number}@example.com",
         "optInType": "Double" if number % 2 else "Single",
         "dataFields": {"FIRSTNAME": f"P{number}"},
         "created": f"2024-02-{number + 1:02d}T00:00:00Z",
         "modified": f"2024-05-01T10:{number:02d}:00Z"}
        for number in range(12)
    ]
    contacts.append({"id": 200, "email": "out@example.com", "status": "Unsubscribed",
                     "created": "2024-01-01T00:00:00Z", "modified": "2024-05-01T11:00:00Z",
                     "addressBooks": []})
    contacts[0]["addressBooks"] = [9]
    dotdigital_admin.seed({"accounts": [{
        "id": 1003, "apiUser": USER, "password": PASSWORD, "region": "r3",
        "addressBooks": [{"id": 9, "name": "VIP"}], "contacts": contacts,
    }]})
    return Api(cluster)


def walk(api: Api, params: dict[str, Any]) -> tuple[list[int], list[dict[str, Any]]]:
    response = api.get("/contacts/v3", params=params)
    ids: list[int] = []
    bodies: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        bodies.append(body)
        ids.extend(item["contactId"] for item in body["_items"])
        if "next" not in body["_links"]:
            return ids, bodies
        response = api.get(body["_links"]["next"]["link"])


def test_modified_filter_pages_in_ascending_order_with_markers(api: Api) -> None:
    ids, bodies = walk(api, {"~modified": "gte::2024-05-01T10:05:00Z", "limit": 3})
    assert ids == [105, 106, 107, 108, 109, 110, 111, 200]
    assert [len(body["_items"]) for body in bodies] == [3, 3, 2]
    first_links = bodies[0]["_links"]
    assert set(first_links) == {"self", "first", "next"}
    assert "~modified=gte::2024-05-01T10:05:00Z" in first_links["next"]["link"]
    assert "limit=3" in first_links["next"]["link"]
    assert f"marker={first_links['next']['marker']}" in first_links["next"]["link"]
    assert "next" not in bodies[-1]["_links"]
    assert bodies[-1]["_links"]["first"]["link"] == first_links["first"]["link"]


def test_offset_dates_are_accepted_encoded_and_raw(api: Api, cluster: EmulatorCluster) -> None:
    encoded = api.get("/contacts/v3", params={"~modified": "gte::2024-05-01T11:10:00+01:00"})
    assert [item["contactId"] for item in encoded.json()["_items"]] == [110, 111, 200]
    raw = requests.get(f"{api.base}/contacts/v3?%7Emodified=gte::2024-05-01T11:10:00+01:00",
                       auth=(USER, PASSWORD), verify=cluster.ca_bundle, timeout=10)
    assert raw.json()["_items"] == encoded.json()["_items"]


def test_contact_shape_with_data_fields_and_channel_properties(api: Api) -> None:
    response = api.get("/contacts/v3", params={
        "~modified": "gte::2024-05-01T10:11:00Z", "data-fields": "FIRSTNAME|LASTSUBSCRIBED",
        "include": "channelProperties|lists"})
    first, unsubscribed = response.json()["_items"]
    assert first == {
        "contactId": 111, "status": "subscribed", "created": "2024-02-12T00:00:00.000Z",
        "updated": "2024-05-01T10:11:00.000Z", "identifiers": {"email": "person11@example.com"},
        "dataFields": {"FIRSTNAME": "P11", "LASTSUBSCRIBED": None},
        "channelProperties": {"email": {"emailType": "Html", "optInType": "Double",
                                        "status": "subscribed"}},
        "lists": [],
    }
    assert unsubscribed["status"] == "unsubscribed"
    assert unsubscribed["channelProperties"]["email"]["status"] == "unsubscribed"


def test_without_data_fields_only_identifiers_come_back(api: Api) -> None:
    item = api.get("/contacts/v3", params={"limit": 1}).json()["_items"][0]
    assert set(item) == {"contactId", "status", "created", "updated", "identifiers"}
    assert item["contactId"] == 100  # no filter: ascending by id


def test_created_filter_and_list_filter(api: Api) -> None:
    created, _ = walk(api, {"~created": "gte::2024-02-11T00:00:00Z"})
    assert created == [110, 111]
    listed, _ = walk(api, {"~listId": 9})
    assert listed == [100]


def test_a_contact_changed_while_paging_is_seen_again_after_the_marker(
    api: Api, cluster: EmulatorCluster
) -> None:
    first = api.get("/contacts/v3", params={"~modified": "gte::2024-05-01T00:00:00Z",
                                            "limit": 5}).json()
    requests.post(f"{api.base}/v2/contacts", json={"email": "person1@example.com"},
                  auth=(USER, PASSWORD), verify=cluster.ca_bundle, timeout=10)
    ids = [item["contactId"] for item in first["_items"]]
    response = api.get(first["_links"]["next"]["link"], params={})
    while True:
        body = response.json()
        ids.extend(item["contactId"] for item in body["_items"])
        if "next" not in body["_links"]:
            break
        response = api.get(body["_links"]["next"]["link"])
    assert ids.count(101) == 2
    assert ids[-1] == 101


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"~created": "gte::2024-01-01T00:00:00Z", "~modified": "gte::2024-01-01T00:00:00Z"},
         "The filters '~created' and '~modified' cannot be combined"),
        ({"~listId": 9, "~segmentId": 3},
         "The filters '~listId' and '~segmentId' cannot be combined"),
        ({"~modified": "2022-08-01T00:00:00Z"},
         "The filter value '2022-08-01T00:00:00Z' is invalid"),
        ({"~modified": "gte::yesterday"}, "The filter value 'gte::yesterday' is invalid"),
        ({"~modified": "lt::2022-08-01T00:00:00Z"},
         "The filter value 'lt::2022-08-01T00:00:00Z' is invalid"),
    ],
)
def test_invalid_filters_are_v3_errors(
    api: Api, params: dict[str, Any], description: str
) -> None:
    response = api.get("/contacts/v3", params=params)
    assert response.status_code == 400
    assert response.json() == {"errorCode": "contacts:invalidFilter", "description": description}


@pytest.mark.parametrize("limit", ["0", "5001", "ten"])
def test_limit_must_be_between_1_and_5000(api: Api, limit: str) -> None:
    response = api.get("/contacts/v3", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "contacts:invalidFilter"


def test_a_foreign_or_garbled_marker_is_rejected(api: Api) -> None:
    by_id = api.get("/contacts/v3", params={"limit": 2}).json()
    foreign = by_id["_links"]["next"]["marker"]
    for marker in (foreign, "not-a-marker"):
        response = api.get("/contacts/v3", params={
            "~modified": "gte::2024-01-01T00:00:00Z", "marker": marker})
        assert response.status_code == 400
        assert response.json()["errorCode"] == "contacts:invalidMarker"


def test_single_lookup_by_email_and_by_id(api: Api) -> None:
    by_email = api.get("/contacts/v3/email/PERSON3%40example.com",
                       params={"data-fields": "[[ALL]]"})
    assert by_email.status_code == 200
    assert by_email.json()["contactId"] == 103
    assert by_email.json()["dataFields"]["FIRSTNAME"] == "P3"
    assert api.get("/contacts/v3/contactId/103").json()["identifiers"] == {
        "email": "person3@example.com"}


def test_single_lookup_errors(api: Api) -> None:
    missing = api.get("/contacts/v3/email/unknown@emailsim.io")
    assert (missing.status_code, missing.json()) == (404, {
        "errorCode": "contacts:contactNotFound",
        "description": "The following contacts could not be found",
        "details": [{"item": "unknown@emailsim.io",
                     "description": "Not found using the identifier 'email'"}],
    })
    invalid = api.get("/contacts/v3/email/123646")
    assert (invalid.status_code, invalid.json()) == (400, {
        "errorCode": "contacts:invalidId",
        "description": "The id value '123646' is invalid for the identifier 'email'"})
