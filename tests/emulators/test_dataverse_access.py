"""Dataverse emulator: per-user access. App tokens see everything; a delegated token sees what
its system user's depth allows (organization, own rows, none), in queries, ``$count``, paging,
``$batch`` parts and by id, and writes under the same depth."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin
from tests.emulators.dataverse_client import (
    DEFAULT_USER,
    OTHER_USER,
    DataverseClient,
    mint_token,
    operation,
    parse_batch_response,
)

ADA_ID = "5e1f0c4a-0000-4000-8000-00000000a0a1"  # Ada's systemuserid
GRACE_ID = "5e1f0c4a-0000-4000-8000-00000000a0a2"  # Grace's systemuserid
ROOT = "/api/data/v9.2/"
PRIVILEGE_CODE = "0x80040220"


def _contact(number: int, owner: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "contactid": f"00000000-0000-4000-8000-{number:012d}",
        "lastname": f"Person {number:02d}",
        "emailaddress1": f"person{number}@contoso.com",
    }
    if owner is not None:
        row["_ownerid_value"] = owner
    return row


# Ada owns 1-3, Grace 4-5, nobody 6.
CONTACTS = [
    *(_contact(n, ADA_ID) for n in (1, 2, 3)),
    *(_contact(n, GRACE_ID) for n in (4, 5)),
    _contact(6, None),
]


def _users(ada: dict[str, str], grace: dict[str, str] | None = None) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = [
        {"oid": DEFAULT_USER, "upn": "ada.lovelace@contoso.com", "systemuserid": ADA_ID,
         "read": ada},
    ]
    if grace is not None:
        users.append({"oid": OTHER_USER, "systemuserid": GRACE_ID, "read": grace})
    return users


@pytest.fixture
def ada(cluster: EmulatorCluster) -> DataverseClient:
    return DataverseClient(cluster, user=DEFAULT_USER)


@pytest.fixture
def grace(cluster: EmulatorCluster) -> DataverseClient:
    return DataverseClient(cluster, user=OTHER_USER)


@pytest.fixture
def app_token(cluster: EmulatorCluster) -> str:
    return mint_token(cluster, client_id=cluster.entra.describe()["default_client"]["client_id"])


def _seed(admin: Admin, ada: dict[str, str], grace: dict[str, str] | None = None) -> None:
    admin.seed({"tables": {"contacts": CONTACTS}, "users": _users(ada, grace)})


def _names(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(row["lastname"] for row in response.json()["value"])


def _assert_missing_privilege(response: requests.Response, privilege: str, user_id: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == PRIVILEGE_CODE
    assert error["message"].startswith(f"Principal user (Id={user_id}, type=8, roleCount=")
    assert f"is missing {privilege} privilege (Id=" in error["message"]


def test_organization_depth_sees_every_row(dataverse_admin: Admin, ada: DataverseClient) -> None:
    _seed(dataverse_admin, {"contact": "organization"})
    response = ada.get("contacts?$select=lastname&$count=true")
    assert _names(response) == [f"Person {n:02d}" for n in range(1, 7)]
    assert response.json()["@odata.count"] == 6
    other = ada.get(f"contacts({CONTACTS[3]['contactid']})?$select=lastname,_ownerid_value")
    assert other.status_code == 200
    assert other.json()["_ownerid_value"] == GRACE_ID


def test_user_depth_filters_queries_counts_and_pages(
    dataverse_admin: Admin, ada: DataverseClient
) -> None:
    _seed(dataverse_admin, {"contact": "user"})
    everyone = "contains(emailaddress1,'@contoso.com')"
    response = ada.get(f"contacts?$select=lastname,_ownerid_value&$filter={everyone}&$count=true")
    assert _names(response) == ["Person 01", "Person 02", "Person 03"]
    assert response.json()["@odata.count"] == 3
    assert {row["_ownerid_value"] for row in response.json()["value"]} == {ADA_ID}
    # An indexed equality on someone else's row finds nothing.
    assert _names(ada.get("contacts?$filter=emailaddress1 eq 'person4@contoso.com'")) == []
    assert ada.get("contacts/$count").text == "3"
    assert ada.get(f"contacts/$count?$filter={everyone}").text == "3"
    # Paging walks only the visible rows.
    seen: list[str] = []
    url = "contacts?$select=lastname&$orderby=lastname desc"
    while url:
        page = ada.get(url, headers={"Prefer": "odata.maxpagesize=2"})
        assert page.status_code == 200, page.text
        seen += [row["lastname"] for row in page.json()["value"]]
        url = page.json().get("@odata.nextLink", "")
    assert seen == ["Person 03", "Person 02", "Person 01"]


def test_user_depth_in_query_and_gets_by_id_in_a_batch(
    dataverse_admin: Admin, ada: DataverseClient
) -> None:
    _seed(dataverse_admin, {"contact": "user"})
    emails = json.dumps([f"person{n}@contoso.com" for n in (1, 4, 6)])
    in_filter = (
        "Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues="
        f"{emails.replace(' ', '')})"
    )
    ids = [CONTACTS[0]["contactid"], CONTACTS[3]["contactid"], CONTACTS[5]["contactid"],
           "00000000-0000-4000-8000-999999999999"]
    response = ada.batch(
        [operation("GET", f"{ROOT}contacts?$select=lastname&$filter={in_filter}")]
        + [operation("GET", f"{ROOT}contacts({key})?$select=emailaddress1") for key in ids],
        headers={"Prefer": "odata.continue-on-error"},
    )
    assert response.status_code == 200, response.text
    parts = parse_batch_response(response)
    assert [part["status"] for part in parts] == [200, 200, 403, 403, 404]
    assert [row["lastname"] for row in json.loads(parts[0]["body"])["value"]] == ["Person 01"]
    assert json.loads(parts[1]["body"])["emailaddress1"] == "person1@contoso.com"
    denied = json.loads(parts[2]["body"])["error"]
    assert denied["code"] == PRIVILEGE_CODE
    assert denied["message"].startswith(
        f"Principal with id {ADA_ID} does not have ReadAccess right(s) for record with id "
        f"{ids[1]} of entity contact."
    )
    assert json.loads(parts[4]["body"])["error"]["code"] == "0x80040217"


def test_user_depth_refuses_someone_elses_row_by_id(
    dataverse_admin: Admin, ada: DataverseClient
) -> None:
    _seed(dataverse_admin, {"contact": "user"})
    own = ada.get(f"contacts({CONTACTS[0]['contactid']})")
    assert own.status_code == 200
    assert own.json()["_ownerid_value"] == ADA_ID
    for path in (f"contacts({CONTACTS[3]['contactid']})",
                 f"contacts({CONTACTS[3]['contactid']})/emailaddress1"):
        refused = ada.get(path)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == PRIVILEGE_CODE
        assert "ReadAccess" in refused.json()["error"]["message"]


def test_no_depth_and_unseeded_users_are_refused(
    dataverse_admin: Admin, ada: DataverseClient, grace: DataverseClient
) -> None:
    _seed(dataverse_admin, {"contact": "organization", "lead": "none"})
    _assert_missing_privilege(ada.get("leads"), "prvReadLead", ADA_ID)
    _assert_missing_privilege(ada.get("accounts"), "prvReadAccount", ADA_ID)
    # Grace has no system user: no role at all.
    grace_id = grace.get("WhoAmI").json()["UserId"]
    refused = grace.get(f"contacts({CONTACTS[0]['contactid']})")
    _assert_missing_privilege(refused, "prvReadContact", grace_id)
    message = refused.json()["error"]["message"]
    assert "roleCount=0, privilegeCount=0" in message
    assert "on OTC=2 for entity 'contact' (LocalizedName='Contact')" in message
    _assert_missing_privilege(grace.get("contacts/$count"), "prvReadContact", grace_id)
    _assert_missing_privilege(
        grace.post("contacts", {"lastname": "Nope"}), "prvCreateContact", grace_id
    )


def test_app_token_keeps_full_access(
    dataverse_admin: Admin, ada: DataverseClient, app_token: str
) -> None:
    _seed(dataverse_admin, {"contact": "none"})
    response = ada.get("contacts?$select=lastname", token=app_token)
    assert _names(response) == [f"Person {n:02d}" for n in range(1, 7)]
    assert ada.get(f"contacts({CONTACTS[3]['contactid']})", token=app_token).status_code == 200
    patched = ada.patch(f"contacts({CONTACTS[3]['contactid']})", {"firstname": "App"},
                        token=app_token)
    assert patched.status_code == 204
    created = ada.post("contacts", {"lastname": "By the app"}, token=app_token)
    assert created.status_code == 204
    app_user = ada.get("WhoAmI", token=app_token).json()["UserId"]
    row = dataverse_admin.state(table="contacts", lastname="By the app")["tables"]["contacts"][0]
    assert row["_ownerid_value"] == app_user


def test_writes_follow_the_depth(
    dataverse_admin: Admin, ada: DataverseClient, grace: DataverseClient
) -> None:
    _seed(dataverse_admin, {"contact": "user"}, {"contact": "organization"})
    created = ada.post(
        "contacts", {"lastname": "Mine"}, headers={"Prefer": "return=representation"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["_ownerid_value"] == ADA_ID
    mine = created.json()["contactid"]
    assert ada.patch(f"contacts({mine})", {"firstname": "Ada"}).status_code == 204
    others = CONTACTS[3]["contactid"]
    for response in (
        ada.patch(f"contacts({others})", {"firstname": "Sneaky"}),
        ada.request("PUT", f"contacts({others})/firstname", json={"value": "Sneaky"}),
        ada.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple", {"Targets": [
            {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": mine,
             "firstname": "Fine"},
            {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": others,
             "firstname": "Sneaky"},
        ]}),
    ):
        assert response.status_code == 403, response.text
        assert "WriteAccess" in response.json()["error"]["message"]
    deleted = ada.delete(f"contacts({others})")
    assert deleted.status_code == 403
    assert "DeleteAccess" in deleted.json()["error"]["message"]
    row = dataverse_admin.state(table="contacts", contactid=others)["tables"]["contacts"][0]
    assert row["firstname"] is None
    assert dataverse_admin.state(table="contacts", contactid=mine)["tables"]["contacts"][0][
        "firstname"] == "Ada"
    # Organization depth writes any row; the owner stays.
    assert grace.patch(f"contacts({mine})", {"firstname": "Grace"}).status_code == 204
    assert grace.get(f"contacts({mine})").json()["_ownerid_value"] == ADA_ID
    # ownerid is not writable through the API.
    refused = ada.post("contacts", {"lastname": "x", "_ownerid_value": GRACE_ID})
    assert refused.status_code == 400


def test_state_shows_users_and_reset_clears_them(
    cluster: EmulatorCluster, dataverse_admin: Admin, ada: DataverseClient
) -> None:
    _seed(dataverse_admin, {"contact": "user", "lead": "organization"})
    assert ada.get("WhoAmI").json()["UserId"] == ADA_ID
    state = dataverse_admin.state()
    assert state["users"] == [{
        "oid": DEFAULT_USER, "systemuserid": ADA_ID, "upn": "ada.lovelace@contoso.com",
        "read": {"contact": "user", "lead": "organization"},
    }]
    # The state is valid seed input: loading it again changes nothing.
    dataverse_admin.seed(state)
    assert dataverse_admin.state() == state
    cluster.reset()
    assert "users" not in dataverse_admin.state()
    assert ada.get("contacts").status_code == 200  # security is off again


def test_an_empty_users_section_refuses_every_delegated_token(
    dataverse_admin: Admin, ada: DataverseClient, app_token: str
) -> None:
    dataverse_admin.seed({"users": []})
    assert ada.get("contacts").status_code == 403
    assert ada.get("contacts", token=app_token).status_code == 200


@pytest.mark.parametrize(
    ("users", "complaint"),
    [
        ([{"oid": "not-a-guid"}], r"users\[0\]\.oid must be a GUID"),
        ([{"oid": DEFAULT_USER, "read": {"contacts": "user"}}], "unknown table 'contacts'"),
        ([{"oid": DEFAULT_USER, "read": {"contact": "business_unit"}}], "must be one of"),
        ([{"oid": DEFAULT_USER, "read": {"ec_program": "user"}}], "organization-owned"),
        ([{"oid": DEFAULT_USER}, {"oid": DEFAULT_USER}], "seeded twice"),
        ([{"oid": DEFAULT_USER, "roles": []}], "unknown keys"),
    ],
)
def test_bad_user_seeds_are_refused_and_load_nothing(
    cluster: EmulatorCluster, users: list[dict[str, Any]], complaint: str
) -> None:
    response = requests.post(
        f"{cluster.dataverse_server.base_url}/_emulator/seed",
        json={"tables": {"contacts": CONTACTS}, "users": users},
        verify=cluster.ca_bundle, timeout=10,
    )
    assert response.status_code == 400
    assert re.search(complaint, response.text), response.text
    state = requests.get(
        f"{cluster.dataverse_server.base_url}/_emulator/state", verify=cluster.ca_bundle,
        timeout=10,
    ).json()
    assert state == {"tables": {}}
