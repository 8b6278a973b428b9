"""dotdigital: Basic auth, regional prefixes, account-info discovery and injected faults."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin

USER, PASSWORD = "apiuser-7a1c@apiconnector.com", "Secr3t-pass"
DENIED = {"message": "Authorization has been denied for this request."}


def account(**extra: Any) -> dict[str, Any]:
    return {"id": 1001, "apiUser": USER, "password": PASSWORD, "region": "r2", **extra}


def call(
    cluster: EmulatorCluster, path: str, auth: Any = (USER, PASSWORD), method: str = "GET",
    **kwargs: Any,
) -> requests.Response:
    return requests.request(
        method, f"{cluster.dotdigital_server.base_url}{path}", auth=auth,
        verify=cluster.ca_bundle, timeout=10, **kwargs,
    )


@pytest.fixture(autouse=True)
def _seeded(dotdigital_admin: Admin) -> None:
    dotdigital_admin.seed({"accounts": [account(name="Demo", mainEmail="demo@example.com")]})


def properties(response: requests.Response) -> dict[str, str]:
    return {item["name"]: item["value"] for item in response.json()["properties"]}


@pytest.mark.parametrize(
    "auth", [None, (USER, "wrong-password"), ("apiuser-nobody@apiconnector.com", PASSWORD)]
)
def test_v2_refuses_missing_or_bad_credentials_with_the_v2_message(
    cluster: EmulatorCluster, auth: Any
) -> None:
    response = call(cluster, "/r2/v2/contacts", auth=auth)
    assert response.status_code == 401
    assert response.json() == DENIED


def test_garbled_basic_header_is_refused(cluster: EmulatorCluster) -> None:
    response = call(cluster, "/r2/v2/contacts", auth=None,
                    headers={"Authorization": "Basic not*base64"})
    assert (response.status_code, response.json()) == (401, DENIED)


def test_v3_refuses_bad_credentials_with_an_empty_401(cluster: EmulatorCluster) -> None:
    response = call(cluster, "/r2/contacts/v3", auth=(USER, "nope"))
    assert response.status_code == 401
    assert response.content == b""


def test_account_info_on_r1_answers_for_an_account_of_another_region(
    cluster: EmulatorCluster,
) -> None:
    response = call(cluster, "/r1/v2/account-info")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == 1001
    props = properties(response)
    assert props["ApiEndpoint"] == f"{cluster.dotdigital_server.base_url}/r2/"
    assert props["Name"] == "Demo"
    assert props["MainEmail"] == "demo@example.com"
    assert {item["type"] for item in body["properties"]} >= {"Int", "String"}


def test_calls_to_the_wrong_region_are_denied(cluster: EmulatorCluster) -> None:
    for path in ("/r1/v2/contacts", "/r3/v2/contacts", "/r3/v2/account-info"):
        response = call(cluster, path)
        assert (response.status_code, response.json()) == (403, {"message": "Access is denied"})
    assert call(cluster, "/r2/v2/contacts").status_code == 200
    assert call(cluster, "/r2/v2/account-info").status_code == 200


def test_the_endpoint_from_account_info_serves_the_account(cluster: EmulatorCluster) -> None:
    endpoint = properties(call(cluster, "/r1/v2/account-info"))["ApiEndpoint"]
    response = requests.get(endpoint + "v2/contacts", auth=(USER, PASSWORD),
                            verify=cluster.ca_bundle, timeout=10)
    assert response.status_code == 200
    assert response.json() == []


def test_unknown_region_prefix_and_unknown_path_are_not_found(cluster: EmulatorCluster) -> None:
    for path in ("/r9/v2/contacts", "/v2/contacts", "/r2/v2/no-such-thing"):
        response = call(cluster, path)
        assert response.status_code == 404
        assert response.json()["message"].startswith("No HTTP resource was found")


def test_every_api_user_of_an_account_authenticates(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.seed({"accounts": [{
        "id": 2002, "region": "r1", "apiUsers": [
            {"apiUser": "apiuser-one@apiconnector.com", "password": "Passw0rd-1"},
            {"apiUser": "apiuser-two@apiconnector.com", "password": "Passw0rd-2"},
        ],
    }]})
    for user, password in (("apiuser-one@apiconnector.com", "Passw0rd-1"),
                           ("apiuser-two@apiconnector.com", "Passw0rd-2")):
        response = call(cluster, "/r1/v2/account-info", auth=(user, password))
        assert response.json()["id"] == 2002
    assert call(cluster, "/r1/v2/account-info",
                auth=("apiuser-one@apiconnector.com", "Passw0rd-2")).status_code == 401


def test_describe_names_the_regional_bases(cluster: EmulatorCluster) -> None:
    described = cluster.dotdigital.describe()
    base = cluster.dotdigital_server.base_url
    assert described == {
        "base_url": base,
        "regions": {"r1": f"{base}/r1/", "r2": f"{base}/r2/", "r3": f"{base}/r3/"},
        "account_info_url": f"{base}/r1/v2/account-info",
    }


def test_server_time_is_utc_iso(cluster: EmulatorCluster) -> None:
    response = call(cluster, "/r2/v2/server-time")
    assert response.status_code == 200
    assert response.json().endswith("Z")


def test_injected_429_carries_rate_limit_headers_and_a_v2_body(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.faults([{"path": "/r2/v2/*", "status": 429, "retry_after": 7, "count": 1}])
    response = call(cluster, "/r2/v2/contacts")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.headers["X-RateLimit-Reset"] == "7"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Scope"] == "lowCallRate"
    assert "X-RateLimit-Limit" in response.headers
    assert "message" in response.json()
    assert call(cluster, "/r2/v2/contacts").status_code == 200


@pytest.mark.parametrize(
    ("status", "message"),
    [(500, "An error has occurred."), (503, "Service Unavailable"), (403, "Access is denied")],
)
def test_injected_statuses_carry_v2_message_bodies(
    cluster: EmulatorCluster, dotdigital_admin: Admin, status: int, message: str
) -> None:
    dotdigital_admin.faults([{"path": "/r2/v2/contacts", "status": status}])
    response = call(cluster, "/r2/v2/contacts")
    assert (response.status_code, response.json()) == (status, {"message": message})
