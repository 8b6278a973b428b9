"""Settings: one loader, clear errors naming the setting, secrets never in repr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import SETTINGS, load_settings, resolve_secret
from shared.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

VALID = {
    "DATAVERSE_URL": "https://contoso.crm4.dynamics.com/",
    "ENTRA_TENANT_ID": "tenant",
    "ENTRA_CLIENT_ID": "client",
    "ENTRA_CLIENT_SECRET": "s3cret-value",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def test_loads_valid_settings_with_defaults() -> None:
    settings = load_settings(VALID)
    assert settings.dataverse.api_url == "https://contoso.crm4.dynamics.com/api/data/v9.2/"
    assert settings.dataverse.scope == "https://contoso.crm4.dynamics.com/.default"
    assert settings.entra.authority == "https://login.microsoftonline.com/tenant"
    assert settings.http.verify is True
    assert settings.queues.optin_queue == "optin-batches"


def test_secrets_never_appear_in_repr() -> None:
    settings = load_settings({**VALID, "ServiceBusConnection": "Endpoint=sb://x;SharedAccessKey=k3y"})
    text = repr(settings)
    assert "s3cret-value" not in text
    assert "k3y" not in text
    assert "UseDevelopmentStorage" not in text


@pytest.mark.parametrize("missing", ["DATAVERSE_URL", "AzureWebJobsStorage"])
def test_missing_setting_is_named(missing: str) -> None:
    environ = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(ConfigError, match=f"missing app setting {missing}"):
        load_settings(environ)


@pytest.mark.parametrize("credentials", [
    {}, {"ENTRA_CLIENT_SECRET": "s", "ENTRA_CLIENT_CERTIFICATE": "c"}])
def test_the_app_registration_has_exactly_one_credential(credentials: dict[str, str]) -> None:
    environ = {**{k: v for k, v in VALID.items() if k != "ENTRA_CLIENT_SECRET"}, **credentials}
    with pytest.raises(ConfigError, match="exactly one of ENTRA_CLIENT_SECRET and "
                                          "ENTRA_CLIENT_CERTIFICATE"):
        load_settings(environ)


def test_a_certificate_instead_of_the_secret_is_kept_out_of_repr() -> None:
    environ = {**{k: v for k, v in VALID.items() if k != "ENTRA_CLIENT_SECRET"},
               "ENTRA_CLIENT_CERTIFICATE": "-----BEGIN PRIVATE KEY-----secret-key"}
    settings = load_settings(environ)
    assert settings.entra.client_secret is None
    assert settings.entra.client_certificate == "-----BEGIN PRIVATE KEY-----secret-key"
    assert "secret-key" not in repr(settings)


IDENTITY = {k: v for k, v in VALID.items() if k != "AzureWebJobsStorage"}


@pytest.mark.parametrize(("extra", "endpoint"), [
    ({"AzureWebJobsStorage__accountName": "contosostate"},
     "https://contosostate.table.core.windows.net"),
    ({"AzureWebJobsStorage__tableServiceUri": "https://contosostate.table.core.usgovcloudapi.net/",
      "AzureWebJobsStorage__accountName": "contosostate"},
     "https://contosostate.table.core.usgovcloudapi.net"),
])
def test_the_state_tables_by_managed_identity(extra: dict[str, str], endpoint: str) -> None:
    state = load_settings({**IDENTITY, **extra}).state
    assert state.connection_string is None and state.table_endpoint == endpoint


def test_a_connection_string_wins_over_the_identity_form() -> None:
    state = load_settings({**VALID, "AzureWebJobsStorage__accountName": "contosostate"}).state
    assert state.connection_string == "UseDevelopmentStorage=true" and state.table_endpoint is None
    own = load_settings({**IDENTITY, "STATE_STORAGE_CONNECTION": "UseDevelopmentStorage=true",
                         "AzureWebJobsStorage__accountName": "contosostate"}).state
    assert own.connection_string == "UseDevelopmentStorage=true"


@pytest.mark.parametrize(("extra", "message"), [
    ({"AzureWebJobsStorage__accountName": "Contoso-State"}, "must be a storage account name"),
    ({"AzureWebJobsStorage__tableServiceUri": "http://contosostate.table.core.windows.net"},
     "invalid app setting AzureWebJobsStorage__tableServiceUri"),
])
def test_a_bad_identity_storage_setting_is_named(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({**IDENTITY, **extra})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATAVERSE_URL", "http://contoso.crm.dynamics.com", "expected an https:// URL"),
        ("HTTP_TIMEOUT_SECONDS", "soon", "expected a number"),
        ("RETRY_MAX_ATTEMPTS", "0", "must be at least 1"),
    ],
)
def test_invalid_setting_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid app setting {name}: {message}"):
        load_settings({**VALID, name: value})


def test_account_secret_is_resolved_from_the_named_setting() -> None:
    assert resolve_secret({"DD_SECRET_1": "pw"}, " DD_SECRET_1 ") == "pw"
    with pytest.raises(ConfigError, match="missing app setting DD_SECRET_2"):
        resolve_secret({}, "DD_SECRET_2")
    with pytest.raises(ConfigError, match="empty ec_secretname"):
        resolve_secret({}, "  ")


def test_sample_settings_name_every_setting_the_code_knows() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert set(SETTINGS) <= set(sample), sorted(set(SETTINGS) - set(sample))


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    undocumented = [name for name in SETTINGS if f"`{name}`" not in readme]
    assert not undocumented
