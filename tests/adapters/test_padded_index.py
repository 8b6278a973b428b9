"""Padded addresses are found through an index read with the lookups, not on every lookup."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.cluster import EmulatorCluster
from shared.adapters.dataverse import records as dataverse_records
from shared.adapters.dataverse.client import DataverseClient, Query
from shared.adapters.dataverse.padded_index import PADDED_INDEX_TTL_S, PaddedIndex, PaddedRows
from shared.adapters.dataverse.records import (
    PADDED_FILTER,
    TABLES,
    DataverseCrmRecords,
    _records,
)
from shared.adapters.http.policy import RetryPolicy
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
    ) -> Iterator[Iterator[dict[str, Any]]]:
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
    app_token()  # the token is cached before the tests count requests
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


@pytest.mark.parametrize("collation", ["CI_AI", "CI_AS"])
def test_a_lookup_returns_only_records_whose_own_address_is_the_one_asked_for(
    cluster: EmulatorCluster, spy: SpyClient, collation: str
) -> None:
    admin(cluster, "dataverse", "POST", "config", {"collation": collation})
    records = DataverseCrmRecords(spy, padded=PaddedIndex(monotonic=ManualClock()))
    plain, accented = _contact("jose@example.com"), _contact("JOSÉ@example.com")
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": [plain, accented]}})
    assert [r.row_id for r in records.find_by_email_keys(["jose@example.com"])] == [
        plain["contactid"]]
    assert [r.row_id for r in records.find_by_email_keys(["josé@example.com"])] == [
        accented["contactid"]]


def test_every_kind_of_surrounding_whitespace_is_seen_through(
    cluster: EmulatorCluster, spy: SpyClient
) -> None:
    records = DataverseCrmRecords(spy, padded=PaddedIndex(monotonic=ManualClock()))
    forms = [" {}", "{}  ", "\t{}", "{}\t", "\u00a0{}", "{}\u00a0", "{}\n", "\r\n{}\r\n",
             "{}\u2003", "\t {} \t"]
    rows = [_contact(form.format(f"w{i}@example.com")) for i, form in enumerate(forms)]
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": rows}})
    found = records.find_by_email_keys([f"w{i}@example.com" for i in range(len(forms))])
    assert sorted(r.row_id for r in found) == sorted(row["contactid"] for row in rows)


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


class GatedRefreshClient(DataverseClient):
    """Holds the refreshing lookup until released; other lookups meet at a barrier, which only
    lookups that run side by side can pass."""

    refresh_started: threading.Event
    release_refresh: threading.Event
    side_by_side: threading.Barrier

    def iter_read_batch(
        self, queries: Sequence[Query], *, absent_ok: Any = ()
    ) -> Iterator[Iterator[dict[str, Any]]]:
        if any(query.filter == PADDED_FILTER for query in queries):
            self.refresh_started.set()
            self.release_refresh.wait(10)
        else:
            self.side_by_side.wait(10)
        return super().iter_read_batch(queries, absent_ok=absent_ok)


def test_lookups_that_waited_for_a_refresh_then_run_side_by_side(
    dataverse_settings: DataverseSettings, http: HttpSettings, app_token: Callable[[], str],
    fast_policy: RetryPolicy,
) -> None:
    client = GatedRefreshClient(dataverse_settings, http, app_token, policy=fast_policy)
    client.refresh_started, client.release_refresh = threading.Event(), threading.Event()
    client.side_by_side = threading.Barrier(2)
    records = DataverseCrmRecords(client, padded=PaddedIndex(monotonic=ManualClock()))
    failures: list[BaseException] = []

    def look_up(email: str) -> None:
        try:
            records.find_by_email_keys([email])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    refreshing = threading.Thread(target=look_up, args=("r@example.com",))
    refreshing.start()
    assert client.refresh_started.wait(10)
    waiting = [threading.Thread(target=look_up, args=(f"w{i}@example.com",)) for i in range(2)]
    for thread in waiting:
        thread.start()
    time.sleep(0.2)  # both find the index stale and wait for the refresh to end
    client.release_refresh.set()
    for thread in [refreshing, *waiting]:
        thread.join(30)
    # Had the refresh lock been held through every lookup, the second waiter could not meet the
    # first at the barrier, which breaks after 10 s.
    assert failures == []


def test_the_index_keeps_every_stored_form_per_table() -> None:
    rows = PaddedRows()
    contacts, leads = TABLES[0], TABLES[1]
    padded_contacts = [{"contactid": "c1", "emailaddress1": " A@x.org"},
                       {"contactid": "c2", "emailaddress1": "a@x.org  "}]
    padded_leads = [{"leadid": "l1", "emailaddress1": " a@X.org "},
                    {"leadid": "l2", "emailaddress1": "  "}]
    # Rows of a padded part go into the index whether or not they were asked for.
    assert _records(contacts, padded_contacts, {"b@x.org"}, rows) == []
    assert [r.row_id for r in _records(leads, iter(padded_leads), {"a@x.org"}, rows)] == ["l1"]
    index = PaddedIndex()
    index.replace(rows, read_at=0.0)

    found = index.stored_forms(["a@x.org", "b@x.org"], ["contact", "lead", "account"])

    assert found == {"contact": {" A@x.org", "a@x.org  "}, "lead": {" a@X.org "}}
    assert index.stored_forms(["b@x.org"], ["contact"]) == {}


def test_padded_rows_are_read_page_by_page_and_all_indexed(
    cluster: EmulatorCluster, spy: SpyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataverse_records, "PADDED_PAGE_SIZE", 2)
    records = DataverseCrmRecords(spy, padded=PaddedIndex(monotonic=ManualClock()))
    rows = [_contact(f" p{i}@example.com") for i in range(5)]
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": rows}})
    before = _requests(cluster)

    assert records.find_by_email_keys(["p0@example.com"])[0].row_id == rows[0]["contactid"]
    # The $batch carries the first page of two; the other three rows take two more pages.
    assert _requests(cluster) - before == 3

    found = records.find_by_email_keys([f"p{i}@example.com" for i in range(5)])
    assert sorted(r.row_id for r in found) == sorted(row["contactid"] for row in rows)


_TABLE_NAMES = st.sampled_from(["contact", "lead", "account"])
_KEYS = st.text(alphabet="abé@.x", min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_TABLE_NAMES, _KEYS, st.text(max_size=8)), max_size=40),
       st.lists(_KEYS, max_size=10))
def test_the_packed_index_answers_as_a_plain_mapping_would(
    entries: list[tuple[str, str, str]], asked: list[str]
) -> None:
    rows = PaddedRows()
    expected: dict[str, set[str]] = {}
    for table, key, stored in entries:
        rows.add(table, key, stored)
        if key in asked:
            expected.setdefault(table, set()).add(stored)
    index = PaddedIndex()
    index.replace(rows, read_at=0.0)

    assert index.stored_forms(asked, ["contact", "lead", "account"]) == expected
