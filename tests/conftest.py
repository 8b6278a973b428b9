"""Fixtures for the whole suite: Azurite and the emulators, each started once on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.cluster import EmulatorCluster
from shared.adapters.storage import rows
from tests.azurite_fixture import azurite

__all__ = ["azurite", "cluster"]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorCluster]:
    with EmulatorCluster(tmp_path_factory.mktemp("emulators")) as running:
        yield running


@pytest.fixture(autouse=True)
def tables_created_afresh() -> None:
    """Forget which tables the process has created. The app keeps that once per process and
    table address; a test's stack may run an Azurite on a port an earlier stack's used, and the
    new, empty Azurite would then be taken to hold the old one's tables."""
    rows._created.clear()
