"""The shared server: TLS from the local CA, admin API, statistics, faults and the clock."""

from __future__ import annotations

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin


def test_serves_https_trusted_only_through_the_emulator_ca(cluster: EmulatorCluster) -> None:
    url = f"{cluster.dotdigital_server.base_url}/_emulator/stats"
    assert requests.get(url, verify=cluster.ca_bundle, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, verify=True, timeout=10)


def test_describe_names_every_system_and_the_ca(cluster: EmulatorCluster) -> None:
    described = cluster.describe()
    assert set(described) == {"ca_bundle", "entra", "dataverse", "dotdigital"}
    for system in ("entra", "dataverse", "dotdigital"):
        assert described[system]["base_url"].startswith("https://127.0.0.1:")


def test_fault_rule_injects_status_with_retry_after_then_stops(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.faults([{"path": "/nowhere*", "status": 429, "retry_after": 3, "count": 2}])
    url = f"{cluster.dotdigital_server.base_url}/nowhere"
    first = requests.get(url, verify=cluster.ca_bundle, timeout=10)
    second = requests.get(url, verify=cluster.ca_bundle, timeout=10)
    third = requests.get(url, verify=cluster.ca_bundle, timeout=10)
    assert [first.status_code, second.status_code] == [429, 429]
    assert first.headers["Retry-After"] == "3"
    assert third.status_code != 429
    stats = dotdigital_admin.stats()
    assert stats["faults_injected"] == 2
    assert stats["throttled"] == 2
    assert stats["requests"] == 3


def test_fault_rule_resets_the_connection(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.faults([{"path": "*", "reset": True, "count": 1}])
    url = f"{cluster.dotdigital_server.base_url}/anything"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, verify=cluster.ca_bundle, timeout=10)
    assert requests.get(url, verify=cluster.ca_bundle, timeout=10).status_code != 0


def test_probabilistic_faults_repeat_for_the_same_seed(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    url = f"{cluster.dotdigital_server.base_url}/probe"

    def run() -> list[int]:
        dotdigital_admin.faults([{"path": "/probe", "status": 503, "probability": 0.5}], seed=42)
        return [
            requests.get(url, verify=cluster.ca_bundle, timeout=10).status_code for _ in range(30)
        ]

    first, second = run(), run()
    assert first == second
    assert 503 in first and any(code != 503 for code in first)


@pytest.mark.parametrize(
    "rules",
    [
        [{"path": "*", "status": 429, "bogus": 1}],
        [{"path": "*"}],
        [{"path": "*", "status": 429, "probability": 2}],
        "not a list",
    ],
)
def test_bad_fault_rules_are_rejected_and_change_nothing(
    cluster: EmulatorCluster, dotdigital_admin: Admin, rules: object
) -> None:
    dotdigital_admin.faults([{"path": "/keep", "status": 500}])
    response = requests.post(
        f"{cluster.dotdigital_server.base_url}/_emulator/faults",
        json={"rules": rules},
        verify=cluster.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 400
    assert "error" in response.json()
    assert [rule["path"] for rule in dotdigital_admin.call("GET", "faults")["rules"]] == ["/keep"]


def test_clock_advances_and_resets(cluster: EmulatorCluster, entra_admin: Admin) -> None:
    before = cluster.clock.time()
    entra_admin.advance_clock(3600)
    assert cluster.clock.time() - before >= 3600
    cluster.reset()
    assert cluster.clock.time() - before < 60
