"""Adapter tests talk to the emulators over HTTPS; each test starts from clean emulators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from shared.adapters.http.policy import RetryPolicy
from shared.adapters.identity.entra import EntraTokenProvider
from shared.config import DataverseSettings, EntraSettings, HttpSettings

# Every adapter test runs twice: against clean emulators, and with 10% 429s (Retry-After 1 s) and
# 5% connection resets on every API route of Dataverse and dotdigital. Tests that count requests
# exactly are marked ``exact_requests`` and run clean only: retries change the count, not results.
FAULTY_RULES = {
    "dataverse": [
        {"path": "/api/data/*", "status": 429, "retry_after": 1, "probability": 0.10},
        {"path": "/api/data/*", "reset": True, "probability": 0.05},
    ],
    "dotdigital": [
        {"path": "/r[123]/*", "status": 429, "retry_after": 1, "probability": 0.10},
        {"path": "/r[123]/*", "reset": True, "probability": 0.05},
    ],
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fault_mode" in metafunc.fixturenames:
        exact = metafunc.definition.get_closest_marker("exact_requests") is not None
        metafunc.parametrize("fault_mode", ["clean"] if exact else ["clean", "faulty"])


@pytest.fixture(autouse=True)
def _emulators(cluster: EmulatorCluster, fault_mode: str) -> None:
    cluster.reset()
    if fault_mode == "faulty":
        for system, rules in FAULTY_RULES.items():
            admin(cluster, system, "POST", "faults", {"seed": 11, "rules": rules})


@pytest.fixture
def http(cluster: EmulatorCluster) -> HttpSettings:
    return HttpSettings(timeout_s=10, ca_bundle=cluster.ca_bundle, max_attempts=8, max_wait_s=5)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fast_policy(sleeps: list[float]) -> RetryPolicy:
    """Real retry decisions, recorded instead of slept, so tests stay fast."""
    return RetryPolicy(max_attempts=8, max_wait_s=5, sleep=sleeps.append, random=lambda: 0.5)


@pytest.fixture
def entra_settings(cluster: EmulatorCluster) -> EntraSettings:
    described = cluster.describe()["entra"]
    client = described["default_client"]
    return EntraSettings(
        tenant_id=described["tenant_id"],
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        authority_host=described["base_url"],
    )


@pytest.fixture
def dataverse_settings(cluster: EmulatorCluster) -> DataverseSettings:
    return DataverseSettings(url=cluster.dataverse_server.base_url)


@pytest.fixture
def app_token(
    entra_settings: EntraSettings, http: HttpSettings, dataverse_settings: DataverseSettings
) -> Callable[[], str]:
    provider = EntraTokenProvider(entra_settings, http)
    return lambda: provider.app_token(dataverse_settings.scope)


def admin(
    cluster: EmulatorCluster, system: str, method: str, name: str, payload: Any = None
) -> Any:
    server = cluster.servers[system]
    response = requests.request(
        method,
        f"{server.base_url}/_emulator/{name}",
        json=payload,
        verify=cluster.ca_bundle,
        timeout=30,
    )
    response.raise_for_status()
    return response.json() if response.content else None
