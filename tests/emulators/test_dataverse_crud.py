"""Dataverse emulator: create, read, update/upsert, delete, lookups, validation and paging."""

from __future__ import annotations

import uuid

import pytest

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin
from tests.emulators.dataverse_client import DataverseClient


@pytest.fixture
def dv(cluster: EmulatorCluster) -> DataverseClient:
    return DataverseClient(cluster)


def _error(response: object) -> dict[str, str]:
    return response.json()["error"]  # type: ignore[attr-defined, no-any-return]


def test_create_answers_204_with_the_entity_id(dv: DataverseClient) -> None:
    response = dv.post("contacts", {"firstname": "Ada", "lastname": "Lovelace"})
    assert response.status_code == 204
    assert response.content == b""
    entity_id = response.headers["OData-EntityId"]
    assert entity_id.startswith(f"{dv.api_url}contacts(")
    row = dv.get(entity_id).json()
    assert row["fullname"] == "Ada Lovelace"
    assert row["@odata.etag"] == f'W/"{row["versionnumber"]}"'
    assert row["statecode"] == 0 and row["statuscode"] == 1
    assert row["createdon"] == row["modifiedon"] and row["createdon"].endswith("Z")
    assert row["donotbulkemail"] is False


def test_create_with_return_representation_answers_201_with_selected_columns(
    dv: DataverseClient,
) -> None:
    response = dv.post(
        "contacts?$select=fullname,emailaddress1",
        {"firstname": "Grace", "lastname": "Hopper", "emailaddress1": "grace@example.com"},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    assert "OData-EntityId" not in response.headers
    body = response.json()
    context = f"{dv.api_url}$metadata#contacts(fullname,emailaddress1)/$entity"
    assert body["@odata.context"] == context
    assert set(body) == {"@odata.context", "@odata.etag", "fullname", "emailaddress1", "contactid"}


def test_client_chosen_key_is_kept_and_a_duplicate_key_is_refused(dv: DataverseClient) -> None:
    key = str(uuid.uuid4())
    assert dv.create("accounts", {"accountid": key, "name": "Contoso"}) == key
    again = dv.post("accounts", {"accountid": key, "name": "Other"})
    assert again.status_code == 412
    assert _error(again) == {
        "code": "0x80040237", "message": "A record with matching key values already exists.",
    }
    assert dv.get(f"accounts({key})?$select=name").json()["name"] == "Contoso"


def test_missing_row_is_a_404_with_the_documented_message(dv: DataverseClient) -> None:
    key = str(uuid.uuid4())
    response = dv.get(f"contacts({key})")
    assert response.status_code == 404
    assert _error(response) == {
        "code": "0x80040217", "message": f"contact With Id = {key} Does Not Exist",
    }


def test_entity_set_and_property_names_are_case_sensitive(dv: DataverseClient) -> None:
    wrong_set = dv.get("Contacts")
    assert wrong_set.status_code == 404
    assert _error(wrong_set) == {
        "code": "0x8006088a", "message": "Resource not found for the segment 'Contacts'.",
    }
    wrong_property = dv.post("contacts", {"LastName": "Lovelace"})
    assert wrong_property.status_code == 400
    assert _error(wrong_property)["code"] == "0x80048d19"
    assert "The property 'LastName' does not exist on type 'Microsoft.Dynamics.CRM.contact'" in (
        _error(wrong_property)["message"]
    )
    wrong_select = dv.get("contacts?$select=FullName")
    assert wrong_select.status_code == 400
    assert dv.get("contacts").json()["value"] == []


def test_patch_without_if_match_creates_the_row(dv: DataverseClient) -> None:
    key = str(uuid.uuid4())
    response = dv.patch(f"contacts({key})", {"lastname": "Ghost"})
    assert response.status_code == 204
    assert response.headers["OData-EntityId"] == f"{dv.api_url}contacts({key})"
    assert dv.get(f"contacts({key})").status_code == 200


def test_patch_with_if_match_star_never_creates(dv: DataverseClient) -> None:
    key = str(uuid.uuid4())
    response = dv.patch(f"contacts({key})", {"lastname": "Ghost"}, headers={"If-Match": "*"})
    assert response.status_code == 404
    assert _error(response)["code"] == "0x80040217"
    assert dv.get(f"contacts({key})").status_code == 404


def test_patch_updates_and_moves_version_and_modifiedon(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    key = dv.create("contacts", {"firstname": "Ada", "lastname": "Byron"})
    before = dv.get(f"contacts({key})").json()
    dataverse_admin.advance_clock(60)
    response = dv.patch(
        f"contacts({key})?$select=fullname", {"lastname": "Lovelace"},
        headers={"If-Match": "*", "Prefer": "return=representation"},
    )
    assert response.status_code == 200
    assert response.json()["fullname"] == "Ada Lovelace"
    after = dv.get(f"contacts({key})").json()
    assert after["versionnumber"] > before["versionnumber"]
    assert after["modifiedon"] > before["modifiedon"]
    assert after["createdon"] == before["createdon"]


def test_stale_etag_is_refused_with_412_and_changes_nothing(dv: DataverseClient) -> None:
    key = dv.create("contacts", {"lastname": "Old"})
    stale = dv.get(f"contacts({key})").json()["@odata.etag"]
    assert dv.patch(f"contacts({key})", {"lastname": "New"}, headers={"If-Match": stale}).ok
    response = dv.patch(f"contacts({key})", {"lastname": "Newer"}, headers={"If-Match": stale})
    assert response.status_code == 412
    assert _error(response) == {
        "code": "0x80060882",
        "message": "The version of the existing record doesn't match the RowVersion property "
        "provided.",
    }
    assert dv.get(f"contacts({key})").json()["lastname"] == "New"
    assert dv.delete(f"contacts({key})", headers={"If-Match": stale}).status_code == 412


def test_if_none_match_star_does_not_update_an_existing_row(dv: DataverseClient) -> None:
    key = dv.create("contacts", {"lastname": "Kept"})
    response = dv.patch(f"contacts({key})", {"lastname": "Lost"}, headers={"If-None-Match": "*"})
    assert response.status_code == 412
    assert dv.get(f"contacts({key})").json()["lastname"] == "Kept"


def test_conditional_get_answers_304_while_unchanged(dv: DataverseClient) -> None:
    key = dv.create("contacts", {"lastname": "Same"})
    tag = dv.get(f"contacts({key})").json()["@odata.etag"]
    assert dv.get(f"contacts({key})", headers={"If-None-Match": tag}).status_code == 304
    dv.patch(f"contacts({key})", {"lastname": "Changed"})
    assert dv.get(f"contacts({key})", headers={"If-None-Match": tag}).status_code == 200


def test_delete_removes_and_a_second_delete_is_404(dv: DataverseClient) -> None:
    key = dv.create("contacts", {"lastname": "Gone"})
    assert dv.delete(f"contacts({key})").status_code == 204
    assert dv.delete(f"contacts({key})").status_code == 404


def test_lookups_bind_and_read_back_as_value_properties(dv: DataverseClient) -> None:
    account = dv.create("accounts", {"name": "Contoso"})
    contact = dv.create("contacts", {
        "lastname": "Smith", "parentcustomerid_account@odata.bind": f"/accounts({account})",
    })
    row = dv.get(f"contacts({contact})?$select=_parentcustomerid_value,parentcustomeridtype").json()
    assert row["_parentcustomerid_value"] == account
    assert row["parentcustomeridtype"] == "account"
    filtered = dv.get(f"contacts?$select=lastname&$filter=_parentcustomerid_value eq {account}")
    assert [r["contactid"] for r in filtered.json()["value"]] == [contact]
    assert dv.patch(f"contacts({contact})", {"parentcustomerid_account@odata.bind": None}).ok
    assert dv.get(f"contacts({contact})").json()["_parentcustomerid_value"] is None


def test_notes_bind_through_the_typed_navigation_property(dv: DataverseClient) -> None:
    contact = dv.create("contacts", {"lastname": "Noted"})
    note = dv.create("annotations", {
        "subject": "Resubscribed", "notetext": "Resubscribed on 2024-05-01",
        "objectid_contact@odata.bind": f"/contacts({contact})",
    })
    row = dv.get(f"annotations({note})").json()
    assert row["_objectid_value"] == contact and row["objecttypecode"] == "contact"
    polymorphic = dv.post(
        "annotations", {"subject": "x", "objectid@odata.bind": f"/contacts({contact})"}
    )
    assert polymorphic.status_code == 400
    assert _error(polymorphic) == {
        "code": "0x80048d19",
        "message": "An undeclared property 'objectid' which only has property annotations in the "
        "payload but no property value was found in the payload. In OData, only declared "
        "navigation properties and declared named streams can be represented as properties "
        "without values.",
    }


@pytest.mark.parametrize(
    "bind",
    [
        {"parentcustomerid_account@odata.bind": "/accounts(00000000-0000-0000-0000-000000000001)"},
        {"parentcustomerid_account@odata.bind": "/contacts(00000000-0000-0000-0000-000000000001)"},
        {"ParentCustomerId_Account@odata.bind": "/accounts(00000000-0000-0000-0000-000000000001)"},
        {"parentcustomerid_account@odata.bind": "accounts-1"},
        {"parentcustomerid": "00000000-0000-0000-0000-000000000001"},
        {"_parentcustomerid_value": "00000000-0000-0000-0000-000000000001"},
    ],
)
def test_bad_binds_are_refused_and_create_nothing(
    dv: DataverseClient, bind: dict[str, str]
) -> None:
    response = dv.post("contacts", {"lastname": "Orphan", **bind})
    assert response.status_code in (400, 404)
    assert set(_error(response)) == {"code", "message"}
    assert dv.get("contacts").json()["value"] == []


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"firstname": "x" * 51}, "0x80044331",
         "The length of the 'firstname' attribute of the 'contact' entity exceeded the maximum "
         "allowed length of '50'."),
        ({"ec_optintype": 5}, "0x80044331", "outside the valid range"),
        ({"donotbulkemail": "true"}, "0x80048d19", "'Edm.Boolean'"),
        ({"donotbulkemail": 1}, "0x80048d19", "'Edm.Boolean'"),
        ({"lastname": 7}, "0x80048d19", "'Edm.String'"),
        ({"statuscode": 2}, "0x8004431a", "is not a valid status code for state code"),
        ({"createdon": "yesterday", "ec_optintype": "Single"}, "0x80048d19", "'Edm.Int32'"),
    ],
)
def test_values_are_checked_against_the_schema(
    dv: DataverseClient, body: dict[str, object], code: str, fragment: str
) -> None:
    key = dv.create("contacts", {"lastname": "Valid", "ec_optintype": 100000001})
    response = dv.patch(f"contacts({key})", body)
    assert response.status_code == 400
    assert _error(response)["code"] == code
    assert fragment in _error(response)["message"]
    row = dv.get(f"contacts({key})").json()
    assert (row["lastname"], row["ec_optintype"], row["statuscode"]) == ("Valid", 100000001, 1)


