"""dotdigital call-rate limits: the flat hourly cap per account and the per-minute tier."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin

USER, PASSWORD = "apiuser-rate@apiconnector.com", "Secr3t-pass"
OTHER_USER = "apiuser-other@apiconnector.com"
CAPPED = {"message": "Your account has generated excess API activity and is being temporarily "
                     "capped. Please contact support. ERROR_APIUSAGE_EXCEEDED"}


@pytest.fixture(autouse=True)
def _accounts(dotdigital_admin: Admin) -> None:
    dotdigital_admin.seed({"accounts": [
        {"id": 1, "apiUser": USER, "password": PASSWORD},
        {"id": 2, "apiUser": OTHER_USER, "password": PASSWORD},
    ]})


def call(cluster: EmulatorCluster, path: str = "/r1/v2/contacts", user: str = USER,
         method: str = "GET", **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{cluster.dotdigital_server.base_url}{path}",
                            auth=(user, PASSWORD), verify=cluster.ca_bundle, timeout=10, **kwargs)


def start_of_a_minute(cluster: EmulatorCluster, admin: Admin) -> None:
    """Tier windows are clock minutes: start just after a boundary so none falls mid-test."""
    admin.advance_clock(60 - cluster.clock.time() % 60 + 0.5)


def info(cluster: EmulatorCluster) -> dict[str, str]:
    response = call(cluster, "/r1/v2/account-info")
    return {item["name"]: item["value"] for item in response.json()["properties"]}


def test_account_info_reports_the_calls_of_the_last_hour(cluster: EmulatorCluster) -> None:
    for _ in range(4):
        call(cluster)
    props = info(cluster)
    assert (props["ApiCallsInLastHour"], props["ApiCallsRemaining"]) == ("5", "1995")


def test_the_hourly_cap_refuses_with_apiusage_exceeded_until_the_hour_rolls(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.configure(rate_limits={"hourly": 3})
    assert [call(cluster).status_code for _ in range(3)] == [200, 200, 200]
    refused = call(cluster)
    assert (refused.status_code, refused.json()) == (400, CAPPED)
    assert call(cluster, user=OTHER_USER).status_code == 200  # per account
    dotdigital_admin.advance_clock(1800)
    assert call(cluster).status_code == 400
    dotdigital_admin.advance_clock(1801)
    assert call(cluster).status_code == 200


def test_the_hourly_status_is_configurable(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.configure(rate_limits={"hourly": 1, "hourly_status": 429})
    call(cluster)
    assert call(cluster).status_code == 429


def test_refused_and_unauthenticated_calls_do_not_count(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    requests.get(f"{cluster.dotdigital_server.base_url}/r1/v2/contacts", auth=(USER, "bad"),
                 verify=cluster.ca_bundle, timeout=10)
    call(cluster, "/r2/v2/contacts")  # wrong region
    dotdigital_admin.state()
    assert info(cluster)["ApiCallsInLastHour"] == "1"


def test_creating_an_enrolment_does_not_count_toward_the_hourly_cap(
    cluster: EmulatorCluster,
) -> None:
    call(cluster, "/r1/v2/programs/enrolments", method="POST", json={"programId": 1})
    call(cluster, "/r1/v2/programs")
    assert info(cluster)["ApiCallsInLastHour"] == "2"


def test_the_per_minute_tier_answers_429_with_rate_limit_headers(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.configure(rate_limits={"per_minute": 2, "scope": "mediumCallRate"})
    start_of_a_minute(cluster, dotdigital_admin)
    first, second, third = (call(cluster) for _ in range(3))
    assert [first.status_code, second.status_code] == [200, 200]
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert [first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]] == [
        "1", "0"]
    assert third.status_code == 429
    assert third.headers["X-RateLimit-Scope"] == "mediumCallRate"
    assert third.headers["X-RateLimit-Remaining"] == "0"
    reset = int(third.headers["X-RateLimit-Reset"])
    assert 1 <= reset <= 60
    assert third.headers["Retry-After"] == str(reset)
    assert "message" in third.json()
    assert call(cluster, user=OTHER_USER).status_code == 200  # per API user
    dotdigital_admin.advance_clock(reset)
    assert call(cluster).status_code == 200


def test_throttled_calls_are_counted_in_stats(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.configure(rate_limits={"per_minute": 1})
    start_of_a_minute(cluster, dotdigital_admin)
    call(cluster)
    call(cluster)
    assert dotdigital_admin.stats()["throttled"] == 1


@pytest.mark.parametrize(
    "settings",
    [
        {"rate_limits": {"hourly": -1}},
        {"rate_limits": {"per_minute": "ten"}},
        {"rate_limits": {"burst": 5}},
        {"rate_limits": {"hourly_status": 200}},
        {"rate_limits": {"hourly": 5}, "challenge_resend_seconds": -1},
        {"speed": "fast"},
    ],
)
def test_bad_settings_are_rejected_and_change_nothing(
    cluster: EmulatorCluster, dotdigital_admin: Admin, settings: dict[str, Any]
) -> None:
    before = dotdigital_admin.call("GET", "config")
    response = requests.post(f"{cluster.dotdigital_server.base_url}/_emulator/config",
                             json=settings, verify=cluster.ca_bundle, timeout=10)
    assert response.status_code == 400
    assert dotdigital_admin.call("GET", "config") == before


def test_reset_restores_the_default_limits(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.configure(rate_limits={"hourly": 1, "per_minute": 1})
    cluster.reset()
    assert dotdigital_admin.call("GET", "config")["rate_limits"] == {
        "hourly": 2000, "hourly_status": 400, "per_minute": 0, "scope": "lowCallRate"}
