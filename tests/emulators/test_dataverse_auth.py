"""Dataverse emulator: bearer tokens from the Entra emulator, the 401 challenge and WhoAmI."""

from __future__ import annotations

import pytest

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin
from tests.emulators.dataverse_client import OTHER_USER, DataverseClient, mint_token


@pytest.fixture
def dv(cluster: EmulatorCluster) -> DataverseClient:
    return DataverseClient(cluster)


def _assert_challenged(cluster: EmulatorCluster, response: object) -> None:
    assert response.status_code == 401  # type: ignore[attr-defined]
    challenge = response.headers["WWW-Authenticate"]  # type: ignore[attr-defined]
    authority = cluster.entra.describe()["authority"]
    assert challenge == (
        f"Bearer authorization_uri={authority}/oauth2/authorize, "
        f"resource_id={cluster.dataverse.base_url}/"
    )


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"])
def test_missing_or_malformed_token_is_challenged(
    cluster: EmulatorCluster, dv: DataverseClient, header: str | None
) -> None:
    # requests leaves out a header whose value is None.
    response = dv.request("GET", "contacts", headers={"Authorization": header})  # type: ignore[dict-item]
    assert response.request.headers.get("Authorization") == header
    _assert_challenged(cluster, response)


def test_token_for_another_audience_is_refused(
    cluster: EmulatorCluster, dv: DataverseClient
) -> None:
    token = mint_token(cluster, audience="https://other.crm.dynamics.com")
    _assert_challenged(cluster, dv.get("contacts", token=token))


def test_audience_with_trailing_slash_is_accepted(
    cluster: EmulatorCluster, dv: DataverseClient
) -> None:
    token = mint_token(cluster, audience=cluster.dataverse.base_url + "/")
    assert dv.get("contacts", token=token).status_code == 200


def test_expired_token_is_refused(
    cluster: EmulatorCluster, dv: DataverseClient, dataverse_admin: Admin
) -> None:
    assert dv.get("WhoAmI").status_code == 200
    dataverse_admin.advance_clock(2 * 86_400)
    _assert_challenged(cluster, dv.get("WhoAmI"))


def test_unauthenticated_requests_change_nothing(
    cluster: EmulatorCluster, dv: DataverseClient, dataverse_admin: Admin
) -> None:
    response = dv.post("contacts", {"lastname": "Sneaky"}, token="forged")
    _assert_challenged(cluster, response)
    assert dataverse_admin.state(table="contacts")["tables"]["contacts"] == []


def test_who_am_i_reports_a_stable_user_per_principal(
    cluster: EmulatorCluster, dv: DataverseClient
) -> None:
    first = dv.get("WhoAmI").json()
    assert set(first) == {"@odata.context", "BusinessUnitId", "UserId", "OrganizationId"}
    assert first["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse")
    assert dv.get("WhoAmI").json() == first
    other = DataverseClient(cluster, user=OTHER_USER).get("WhoAmI").json()
    assert other["UserId"] != first["UserId"]
    assert other["OrganizationId"] == first["OrganizationId"]


def test_application_tokens_work_too(cluster: EmulatorCluster, dv: DataverseClient) -> None:
    client_id = cluster.entra.describe()["default_client"]["client_id"]
    token = mint_token(cluster, client_id=client_id)
    assert dv.get("WhoAmI", token=token).status_code == 200


def test_describe_names_api_url_and_scope(cluster: EmulatorCluster) -> None:
    described = cluster.describe()["dataverse"]
    base = cluster.dataverse.base_url
    assert described == {
        "base_url": base, "api_url": f"{base}/api/data/v9.2/", "scope": f"{base}/.default",
    }


def test_older_api_versions_answer_too(dv: DataverseClient) -> None:
    response = dv.get(f"{dv.base_url}/api/data/v9.0/WhoAmI")
    assert response.status_code == 200
