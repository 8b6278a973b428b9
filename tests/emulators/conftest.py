"""Fixtures for the emulator tests: one cluster per session, reset before every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorCluster]:
    with EmulatorCluster(tmp_path_factory.mktemp("emulators")) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_cluster(cluster: EmulatorCluster) -> None:
    cluster.reset()


class Admin:
    """Calls one emulator's ``/_emulator/`` API over HTTPS."""

    def __init__(self, base_url: str, ca_bundle: str) -> None:
        self.base_url = base_url
        self.verify = ca_bundle

    def call(self, method: str, name: str, payload: Any = None, **params: Any) -> Any:
        response = requests.request(
            method,
            f"{self.base_url}/_emulator/{name}",
            json=payload,
            params=params,
            verify=self.verify,
            timeout=30,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def seed(self, payload: Any) -> Any:
        return self.call("POST", "seed", payload)

    def state(self, **params: Any) -> Any:
        return self.call("GET", "state", **params)

    def stats(self) -> Any:
        return self.call("GET", "stats")

    def faults(self, rules: list[dict[str, Any]], seed: int = 0) -> Any:
        return self.call("POST", "faults", {"rules": rules, "seed": seed})

    def configure(self, **settings: Any) -> Any:
        return self.call("POST", "config", settings)

    def advance_clock(self, seconds: float) -> Any:
        return self.call("POST", "clock", {"advance_seconds": seconds})


@pytest.fixture
def ca_bundle(cluster: EmulatorCluster) -> str:
    return cluster.ca_bundle


@pytest.fixture
def entra_admin(cluster: EmulatorCluster) -> Admin:
    return Admin(cluster.entra_server.base_url, cluster.ca_bundle)


@pytest.fixture
def dataverse_admin(cluster: EmulatorCluster) -> Admin:
    return Admin(cluster.dataverse_server.base_url, cluster.ca_bundle)


@pytest.fixture
def dotdigital_admin(cluster: EmulatorCluster) -> Admin:
    return Admin(cluster.dotdigital_server.base_url, cluster.ca_bundle)


def state_dir_of(cluster: EmulatorCluster) -> Path:
    return cluster.state_dir
