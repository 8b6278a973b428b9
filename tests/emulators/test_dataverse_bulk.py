"""Dataverse emulator: CreateMultiple, UpdateMultiple, UpsertMultiple and table support."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin
from tests.emulators.dataverse_client import DataverseClient

CONTACT = "Microsoft.Dynamics.CRM.contact"


@pytest.fixture
def dv(cluster: EmulatorCluster) -> DataverseClient:
    return DataverseClient(cluster)


def _contacts(dv: DataverseClient) -> dict[str, dict[str, Any]]:
    rows = dv.get("contacts?$select=lastname,donotbulkemail,emailaddress1").json()["value"]
    return {row["contactid"]: row for row in rows}


def test_create_multiple_answers_200_with_the_new_ids(dv: DataverseClient) -> None:
    response = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": [
        {"@odata.type": CONTACT, "lastname": "A", "emailaddress1": "a@x.com"},
        {"@odata.type": CONTACT, "lastname": "B", "emailaddress1": "b@x.com"},
    ]})
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == (
        f"{dv.api_url}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
    )
    rows = _contacts(dv)
    assert set(body["Ids"]) == set(rows)
    assert sorted(row["lastname"] for row in rows.values()) == ["A", "B"]


def test_update_multiple_answers_204_and_updates_every_target(dv: DataverseClient) -> None:
    keys = [dv.create("contacts", {"lastname": f"U{i}"}) for i in range(3)]
    response = dv.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple", {"Targets": [
        {"@odata.type": CONTACT, "contactid": key, "donotbulkemail": True} for key in keys
    ]})
    assert response.status_code == 204
    assert all(row["donotbulkemail"] for row in _contacts(dv).values())


def test_upsert_multiple_creates_and_updates(dv: DataverseClient) -> None:
    existing = dv.create("contacts", {"lastname": "Old"})
    fresh = str(uuid.uuid4())
    response = dv.post("contacts/Microsoft.Dynamics.CRM.UpsertMultiple", {"Targets": [
        {"@odata.type": CONTACT, "@odata.id": f"contacts({existing})", "lastname": "Updated"},
        {"@odata.type": CONTACT, "contactid": fresh, "lastname": "Created"},
    ]})
    assert response.status_code == 204
    rows = _contacts(dv)
    assert rows[existing]["lastname"] == "Updated" and rows[fresh]["lastname"] == "Created"


def test_one_bad_target_fails_the_whole_request(dv: DataverseClient) -> None:
    keys = [dv.create("contacts", {"lastname": f"K{i}"}) for i in range(3)]
    targets: list[dict[str, Any]] = [
        {"@odata.type": CONTACT, "contactid": key, "lastname": "Changed"} for key in keys
    ]
    targets[2]["ec_optintype"] = 42
    response = dv.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple", {"Targets": targets})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80044331"
    assert sorted(row["lastname"] for row in _contacts(dv).values()) == ["K0", "K1", "K2"]


def test_update_multiple_of_a_missing_row_fails_and_changes_nothing(dv: DataverseClient) -> None:
    key = dv.create("contacts", {"lastname": "Here"})
    missing = str(uuid.uuid4())
    response = dv.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple", {"Targets": [
        {"@odata.type": CONTACT, "contactid": key, "lastname": "Changed"},
        {"@odata.type": CONTACT, "contactid": missing, "lastname": "Ghost"},
    ]})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"contact With Id = {missing} Does Not Exist"
    assert [row["lastname"] for row in _contacts(dv).values()] == ["Here"]


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ({"lastname": "Untyped"}, "A resource without a type name was found"),
        ({"@odata.type": "Microsoft.Dynamics.CRM.lead", "lastname": "Lead"}, "must be of type"),
    ],
)
def test_every_target_needs_this_tables_odata_type(
    dv: DataverseClient, target: dict[str, str], fragment: str
) -> None:
    response = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": [
        {"@odata.type": CONTACT, "lastname": "Typed"}, target,
    ]})
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]
    assert _contacts(dv) == {}


def test_targets_must_be_a_list_of_entities(dv: DataverseClient) -> None:
    response = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": "nope"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80048d19"


def test_table_without_bulk_support_gets_the_real_error_and_the_probe_agrees(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    probe = (
        "sdkmessagefilters?$select=sdkmessagefilterid"
        "&$filter=sdkmessageid/name eq @message and primaryobjecttypecode eq @table"
        "&@message='UpdateMultiple'&@table='contact'"
    )
    assert len(dv.get(probe).json()["value"]) == 1
    dataverse_admin.configure(bulk_unsupported_tables=["contact"])
    assert dv.get(probe).json()["value"] == []
    response = dv.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple", {"Targets": []})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "The 'UpdateMultiple' method does not support entities of type 'contact'. "
        "MessageProcessorCache returned MessageProcessor.Empty."
    )
    assert dv.post("accounts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": [
        {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "Still fine"},
    ]}).status_code == 200


def test_delete_multiple_is_not_there_for_standard_tables(dv: DataverseClient) -> None:
    response = dv.post("contacts/Microsoft.Dynamics.CRM.DeleteMultiple", {"Targets": []})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "DeleteMultiple has not yet been implemented."


def test_unknown_action_and_wrong_verb_are_404(dv: DataverseClient) -> None:
    unknown = dv.post("contacts/Microsoft.Dynamics.CRM.MergeMultiple", {"Targets": []})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "0x8006088a"
    assert dv.get("contacts/Microsoft.Dynamics.CRM.CreateMultiple").status_code == 404


def test_bulk_update_of_1000_rows_keeps_the_email_index_right(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.seed({"tables": {"contacts": [
        {"contactid": str(uuid.UUID(int=i)), "lastname": f"C{i}", "emailaddress1": f"old{i}@x.com"}
        for i in range(1000)
    ]}})
    response = dv.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple", {"Targets": [
        {"@odata.type": CONTACT, "contactid": str(uuid.UUID(int=i)),
         "emailaddress1": f"New{i}@X.com"}
        for i in range(1000)
    ]})
    assert response.status_code == 204
    found = dv.get("contacts?$select=lastname&$filter=emailaddress1 eq 'new999@x.com'").json()
    assert [row["lastname"] for row in found["value"]] == ["C999"]
    stale = dv.get("contacts?$select=lastname&$filter=emailaddress1 eq 'old999@x.com'").json()
    assert stale["value"] == []
