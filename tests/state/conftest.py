"""Every state test runs twice: on the in-memory fake and on Table Storage (Azurite)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient

from devtools.azurite import AzuriteHandle
from shared.adapters.storage.sync_state import TableSyncStateStore
from shared.services.ports import SyncStateStore
from tests.fakes.state import InMemorySyncStateStore

_table_numbers = itertools.count(1)


class StepClock:
    """A clock that moves one second per reading, so stored times are predictable."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def table_client(azurite: AzuriteHandle) -> Iterator[TableClient]:
    # A table per test isolates tests without restarting Azurite.
    name = f"state{next(_table_numbers)}"
    with TableClient.from_connection_string(azurite.connection_string, name) as client:
        yield client


@pytest.fixture
def make_store(
    request: pytest.FixtureRequest, clock: StepClock
) -> Callable[[], SyncStateStore]:
    """Builds stores that share one backing state (like two function instances would)."""
    if request.param == "memory":
        shared = InMemorySyncStateStore(clock=clock)
        return lambda: shared
    table: TableClient = request.getfixturevalue("table_client")
    return lambda: TableSyncStateStore(table, clock=clock)


@pytest.fixture
def store(make_store: Callable[[], SyncStateStore]) -> SyncStateStore:
    return make_store()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "make_store" in metafunc.fixturenames:
        metafunc.parametrize("make_store", ["memory", "tables"], indirect=True)