def test_state_and_status_move_together(dv: DataverseClient) -> None:
    key = dv.create("contacts", {"lastname": "Leaving"})
    assert dv.patch(f"contacts({key})", {"statecode": 1, "statuscode": 2}).status_code == 204
    row = dv.get(f"contacts({key})?$select=statecode,statuscode").json()
    assert (row["statecode"], row["statuscode"]) == (1, 2)
    assert dv.patch(f"contacts({key})", {"statecode": 0}).status_code == 204
    row = dv.get(f"contacts({key})?$select=statecode,statuscode").json()
    assert (row["statecode"], row["statuscode"]) == (0, 1)


def test_single_property_put_and_delete(dv: DataverseClient) -> None:
    key = dv.create("contacts", {"lastname": "Prop", "emailaddress1": "a@example.com"})
    assert dv.request("PUT", f"contacts({key})/emailaddress1", json={"value": "b@example.com"}).ok
    value = dv.get(f"contacts({key})/emailaddress1").json()["value"]
    assert value == "b@example.com"
    assert dv.delete(f"contacts({key})/emailaddress1").status_code == 204
    assert dv.get(f"contacts({key})").json()["emailaddress1"] is None


def test_paging_follows_next_link_with_preference_applied(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.seed({"tables": {"contacts": [{"lastname": f"L{i:02}"} for i in range(25)]}})
    prefer = {"Prefer": 'odata.include-annotations="*",odata.maxpagesize=10'}
    response = dv.get("contacts?$select=lastname&$count=true", headers=prefer)
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=10"
    seen: list[str] = []
    pages = 0
    body = response.json()
    assert body["@odata.count"] == 25
    while True:
        pages += 1
        seen += [row["lastname"] for row in body["value"]]
        link = body.get("@odata.nextLink")
        if link is None:
            break
        assert link.startswith(f"{dv.api_url}contacts?") and "$skiptoken=" in link
        body = dv.get(link, headers=prefer).json()
    assert pages == 3
    assert sorted(seen) == [f"L{i:02}" for i in range(25)]


def test_count_segment_is_plain_text_capped_at_5000(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.seed({"tables": {"accounts": [{"name": f"A{i}"} for i in range(5003)]}})
    response = dv.get("accounts/$count")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "5000"
    assert dv.get("accounts/$count?$filter=name eq 'A7'").text == "1"


def test_email_lookup_is_case_insensitive_among_many_rows(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    rows = [{"lastname": f"N{i}", "emailaddress1": f"user{i}@example.com"} for i in range(3000)]
    rows.append({"lastname": "Plus", "emailaddress1": "O'Brien+tag@Example.com"})
    dataverse_admin.seed({"tables": {"contacts": rows}})
    response = dv.get(
        "contacts",
        params={"$select": "lastname", "$filter": "emailaddress1 eq 'o''brien+TAG@example.com'"},
    )
    assert [row["lastname"] for row in response.json()["value"]] == ["Plus"]


def test_get_url_longer_than_32768_characters_is_refused(dv: DataverseClient) -> None:
    prefix = f"{dv.api_url}contacts?$filter=lastname%20eq%20'"
    padding = "a" * (32_768 - len(prefix) - 1)
    fits = dv.get(f"{prefix}{padding}'")
    assert len(fits.url) == 32_768
    assert fits.status_code == 200
    response = dv.get(f"{prefix}{padding}a'")
    assert response.status_code == 414
    assert set(_error(response)) == {"code", "message"}


def test_leads_disappear_without_the_sales_app(dv: DataverseClient, dataverse_admin: Admin) -> None:
    assert dv.get("leads").status_code == 200
    dataverse_admin.configure(lead_table_enabled=False)
    response = dv.get("leads")
    assert response.status_code == 404
    assert _error(response)["message"] == "Resource not found for the segment 'leads'."
    contact = dv.create("contacts", {"lastname": "Note target"})
    assert dv.post("annotations", {
        "subject": "x", "objectid_lead@odata.bind": f"/leads({contact})",
    }).status_code == 400


def test_wrong_verb_on_an_entity_is_404_no_http_resource(dv: DataverseClient) -> None:
    response = dv.request("PUT", "contacts")
    assert response.status_code == 404
    assert _error(response)["message"].startswith("No HTTP resource was found")
