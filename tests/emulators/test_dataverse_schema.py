"""Dataverse emulator: the schema file, seeding, state queries and export."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from emulators.dataverse.schema import SCHEMA_PATH, load_schema, parse_schema
from tests.emulators.conftest import Admin
from tests.emulators.dataverse_client import DataverseClient

# Architecture section 3: the connector's tables and the columns it relies on.
CONNECTOR_COLUMNS = {
    "contact": {"ec_optintype", "emailaddress1", "donotbulkemail"},
    "lead": {"ec_optintype", "emailaddress1", "donotbulkemail"},
    "account": {"ec_optintype", "emailaddress1", "donotbulkemail"},
    "ec_emailaccount": {
        "ec_name", "ec_description", "ec_accountid", "ec_isdefault", "ec_apiusername",
        "ec_secretname", "ec_updatedonotbulkemail", "ec_preferredlocale",
        "ec_resubscribereturnurl",
    },
    "ec_syncschedule": {
        "ec_emailaccountid", "ec_synctype", "ec_intervalminutes", "ec_windowstart",
        "ec_windowend", "ec_lastsync", "ec_nextsync", "ec_status", "ec_syncnow", "ec_lastresult",
    },
    "ec_program": {"ec_emailaccountid", "ec_dotdigitalprogramid", "ec_name", "ec_status",
                   "ec_enabled"},
    "ec_emailsuppression": {
        "ec_emailaddress", "ec_emailaccountid", "ec_reason", "ec_suppressedon", "ec_origin",
        "ec_pushedon", "ec_requestresubscribe", "ec_resubscriptionstatus",
        "ec_resubscriptionrequestedon", "ec_resubscribedon",
    },
    "annotation": {"subject", "notetext", "objectid"},
}


@pytest.fixture
def dv(cluster: EmulatorCluster) -> DataverseClient:
    return DataverseClient(cluster)


def test_schema_file_defines_every_connector_table_and_column() -> None:
    schema = load_schema()
    for logical_name, columns in CONNECTOR_COLUMNS.items():
        assert columns <= set(schema.tables[logical_name].columns), logical_name
    notes = schema.tables["annotation"].navigation
    assert {name: target.table for name, (_, target) in notes.items()} == {
        "objectid_contact": "contact", "objectid_lead": "lead", "objectid_account": "account",
        "objectid_ec_emailsuppression": "ec_emailsuppression",
    }
    assert schema.tables["ec_syncschedule"].navigation["ec_emailaccountid"][1].table == (
        "ec_emailaccount"
    )


def test_choices_have_the_documented_values() -> None:
    choices = load_schema().choices
    assert [(o.label, o.value) for o in choices["ec_optintype"]] == [
        ("Unknown", 100000000), ("Single", 100000001), ("Double", 100000002),
        ("VerifiedDouble", 100000003),
    ]
    assert [o.label for o in choices["ec_synctype"]] == [
        "ContactOptIn", "SuppressionLists", "Engagement",
    ]
    assert [o.label for o in choices["ec_syncstatus"]] == [
        "None", "Added to Queue", "Synchronising In Progress",
    ]
    assert [o.label for o in choices["ec_suppressionreason"]][-1] == "AddedInCrm"
    assert [o.label for o in choices["ec_suppressionorigin"]] == ["dotdigital", "crm"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda raw: raw["tables"][0]["columns"].append({"name": "x", "type": "text"}),
         "unknown column type"),
        (lambda raw: raw["tables"][0]["columns"].append({"name": "x", "type": "choice",
                                                         "choice": "nope"}),
         "unknown choice"),
        (lambda raw: raw["tables"].append(copy.deepcopy(raw["tables"][0])), "defined twice"),
        (lambda raw: raw.update(format="other"), "format"),
    ],
)
def test_a_broken_schema_file_is_refused(change: Any, fragment: str) -> None:
    raw = json.loads(SCHEMA_PATH.read_text())
    change(raw)
    with pytest.raises(ValueError, match=fragment):
        parse_schema(raw)


def test_seed_loads_rows_in_read_shape_with_lookups(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    account, contact = str(uuid.uuid4()), str(uuid.uuid4())
    loaded = dataverse_admin.seed({"tables": {
        "annotations": [{"subject": "Hello", "_objectid_value": contact}],
        "accounts": [{"accountid": account, "name": "Contoso"}],
        "contacts": [{
            "contactid": contact, "firstname": "Ada", "lastname": "Lovelace",
            "emailaddress1": "ada@example.com", "ec_optintype": 100000002,
            "parentcustomerid_account@odata.bind": f"/accounts({account})",
            "createdon": "2024-01-31T10:00:00Z", "modifiedon": "2024-02-01T10:00:00Z",
        }],
    }})
    assert loaded == {"seeded": {"annotations": 1, "accounts": 1, "contacts": 1}}
    row = dv.get(f"contacts({contact})").json()
    assert row["fullname"] == "Ada Lovelace" and row["_parentcustomerid_value"] == account
    assert row["modifiedon"] == "2024-02-01T10:00:00Z"
    notes = dv.get(f"annotations?$filter=_objectid_value eq {contact}").json()["value"]
    assert notes[0]["objecttypecode"] == "contact"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"tables": {"Contacts": [{"lastname": "x"}]}}, "unknown entity set 'Contacts'"),
        ({"tables": {"contacts": [{"lastname": "ok"}, {"emailaddress1": "x" * 101}]}},
         "contacts[1]: A validation error occurred. The length of the 'emailaddress1'"),
        ({"tables": {"contacts": [{"lastname": "ok"}, {"nickname": "x"}]}},
         "contacts[1]: Error identified in Payload"),
        ({"tables": {"contacts": [
            {"lastname": "ok", "_parentcustomerid_value": "00000000-0000-0000-0000-000000000009"},
        ]}}, "contacts[0]._parentcustomerid_value: no account or contact row"),
        ({"tables": {"ec_syncschedules": [{"ec_synctype": 7}]}}, "ec_syncschedules[0]"),
        ({"rows": []}, "tables"),
    ],
)
def test_bad_seed_is_refused_naming_row_and_column_and_loads_nothing(
    dataverse_admin: Admin, payload: dict[str, Any], fragment: str
) -> None:
    dataverse_admin.seed({"tables": {"contacts": [{"lastname": "Before"}]}})
    with pytest.raises(requests.HTTPError) as raised:
        dataverse_admin.seed(payload)
    assert raised.value.response.status_code == 400
    assert fragment in raised.value.response.json()["error"]
    rows = dataverse_admin.state(table="contacts")["tables"]["contacts"]
    assert [row["lastname"] for row in rows] == ["Before"]


def test_state_filters_by_column_case_insensitively(dataverse_admin: Admin) -> None:
    dataverse_admin.seed({"tables": {"contacts": [
        {"lastname": "A", "emailaddress1": "Same@Example.com"},
        {"lastname": "B", "emailaddress1": "same@example.com", "donotbulkemail": True},
        {"lastname": "C", "emailaddress1": "other@example.com"},
    ]}})
    found = dataverse_admin.state(table="contacts", emailaddress1="SAME@example.com")
    assert sorted(row["lastname"] for row in found["tables"]["contacts"]) == ["A", "B"]
    both = dataverse_admin.state(
        table="contacts", emailaddress1="same@example.com", donotbulkemail="true"
    )
    assert [row["lastname"] for row in both["tables"]["contacts"]] == ["B"]
    with pytest.raises(requests.HTTPError):
        dataverse_admin.state(table="contacts", nickname="x")


def test_export_is_valid_seed_input(cluster: EmulatorCluster, dv: DataverseClient) -> None:
    account = dv.create("accounts", {"name": "Contoso"})
    contact = dv.create("contacts", {
        "lastname": "Smith", "parentcustomerid_account@odata.bind": f"/accounts({account})",
    })
    dv.create("annotations", {
        "subject": "n", "objectid_contact@odata.bind": f"/contacts({contact})",
    })
    before = dv.get(f"contacts({contact})").json()
    exported = cluster.export_state()["dataverse"]
    cluster.reset()
    cluster.seed({"dataverse": exported})
    dv = DataverseClient(cluster)
    assert dv.get(f"contacts({contact})").json() == before
    assert cluster.export_state()["dataverse"] == exported


def test_reset_forgets_rows_and_settings(
    cluster: EmulatorCluster, dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dv.create("contacts", {"lastname": "Temporary"})
    dataverse_admin.configure(lead_table_enabled=False, cost_model={"request_ms": 5})
    dataverse_admin.call("POST", "reset")
    config = dataverse_admin.call("GET", "config")
    assert config["lead_table_enabled"] is True and config["cost_model"]["request_ms"] == 0
    assert dataverse_admin.state() == {"tables": {}}
