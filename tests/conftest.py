"""Fixtures for the whole suite: Azurite and the emulators, each started once on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.cluster import EmulatorCluster
from tests.azurite_fixture import azurite

__all__ = ["azurite", "cluster"]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorCluster]:
    with EmulatorCluster(tmp_path_factory.mktemp("emulators")) as running:
        yield running
