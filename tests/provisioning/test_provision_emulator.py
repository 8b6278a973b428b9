"""``python -m provisioning`` end to end against the Dataverse emulator over HTTPS: a Dataverse
without the connector's schema gets it, a second run changes nothing, destructive differences are
refused without a change, bad input is named, and what was created has the file's shapes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.provisioning.builders import raw_column, raw_schema, raw_table
from tests.provisioning.conftest import Environment

ATTRIBUTE_TYPES = {"string": "String", "memo": "Memo", "int": "Integer", "bool": "Boolean",
                   "datetime": "DateTime", "choice": "Picklist", "lookup": "Lookup",
                   "guid": "Uniqueidentifier", "state": "State", "status": "Status"}
REQUIRED = {"none": "None", "application": "ApplicationRequired"}


def write_schema(tmp_path: Path, raw: dict[str, Any]) -> str:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(raw))
    return str(path)


def test_an_environment_without_the_schema_gets_all_of_it_then_nothing_changes(
    environment: Environment,
) -> None:
    assert environment.call("GET", "EntityDefinitions(LogicalName='ec_emailaccount')"
                            ).status_code == 404
    first = environment.provision()
    assert first.code == 0, first.stderr
    statuses = first.statuses()
    schema = raw_schema()
    assert {statuses[name] for name in schema["choices"]} == {"created"}
    for table in (t for t in schema["tables"] if not t.get("standard")):
        assert statuses[table["logical_name"]] == "created"
        for column in table["columns"]:
            if column["name"] not in ("statecode", "statuscode", table["primary_key"]):
                assert statuses[f"{table['logical_name']}.{column['name']}"] == "created"
    for name in ("contact", "lead", "account", "annotation"):
        assert statuses[name] == "unchanged"
    for name in ("contact", "lead", "account"):
        assert statuses[f"{name}.ec_optintype"] == "created"
    assert first.report["result"] == "ok"
    # Progress for a long run goes to stderr, a line per request.
    assert "[1/" in first.stderr and "publishing customizations" in first.stderr

    before = environment.metadata_snapshot()
    second = environment.provision()
    assert second.code == 0
    assert set(second.statuses().values()) == {"unchanged"}
    assert environment.metadata_snapshot() == before


def test_the_plan_shows_what_would_change_and_changes_nothing(
    environment: Environment,
) -> None:
    before = environment.metadata_snapshot()
    run = environment.provision("--plan")
    assert run.code == 0
    assert run.statuses()["ec_emailaccount"] == "would create"
    assert run.report["mode"] == "plan only"
    assert environment.metadata_snapshot() == before


def test_the_text_report_lists_every_item_and_the_result(environment: Environment) -> None:
    run = environment.provision(json_report=False)
    assert run.code == 0
    assert "ec_syncschedule.ec_emailaccountid" in run.stdout
    assert run.stdout.rstrip().splitlines()[-1].startswith("result: OK (")


def test_what_was_created_has_the_shapes_the_schema_file_describes(
    environment: Environment,
) -> None:
    assert environment.provision().code == 0
    schema = raw_schema()
    for name, choice in schema["choices"].items():
        found = environment.get(f"GlobalOptionSetDefinitions(Name='{name}')")
        assert found["IsGlobal"] is True
        assert [(o["Value"], o["Label"]["UserLocalizedLabel"]["Label"])
                for o in found["Options"]] == [(o["value"], o["label"])
                                              for o in choice["options"]]
    for table in schema["tables"]:
        name = table["logical_name"]
        key = f"EntityDefinitions(LogicalName='{name}')"
        entity = environment.get(key)
        assert (entity["EntitySetName"], entity["PrimaryIdAttribute"],
                entity["PrimaryNameAttribute"], entity["HasNotes"]) == (
            table["entity_set"], table["primary_key"], table["primary_name"],
            table["has_notes"])
        assert entity["IsCustomEntity"] is not table.get("standard", False)
        attributes = {a["LogicalName"]: a for a in environment.get(f"{key}/Attributes")["value"]}
        choices = {a["LogicalName"]: a["OptionSet"] for a in environment.get(
            f"{key}/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
            "?$select=LogicalName&$expand=OptionSet($select=Name,IsGlobal)")["value"]}
        lookups = {r["ReferencingAttribute"]: r for r in environment.get(
            f"{key}/ManyToOneRelationships")["value"]}
        for column in table["columns"]:
            found = attributes[column["name"]]
            where = f"{name}.{column['name']}"
            if column["type"] in ATTRIBUTE_TYPES:
                assert found["AttributeType"] == ATTRIBUTE_TYPES[column["type"]], where
            if column["type"] in ("string", "memo"):
                assert found["MaxLength"] == column["max_length"], where
            if column["type"] == "string" and column.get("format"):
                assert found["FormatName"]["Value"].lower() == column["format"], where
            if column["type"] == "int":
                for key_name, field in (("min_value", "MinValue"), ("max_value", "MaxValue")):
                    if key_name in column:
                        assert found[field] == column[key_name], where
            if column.get("required") in REQUIRED and column["name"] != table["primary_key"]:
                assert found["RequiredLevel"]["Value"] == REQUIRED[column["required"]], where
            if column["type"] == "bool":
                assert found["DefaultValue"] is column.get("default", False), where
            if column["type"] == "choice":
                assert choices[column["name"]] == {
                    "@odata.type": "#Microsoft.Dynamics.CRM.OptionSetMetadata",
                    "MetadataId": choices[column["name"]]["MetadataId"],
                    "Name": column["choice"], "IsGlobal": True}, where
                if "default" in column:
                    assert found["DefaultFormValue"] == column["default"], where
            if column["type"] == "lookup":
                wanted = {(t["table"], t["navigation_property"]) for t in column["targets"]}
                if len(wanted) == 1:
                    relationship = lookups[column["name"]]
                    assert {(relationship["ReferencedEntity"],
                             relationship["ReferencingEntityNavigationPropertyName"])} == wanted
                assert sorted(found["Targets"]) == sorted(t for t, _ in wanted), where


def test_created_tables_and_columns_work_through_the_data_api(
    environment: Environment,
) -> None:
    assert environment.provision().code == 0
    account = environment.create("ec_emailaccounts", {
        "ec_name": "Brand 1", "ec_accountid": 2001, "ec_isdefault": True,
        "ec_secretname": "DD_PASSWORD_2001"})
    environment.create("ec_syncschedules", {
        "ec_name": "Brand 1 · ContactOptIn", "ec_synctype": 100000000,
        "ec_emailaccountid@odata.bind": f"/ec_emailaccounts({account})"})
    suppression = environment.create("ec_emailsuppressions", {
        "ec_emailaddress": "a" * 240 + "@example.com", "ec_reason": 100000002,
        "ec_emailaccountid@odata.bind": f"/ec_emailaccounts({account})"})
    environment.create("annotations", {
        "subject": "Resubscribed",
        "objectid_ec_emailsuppression@odata.bind": f"/ec_emailsuppressions({suppression})"})
    [schedule] = environment.get("ec_syncschedules?$select=_ec_emailaccountid_value,ec_status,"
                                 "ec_syncnow")["value"]
    assert schedule["_ec_emailaccountid_value"] == account
    assert (schedule["ec_status"], schedule["ec_syncnow"]) == (100000000, False)  # defaults
    contact = environment.create("contacts", {"lastname": "Ada", "ec_optintype": 100000002})
    assert environment.get(f"contacts({contact})?$select=ec_optintype")["ec_optintype"] == (
        100000002)
    refused = environment.call("POST", "contacts", {"lastname": "Bo", "ec_optintype": 7})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "0x80044331"


def test_a_destructive_difference_is_refused_and_changes_nothing_until_allowed(
    environment: Environment, tmp_path: Path,
) -> None:
    assert environment.provision().code == 0
    environment.create("contacts", {"lastname": "Ada", "ec_optintype": 100000003})

    def destructive(raw: dict[str, Any]) -> None:
        raw["choices"]["ec_optintype"]["options"].pop()  # VerifiedDouble, held by Ada
        raw_column(raw, "ec_emailaccount", "ec_apiusername")["max_length"] = 20
        raw_column(raw, "ec_emailaccount", "ec_secretname")["max_length"] = 200  # safe

    schema = write_schema(tmp_path, raw_schema(destructive))
    before = environment.metadata_snapshot()
    refused = environment.provision("--schema", schema)
    assert refused.code == 1
    assert refused.report["result"] == "refused"
    statuses = refused.statuses()
    assert statuses["ec_optintype"] == "refused"
    assert statuses["ec_emailaccount.ec_apiusername"] == "refused"
    assert statuses["ec_emailaccount.ec_secretname"] == "would change"
    refusals = {item["name"]: item["refusal"] for item in refused.report["items"]}
    assert "in use" in refusals["ec_optintype"]
    assert "--allow-destructive" in refusals["ec_emailaccount.ec_apiusername"]
    assert environment.metadata_snapshot() == before

    allowed = environment.provision("--schema", schema, "--allow-destructive")
    assert allowed.code == 0, allowed.stdout
    assert allowed.statuses()["ec_optintype"] == "changed"
    options = environment.get("GlobalOptionSetDefinitions(Name='ec_optintype')")["Options"]
    assert [o["Value"] for o in options] == [100000000, 100000001, 100000002]
    column = environment.get("EntityDefinitions(LogicalName='ec_emailaccount')/Attributes("
                             "LogicalName='ec_apiusername')")
    assert column["MaxLength"] == 20


def test_a_type_change_recreates_the_column_when_allowed(
    environment: Environment, tmp_path: Path,
) -> None:
    assert environment.provision().code == 0

    def retype(raw: dict[str, Any]) -> None:
        raw_column(raw, "ec_program", "ec_status").update(type="memo", max_length=300)

    schema = write_schema(tmp_path, raw_schema(retype))
    assert environment.provision("--schema", schema).code == 1
    run = environment.provision("--schema", schema, "--allow-destructive")
    assert run.code == 0
    column = environment.get("EntityDefinitions(LogicalName='ec_program')/Attributes("
                             "LogicalName='ec_status')")
    assert (column["AttributeType"], column["MaxLength"]) == ("Memo", 300)


def test_a_difference_provisioning_cannot_make_is_refused_even_when_allowed(
    environment: Environment, tmp_path: Path,
) -> None:
    assert environment.provision().code == 0
    schema = write_schema(tmp_path, raw_schema(
        lambda raw: raw_table(raw, "ec_program").update(entity_set="ec_programmes")))
    before = environment.metadata_snapshot()
    run = environment.provision("--schema", schema, "--allow-destructive")
    assert run.code == 1
    assert "cannot be changed by provisioning" in {
        item["name"]: item["refusal"] for item in run.report["items"]}["ec_program"]
    assert environment.metadata_snapshot() == before


def test_without_dynamics_365_sales_the_lead_columns_are_skipped(
    environment: Environment,
) -> None:
    environment.configure(lead_table_enabled=False)
    run = environment.provision()
    assert run.code == 0
    assert run.statuses()["lead"] == "skipped"
    assert run.statuses()["lead.ec_optintype"] == "skipped"


def test_new_components_go_into_the_named_solution(environment: Environment) -> None:
    assert environment.provision("--solution", "ecdotdigitalconnector").code == 0
    solutions = environment.cluster.dataverse.api.catalog.solutions
    assert solutions["entity/ec_emailaccount"] == "ecdotdigitalconnector"
    assert solutions["optionset/ec_optintype"] == "ecdotdigitalconnector"
    assert solutions["attribute/contact/ec_optintype"] == "ecdotdigitalconnector"
    assert solutions["relationship/ec_emailaccount_program_emailaccountid"] == (
        "ecdotdigitalconnector")


# --- bad input ----------------------------------------------------------------------------------
def with_option(options: list[str], name: str, value: str) -> list[str]:
    changed = list(options)
    changed[changed.index(name) + 1] = value
    return changed


def test_an_unreadable_schema_file_is_bad_input(environment: Environment,
                                                tmp_path: Path) -> None:
    run = environment.provision("--schema", str(tmp_path / "missing.json"))
    assert run.code == 2
    assert "cannot read the schema file" in run.stderr


def test_a_url_that_is_not_https_is_bad_input(environment: Environment) -> None:
    run = environment.provision(options=with_option(environment.options, "--dataverse-url",
                                                    "http://contoso.crm.dynamics.com"))
    assert run.code == 2 and "must be an https:// URL" in run.stderr


def test_a_url_nothing_answers_is_bad_input(environment: Environment) -> None:
    run = environment.provision(options=with_option(environment.options, "--dataverse-url",
                                                    "https://127.0.0.1:9"))
    assert run.code == 2
    assert "https://127.0.0.1:9" in run.stderr


def test_wrong_credentials_are_bad_input_and_never_printed(environment: Environment) -> None:
    run = environment.provision(options=with_option(environment.options, "--client-secret",
                                                    "not-the-secret"))
    assert run.code == 2
    assert "Entra ID did not issue a token" in run.stderr
    assert "not-the-secret" not in run.stderr + run.stdout


def test_a_missing_setting_is_bad_input(environment: Environment) -> None:
    options = environment.options
    index = options.index("--tenant-id")
    run = environment.provision(options=options[:index] + options[index + 2:])
    assert run.code == 2 and "--tenant-id" in run.stderr


def test_a_settings_file_gives_the_connection(environment: Environment,
                                              tmp_path: Path) -> None:
    options = dict(zip(environment.options[::2], environment.options[1::2], strict=True))
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {
        "DATAVERSE_URL": options["--dataverse-url"], "ENTRA_TENANT_ID": options["--tenant-id"],
        "ENTRA_CLIENT_ID": options["--client-id"],
        "ENTRA_CLIENT_SECRET": options["--client-secret"],
        "ENTRA_AUTHORITY_HOST": options["--authority-host"],
        "OUTBOUND_CA_BUNDLE": options["--ca-bundle"]}}))
    run = environment.provision("--plan", options=["--settings", str(settings)])
    assert run.code == 0


def test_the_app_registration_may_sign_in_with_its_certificate(environment: Environment,
                                                              tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dotdigital connector")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(hours=1))
                   .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    entra = environment.cluster.entra_server.base_url
    state = requests.get(f"{entra}/_emulator/state", params={"client_id": environment.client_id},
                         verify=environment.ca_bundle, timeout=30).json()
    client = {**state["clients"][0], "certificates": [certificate_pem]}
    requests.post(f"{entra}/_emulator/seed", json={"clients": [client]},
                  verify=environment.ca_bundle, timeout=30).raise_for_status()
    credential = tmp_path / "connector.pem"
    credential.write_text(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode() + certificate_pem)
    options = environment.options
    index = options.index("--client-secret")
    with_certificate = [*options[:index], *options[index + 2:],
                        "--client-certificate", str(credential)]
    assert environment.provision("--plan", options=with_certificate).code == 0

    credential.write_text("not a certificate")
    run = environment.provision("--plan", options=with_certificate)
    assert run.code == 2 and "ENTRA_CLIENT_CERTIFICATE" in run.stderr
    both = environment.provision("--plan", options=[*options, "--client-certificate",
                                                    str(credential)])
    assert both.code == 2 and "exactly one" in both.stderr
