"""Adapter tests talk to the emulators over HTTPS; each test starts from clean emulators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from shared.adapters.http_policy import RetryPolicy
from shared.adapters.msal_auth import EntraTokenProvider
from shared.config import DataverseSettings, EntraSettings, HttpSettings


@pytest.fixture(autouse=True)
def _clean(cluster: EmulatorCluster) -> None:
    cluster.reset()


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
