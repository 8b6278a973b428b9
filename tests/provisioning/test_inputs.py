"""Bad input is named before anything is sent: the schema file and the connection settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provisioning import schema_file
from provisioning.errors import InputError
from provisioning.settings import resolve
from tests.provisioning.builders import raw_column, raw_schema

VALUES = {"DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
          "ENTRA_TENANT_ID": "tenant-from-file", "ENTRA_CLIENT_ID": "client-from-file",
          "ENTRA_CLIENT_SECRET": "secret-from-file"}
NO_OPTIONS: dict[str, str | None] = {}


def test_the_repository_schema_file_is_read() -> None:
    schema = schema_file.load()
    assert schema.prefix == "ec" and "ec_optintype" in schema.choices
    table = schema.table("ec_syncschedule")
    assert table is not None
    lookup = table.column("ec_emailaccountid")
    assert lookup is not None and lookup.display_name == "Email Account"
    status = table.column("ec_status")
    assert status is not None and status.display_name == "Sync status"


def test_an_unreadable_schema_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the schema file"):
        schema_file.load(tmp_path / "missing.json")
    broken = tmp_path / "schema.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="is not JSON"):
        schema_file.load(broken)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda raw: raw.update(format="other"), "format must be"),
    (lambda raw: raw["publisher"].update(prefix="e"), "publisher.prefix"),
    (lambda raw: raw_column(raw, "contact", "ec_optintype").update(choice="nope"),
     "column ec_optintype: unknown choice 'nope'"),
    (lambda raw: raw_column(raw, "ec_program", "ec_status").update(type="text"),
     "unknown type 'text'"),
    (lambda raw: raw_column(raw, "ec_program", "ec_emailaccountid").update(
        targets=[{"table": "nowhere", "navigation_property": "x"}]), "unknown table nowhere"),
    (lambda raw: raw_column(raw, "ec_program", "ec_status").update(max_length="50"),
     "max_length must be a whole number"),
    (lambda raw: raw["choices"]["ec_synctype"].update(options=[]), "choice ec_synctype"),
])
def test_a_schema_file_problem_names_where_it_is(edit: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        schema_file.parse(raw_schema(edit))


def test_options_come_before_the_environment_and_the_settings_file(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": VALUES}))
    connection = resolve({"client_id": "client-from-option"},
                         {"ENTRA_TENANT_ID": "tenant-from-environment"}, None, tmp_path)
    assert connection.entra.client_id == "client-from-option"
    assert connection.entra.tenant_id == "tenant-from-environment"
    assert connection.entra.client_secret == "secret-from-file"
    assert connection.dataverse.api_url == "https://contoso.crm4.dynamics.com/api/data/v9.2/"
    assert "secret-from-file" not in repr(connection)


def test_a_relative_ca_bundle_of_a_settings_file_is_found_beside_it(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-")
    settings = tmp_path / "app.json"
    settings.write_text(json.dumps({"Values": {**VALUES, "OUTBOUND_CA_BUNDLE": "ca.pem"}}))
    connection = resolve(NO_OPTIONS, {}, settings, Path("/"))
    assert connection.http.verify == str(tmp_path / "ca.pem")


@pytest.mark.parametrize(("options", "message"), [
    ({"dataverse_url": "http://contoso.crm.dynamics.com"}, "must be an https:// URL"),
    ({"dataverse_url": "https://contoso.crm.dynamics.com/api/data/v9.2"}, "without a path"),
    ({"dataverse_url": "contoso"}, "must be an https:// URL"),
    ({"ca_bundle": "no-such.pem"}, "CA bundle .* does not exist"),
    ({"authority_host": "login.microsoftonline.com"}, "--authority-host"),
])
def test_bad_connection_settings_are_named(tmp_path: Path, options: dict[str, str | None],
                                           message: str) -> None:
    with pytest.raises(InputError, match=message):
        resolve(options, VALUES, None, tmp_path)


def test_a_missing_setting_names_its_option_and_app_setting(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--client-secret .*ENTRA_CLIENT_SECRET"):
        resolve(NO_OPTIONS, {k: v for k, v in VALUES.items() if k != "ENTRA_CLIENT_SECRET"},
                None, tmp_path)


def test_a_settings_file_that_is_not_one_is_named(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False}))
    with pytest.raises(InputError, match="no Values"):
        resolve(NO_OPTIONS, {}, None, tmp_path)
