"""The Dataverse emulator's metadata API, as provisioning (and any Web API client) meets it:
status codes, error envelopes, keys, casts, labels and what a created definition does to the
data API."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.emulators.dataverse_client import mint_token
from tests.provisioning.conftest import Environment, label

NS = "Microsoft.Dynamics.CRM."
OPT_IN = "GlobalOptionSetDefinitions(Name='ec_optintype')"


def error_of(response: requests.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def choice_body(name: str = "ec_optintype") -> dict[str, Any]:
    return {"@odata.type": NS + "OptionSetMetadata", "Name": name, "IsGlobal": True,
            "OptionSetType": "Picklist", "DisplayName": label("Opt-in type"),
            "Options": [{"Value": 100000000, "Label": label("Unknown")},
                        {"Value": 100000001, "Label": label("Single")}]}


def table_body(schema_name: str = "ec_widget", **changes: Any) -> dict[str, Any]:
    return {"@odata.type": NS + "EntityMetadata", "SchemaName": schema_name,
            "DisplayName": label("Widget"), "DisplayCollectionName": label("Widgets"),
            "OwnershipType": "OrganizationOwned", "HasNotes": False, "HasActivities": False,
            "IsActivity": False,
            "Attributes": [{"@odata.type": NS + "StringAttributeMetadata",
                            "SchemaName": "ec_name", "IsPrimaryName": True, "MaxLength": 100,
                            "DisplayName": label("Name")}], **changes}


def string_body(schema_name: str, **changes: Any) -> dict[str, Any]:
    return {"@odata.type": NS + "StringAttributeMetadata", "SchemaName": schema_name,
            "DisplayName": label("Code"), "MaxLength": 20, **changes}


def test_a_missing_table_is_404_and_names_are_case_sensitive(environment: Environment) -> None:
    status, code, message = error_of(environment.call(
        "GET", "EntityDefinitions(LogicalName='ec_emailaccount')"))
    assert (status, code) == (404, "0x80040217") and "ec_emailaccount" in message
    assert environment.call("GET", "EntityDefinitions(LogicalName='Contact')").status_code == 404
    assert environment.call("GET", "EntityDefinitions(LogicalName='contact')").status_code == 200


def test_a_table_is_created_with_204_and_its_odata_entity_id(environment: Environment) -> None:
    response = environment.call("POST", "EntityDefinitions", table_body())
    assert response.status_code == 204 and not response.content
    entity_id = response.headers["OData-EntityId"]
    assert entity_id.startswith(environment.api_url + "EntityDefinitions(")
    metadata_id = entity_id.rsplit("(", 1)[1].rstrip(")")
    found = environment.get(f"EntityDefinitions({metadata_id})?$select=LogicalName,"
                            "EntitySetName,PrimaryIdAttribute")
    assert found["@odata.context"].endswith("$metadata#EntityDefinitions/$entity")
    assert (found["LogicalName"], found["EntitySetName"], found["PrimaryIdAttribute"]) == (
        "ec_widget", "ec_widgets", "ec_widgetid")
    assert found["MetadataId"] == metadata_id  # always returned, as the key
    # The new table is a table of the data API at once, with the columns Dataverse adds.
    row = environment.create("ec_widgets", {"ec_name": "first"})
    got = environment.get(f"ec_widgets({row})")
    assert (got["statecode"], got["statuscode"]) == (0, 1) and got["createdon"]


def test_names_that_are_taken_are_refused(environment: Environment) -> None:
    assert environment.call("POST", "EntityDefinitions", table_body()).status_code == 204
    status, code, _ = error_of(environment.call("POST", "EntityDefinitions", table_body()))
    assert (status, code) == (400, "0x80044363")
    status, code, _ = error_of(environment.call(
        "POST", "EntityDefinitions(LogicalName='ec_widget')/Attributes", string_body("ec_Name")))
    assert (status, code) == (400, "0x80047013")
    assert environment.call("POST", "GlobalOptionSetDefinitions", choice_body()).status_code == 204
    status, code, _ = error_of(environment.call("POST", "GlobalOptionSetDefinitions",
                                                choice_body()))
    assert (status, code) == (400, "0x80044363")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"SchemaName": "ec_code", "DisplayName": label("Code")}, 400, "0x80040203"),
    ({"@odata.type": NS + "NoSuchAttributeMetadata", "SchemaName": "ec_code",
      "DisplayName": label("Code")}, 400, "0x80048d19"),
    (string_body("code"), 400, "0x80040203"),  # no customization prefix
    (string_body("ec_code", Colour="red"), 400, "0x80048d19"),
    (string_body("ec_code", MaxLength=5000), 400, "0x80040203"),
    ({"@odata.type": NS + "LookupAttributeMetadata", "SchemaName": "ec_other",
      "DisplayName": label("Other")}, 400, "0x80040203"),
])
def test_bad_column_definitions_are_refused(environment: Environment, body: dict[str, Any],
                                            status: int, code: str) -> None:
    response = environment.call("POST", "EntityDefinitions(LogicalName='contact')/Attributes",
                                body)
    assert error_of(response)[:2] == (status, code)


def test_a_choice_column_binds_a_global_choice_by_its_metadata_id(
    environment: Environment,
) -> None:
    created = environment.call("POST", "GlobalOptionSetDefinitions", choice_body())
    choice_id = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    attributes = "EntityDefinitions(LogicalName='contact')/Attributes"
    body = {"@odata.type": NS + "PicklistAttributeMetadata", "SchemaName": "ec_OptInType",
            "DisplayName": label("Opt-in type")}
    inline = environment.call("POST", attributes, {**body, "OptionSet": {
        "IsGlobal": True, "Name": "ec_optintype"}})
    assert error_of(inline)[:2] == (400, "0x80048403")
    by_name = environment.call("POST", attributes, {
        **body, "GlobalOptionSet@odata.bind": f"/{OPT_IN}"})
    assert by_name.status_code == 500
    bound = environment.call("POST", attributes, {
        **body, "GlobalOptionSet@odata.bind": f"/GlobalOptionSetDefinitions({choice_id})"})
    assert bound.status_code == 204
    found = environment.get(f"{attributes}(LogicalName='ec_optintype')/{NS}"
                            "PicklistAttributeMetadata?$select=LogicalName&$expand="
                            "OptionSet($select=Name,IsGlobal)")
    assert (found["OptionSet"]["Name"], found["OptionSet"]["IsGlobal"]) == ("ec_optintype", True)
    assert environment.create("contacts", {"lastname": "Ada", "ec_optintype": 100000001})
    refused = environment.call("POST", "contacts", {"lastname": "Bo", "ec_optintype": 3})
    assert error_of(refused)[:2] == (400, "0x80044331")


def test_selects_name_properties_of_the_type_addressed(environment: Environment) -> None:
    path = "EntityDefinitions(LogicalName='contact')/Attributes"
    status, code, message = error_of(environment.call("GET", f"{path}?$select=MaxLength"))
    assert (status, code) == (400, "0x0")
    assert message == ("Could not find a property named 'MaxLength' on type "
                       "'Microsoft.Dynamics.CRM.AttributeMetadata'.")
    strings = environment.get(f"{path}/{NS}StringAttributeMetadata?$select=LogicalName,"
                              "MaxLength")["value"]
    assert {"LogicalName": "emailaddress1", "MaxLength": 100} in [
        {k: v for k, v in item.items() if k in ("LogicalName", "MaxLength")} for item in strings]
    assert environment.call("GET", f"{path}/{NS}EnumAttributeMetadata").status_code == 500
    assert environment.call("GET", "GlobalOptionSetDefinitions?$filter=Name eq 'x'"
                            ).status_code == 405


def test_a_put_replaces_the_definition_and_merges_labels_only_when_asked(
    environment: Environment,
) -> None:
    assert environment.call("POST", "EntityDefinitions", table_body()).status_code == 204
    path = "EntityDefinitions(LogicalName='ec_widget')/Attributes(LogicalName='ec_name')"
    definition = environment.get(path)
    definition.pop("@odata.context")
    definition["DisplayName"] = label("Nom", 1036)
    merged = environment.call("PUT", path, {**definition, "MaxLength": 150},
                              headers={"MSCRM.MergeLabels": "true"})
    assert merged.status_code == 204
    found = environment.get(path)
    assert found["MaxLength"] == 150
    assert {(x["Label"], x["LanguageCode"]) for x in found["DisplayName"]["LocalizedLabels"]} \
        == {("Name", 1033), ("Nom", 1036)}
    replaced = environment.call("PUT", path, definition)
    assert replaced.status_code == 204
    assert [x["LanguageCode"] for x in environment.get(path)["DisplayName"][
        "LocalizedLabels"]] == [1036]
    retyped = environment.call("PUT", path, {**definition,
                                             "@odata.type": NS + "MemoAttributeMetadata"})
    assert error_of(retyped)[:2] == (400, "0x80040203")


def test_a_relationship_creates_a_lookup_the_data_api_binds(environment: Environment) -> None:
    for name in ("ec_widget", "ec_part"):
        assert environment.call("POST", "EntityDefinitions", table_body(name)).status_code == 204
    response = environment.call("POST", "RelationshipDefinitions", {
        "@odata.type": NS + "OneToManyRelationshipMetadata", "SchemaName": "ec_widget_part",
        "ReferencedEntity": "ec_widget", "ReferencedAttribute": "ec_widgetid",
        "ReferencingEntity": "ec_part",
        "Lookup": {"@odata.type": NS + "LookupAttributeMetadata", "SchemaName": "ec_WidgetId",
                   "DisplayName": label("Widget")}})
    assert response.status_code == 204
    assert "RelationshipDefinitions(" in response.headers["OData-EntityId"]
    found = environment.get("RelationshipDefinitions(SchemaName='ec_widget_part')")
    assert found["ReferencingEntityNavigationPropertyName"] == "ec_WidgetId"
    widget = environment.create("ec_widgets", {"ec_name": "w"})
    undeclared = environment.call("POST", "ec_parts", {
        "ec_name": "p", "ec_widgetid@odata.bind": f"/ec_widgets({widget})"})
    assert error_of(undeclared)[:2] == (400, "0x80048d19")  # binds use the navigation name
    part = environment.create("ec_parts", {"ec_name": "p",
                                           "ec_WidgetId@odata.bind": f"/ec_widgets({widget})"})
    assert environment.get(f"ec_parts({part})?$select=_ec_widgetid_value")[
        "_ec_widgetid_value"] == widget


def test_option_actions_change_a_global_choice(environment: Environment) -> None:
    assert environment.call("POST", "GlobalOptionSetDefinitions", choice_body()).status_code == 204
    inserted = environment.call("POST", "InsertOptionValue", {
        "OptionSetName": "ec_optintype", "Label": label("Double")})
    assert inserted.json()["NewOptionValue"] == 100000002
    assert environment.call("POST", "UpdateOptionValue", {
        "OptionSetName": "ec_optintype", "Value": 100000000, "Label": label("None"),
        "MergeLabels": True}).status_code == 204
    assert environment.call("POST", "DeleteOptionValue", {
        "OptionSetName": "ec_optintype", "Value": 100000001}).status_code == 204
    options = environment.get(OPT_IN)["Options"]
    assert [(o["Value"], o["Label"]["UserLocalizedLabel"]["Label"]) for o in options] == [
        (100000000, "None"), (100000002, "Double")]
    unknown = environment.call("POST", "InsertOptionValue", {"OptionSetName": "ec_optintype",
                                                            "Colour": "red"})
    assert error_of(unknown)[:2] == (400, "0x80048d19")
    assert environment.call("GET", "InsertOptionValue").status_code == 404


def test_a_new_column_on_a_table_with_rows_reads_as_null(environment: Environment) -> None:
    contact = environment.create("contacts", {"lastname": "Ada"})
    assert environment.call("POST", "EntityDefinitions(LogicalName='contact')/Attributes",
                            string_body("ec_Code")).status_code == 204
    assert environment.get(f"contacts({contact})?$select=ec_code")["ec_code"] is None
    deleted = environment.call(
        "DELETE", "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='ec_code')")
    assert deleted.status_code == 204
    gone = environment.call("GET", f"contacts({contact})?$select=ec_code")
    assert gone.status_code == 400
    platform = environment.call(
        "DELETE", "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='lastname')")
    assert error_of(platform)[:2] == (400, "0x80040203")


def test_notes_turned_on_add_the_notes_navigation_property(environment: Environment) -> None:
    assert environment.call("POST", "EntityDefinitions", table_body()).status_code == 204
    widget = environment.create("ec_widgets", {"ec_name": "w"})
    bind = {"subject": "n", "objectid_ec_widget@odata.bind": f"/ec_widgets({widget})"}
    assert environment.call("POST", "annotations", bind).status_code == 400
    definition = environment.get("EntityDefinitions(LogicalName='ec_widget')")
    definition.pop("@odata.context")
    assert environment.call("PUT", f"EntityDefinitions({definition['MetadataId']})",
                            {**definition, "HasNotes": True}).status_code == 204
    assert environment.call("POST", "annotations", bind).status_code == 204
    off = environment.call("PUT", f"EntityDefinitions({definition['MetadataId']})",
                           {**definition, "HasNotes": False})
    assert error_of(off)[:2] == (400, "0x80040203")


def test_a_delegated_user_may_read_but_not_customize(environment: Environment) -> None:
    user = "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c01"
    requests.post(f"{environment.url}/_emulator/seed", json={"users": [
        {"oid": user, "read": {"contact": "organization"}}]}, verify=environment.ca_bundle,
        timeout=30).raise_for_status()
    token = mint_token(environment.cluster, user=user)
    headers = {"Authorization": f"Bearer {token}"}
    read = requests.get(environment.api_url + "EntityDefinitions(LogicalName='contact')",
                        headers=headers, verify=environment.ca_bundle, timeout=30)
    assert read.status_code == 200
    write = requests.post(environment.api_url + "EntityDefinitions", json=table_body(),
                          headers=headers, verify=environment.ca_bundle, timeout=30)
    assert error_of(write)[:2] == (403, "0x80040220")


def test_the_standard_baseline_hides_the_connector_schema_until_a_reset(
    environment: Environment,
) -> None:
    assert error_of(environment.call("GET", "ec_emailaccounts"))[:2] == (404, "0x8006088a")
    contact = environment.call("POST", "contacts", {"lastname": "Ada", "ec_optintype": 1})
    assert error_of(contact)[:2] == (400, "0x80048d19")
    seeded = requests.post(f"{environment.url}/_emulator/seed", json={"tables": {
        "ec_emailaccounts": [{"ec_name": "x"}]}}, verify=environment.ca_bundle, timeout=30)
    assert seeded.status_code == 400
    environment.cluster.reset()
    assert environment.call("GET", "ec_emailaccounts").status_code == 200
