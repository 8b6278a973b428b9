"""Padded addresses are found through an index read with the lookups, not on every lookup."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from emulators.cluster import EmulatorCluster
from shared.adapters.dataverse import DataverseClient, Query
from shared.adapters.dataverse_records import (
    PADDED_FILTER,
    PADDED_INDEX_TTL_S,
    TABLES,
    DataverseCrmRecords,
    PaddedIndex,
    _add_padded_rows,
)
from shared.adapters.http_policy import RetryPolicy
from shared.config import DataverseSettings, HttpSettings
from tests.adapters.conftest import admin


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SpyClient(DataverseClient):
    """Records the filters of every batched read."""

    filters: list[list[str | None]]

    def iter_read_batch(
        self, queries: Sequence[Query], *, absent_ok: Any = ()
    ) -> Iterator[list[dict[str, Any]]]:
        self.filters.append([query.filter for query in queries])
        return super().iter_read_batch(queries, absent_ok=absent_ok)


def _contact(email: str) -> dict[str, Any]:
    return {"contactid": str(uuid.uuid4()), "emailaddress1": email, "lastname": "Test"}


def _requests(cluster: EmulatorCluster) -> int:
    return int(admin(cluster, "dataverse", "GET", "stats")["requests"])


@pytest.fixture
def spy(
    dataverse_settings: DataverseSettings, http: HttpSettings, app_token: Callable[[], str],
    fast_policy: RetryPolicy,
) -> SpyClient:
    client = SpyClient(dataverse_settings, http, app_token, policy=fast_policy)
    client.filters = []
    client.who_am_i()
    return client


def test_padded_rows_are_read_once_then_asked_for_as_stored_until_the_index_is_stale(
    cluster: EmulatorCluster, spy: SpyClient
) -> None:
    clock = ManualClock()
    records = DataverseCrmRecords(spy, padded=PaddedIndex(monotonic=clock))
    first, other = _contact("  first@example.com"), _contact("other@example.com ")
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": [first, other]}})

    assert [r.row_id for r in records.find_by_email_keys(["first@example.com"])] == [
        first["contactid"]]
    assert spy.filters[-1].count(PADDED_FILTER) == 3  # one per table: the index is built

    before = _requests(cluster)
    found = records.find_by_email_keys(["other@example.com", "nobody@example.com"])
    assert [r.row_id for r in found] == [other["contactid"]]
    assert _requests(cluster) - before == 1  # still one $batch
    assert PADDED_FILTER not in spy.filters[-1]

    # A row padded after the index was read is missed until the index is stale ...
    late = _contact(" late@example.com")
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": [late]}})
    assert records.find_by_email_keys(["late@example.com"]) == []
    # ... and found from the next refresh on.
    clock.now += PADDED_INDEX_TTL_S
    assert [r.row_id for r in records.find_by_email_keys(["late@example.com"])] == [
        late["contactid"]]
    assert PADDED_FILTER in spy.filters[-1]


def test_values_come_from_the_lookup_not_from_the_index(
    cluster: EmulatorCluster, spy: SpyClient
) -> None:
    records = DataverseCrmRecords(spy, padded=PaddedIndex(monotonic=ManualClock()))
    row = _contact(" value@example.com")
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": [row]}})
    assert [r.opt_in for r in records.find_by_email_keys(["value@example.com"])] == [None]
    row["ec_optintype"] = 100000002
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": [row]}})
    found = records.find_by_email_keys(["value@example.com"])
    assert [int(r.opt_in) for r in found if r.opt_in is not None] == [100000002]


def test_sessions_finding_the_index_stale_together_read_the_padded_rows_once(
    cluster: EmulatorCluster, spy: SpyClient
) -> None:
    records = DataverseCrmRecords(spy, padded=PaddedIndex(monotonic=ManualClock()))
    rows = [_contact(f" s{i}@example.com") for i in range(4)]
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": rows}})
    results: dict[int, list[str]] = {}

    def look_up(index: int) -> None:
        found = records.find_by_email_keys([f"s{index}@example.com"])
        results[index] = [r.row_id for r in found]

    threads = [threading.Thread(target=look_up, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {i: [rows[i]["contactid"]] for i in range(4)}
    assert sum(filters.count(PADDED_FILTER) for filters in spy.filters) == 3  # one refresh


def test_the_index_keeps_every_stored_form_per_table() -> None:
    rows: dict[int, tuple[str, ...]] = {}
    contacts, leads = TABLES[0], TABLES[1]
    _add_padded_rows(contacts, [{"emailaddress1": " A@x.org"}, {"emailaddress1": "a@x.org  "}],
                     rows)
    _add_padded_rows(leads, [{"emailaddress1": " a@X.org "}, {"emailaddress1": "  "}], rows)
    index = PaddedIndex()
    index.replace(rows, read_at=0.0)

    found = index.stored_forms(["a@x.org", "b@x.org"], ["contact", "lead", "account"])

    assert found == {"contact": {" A@x.org", "a@x.org  "}, "lead": {" a@X.org "}}
    assert index.stored_forms(["b@x.org"], ["contact"]) == {}
