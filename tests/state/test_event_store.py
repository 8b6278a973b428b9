"""The engagement event store on Azurite: transactions, replays, chunks, races, pages, purge."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from devtools.azurite import AzuriteHandle
from shared.adapters.storage.event_store import TableEventStore
from shared.domain.engagement import (
    EMAIL_KINDS,
    EMPTY_SUMMARY,
    SUMMARY_ROW_KEY,
    EngagementEvent,
    EventKind,
    TimelineEntry,
    WriteResult,
    person_key,
    summarise,
)
from tests.fakes.event_store import InMemoryEventStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ANN = person_key("ann@example.com")
BOB = person_key("bob@example.com")
_tables = itertools.count(1)


@pytest.fixture
def service(azurite: AzuriteHandle) -> Iterator[TableServiceClient]:
    with TableServiceClient.from_connection_string(azurite.connection_string) as client:
        yield client


@pytest.fixture
def table_name() -> str:
    return f"engagement{next(_tables)}"


@pytest.fixture
def store(service: TableServiceClient, table_name: str) -> TableEventStore:
    return TableEventStore(service, table_name, sleep=lambda _: None)


def ev(n: int, kind: EventKind = EventKind.CLICK, *, email: str = "ann@example.com",
       minutes: int | None = None) -> EngagementEvent:
    at = T0 + timedelta(minutes=n if minutes is None else minutes)
    details = {"url": f"https://shop.example/p/{n}"} if kind in (
        EventKind.CLICK, EventKind.PAGE_VIEW) else {"mail_client": "Outlook"}
    return EngagementEvent(email, kind, at, f"campaign-{n % 3}", f"Campaign {n % 3}", details)


def everything(store: TableEventStore | InMemoryEventStore, key: str,
               kinds: set[EventKind] | None = None, limit: int = 500) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    continuation = None
    while True:
        page = store.timeline(key, kinds=kinds, limit=limit, continuation=continuation)
        entries.extend(page.events)
        if page.continuation is None:
            return entries
        continuation = page.continuation


def first_page_summary(store: TableEventStore | InMemoryEventStore, key: str) -> object:
    return store.timeline(key, limit=1).summary


def test_one_transaction_per_person_creates_the_events_and_the_summary(
    store: TableEventStore, service: TableServiceClient, table_name: str
) -> None:
    batch = [ev(1, EventKind.SEND), ev(2, EventKind.OPEN), ev(3),
             ev(4, EventKind.PAGE_VIEW, email="Bob@Example.com")]
    assert store.write(batch) == WriteResult(new=4, existing=0)
    assert store.transactions == 2

    page = store.timeline(ANN, limit=10)
    assert page.summary == summarise(batch[:3])
    assert page.events == tuple(e.entry() for e in reversed(batch[:3]))
    assert page.continuation is None
    # No row holds an address, in its keys or its values.
    rows = list(service.get_table_client(table_name).list_entities())
    assert len(rows) == 6
    assert not any("@" in str(value) for row in rows for value in [*row.values(), *row.keys()])
    assert {row["RowKey"] for row in rows if row["RowKey"] == SUMMARY_ROW_KEY}


def test_a_replayed_batch_writes_nothing_and_keeps_counts_exact(store: TableEventStore) -> None:
    batch = [ev(n, kind) for n, kind in enumerate(EventKind)]
    store.write(batch)
    before = store.timeline(ANN, limit=50)

    assert store.write(list(reversed(batch)) + batch[:2]) == WriteResult(new=0, existing=7)
    assert store.timeline(ANN, limit=50) == before

    # Half old, half new: only the new ones are added, and counted once.
    more = [ev(10 + n, EventKind.OPEN) for n in range(3)]
    assert store.write(batch[:3] + more) == WriteResult(new=3, existing=3)
    assert store.timeline(ANN, limit=50).summary == summarise(batch + more)


def test_more_than_a_transaction_for_one_person_is_chunked_and_counted_exactly(
    store: TableEventStore,
) -> None:
    batch = [ev(n, random.Random(n).choice(list(EventKind))) for n in range(250)]
    assert store.write(batch) == WriteResult(new=250, existing=0)
    assert store.transactions == 3  # 99 + 99 + 52 events, each with the summary

    # A replay overlapping a chunk boundary with new events on both sides of it.
    extra = [ev(n, EventKind.SEND) for n in range(250, 260)]
    assert store.write(batch[90:210] + extra) == WriteResult(new=10, existing=120)
    summary = store.timeline(ANN, limit=1).summary
    assert summary == summarise(batch + extra)
    assert everything(store, ANN) == sorted((e.entry() for e in batch + extra),
                                            key=lambda entry: entry.at, reverse=True)


def test_concurrent_writers_of_one_person_converge(
    service: TableServiceClient, azurite: AzuriteHandle, table_name: str
) -> None:
    pool = [ev(n, list(EventKind)[n % 5], minutes=n // 4) for n in range(120)]
    errors: list[BaseException] = []
    results: list[WriteResult] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        batch = rng.sample(pool, 70)
        try:
            with TableServiceClient.from_connection_string(azurite.connection_string) as own:
                results.append(TableEventStore(own, table_name).write(batch))
        except BaseException as error:  # reported below: a thread cannot fail the test
            errors.append(error)

    TableEventStore(service, table_name).timeline(ANN, limit=1)  # creates the table
    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    written = {e.event_id for seed in range(5) for e in random.Random(seed).sample(pool, 70)}
    store = TableEventStore(service, table_name)
    stored = everything(store, ANN)
    assert sum(result.new for result in results) == len(stored) == len(written)
    assert store.timeline(ANN, limit=1).summary == summarise(stored)


def test_a_summary_changed_between_read_and_write_is_re_read_not_overwritten(
    store: TableEventStore, service: TableServiceClient, table_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = TableEventStore(service, table_name)
    store.write([ev(1)])
    submit = store._submit
    raced: list[bool] = []

    def racing_submit(operations: list[Any], operation: str) -> bool:
        if not raced:  # another instance commits after our read of the summary
            raced.append(other.write([ev(2), ev(5)]).new == 2)
        return submit(operations, operation)

    monkeypatch.setattr(store, "_submit", racing_submit)
    # Only the summary's ETag conflicts: no event row is shared.
    assert store.write([ev(3), ev(4)]) == WriteResult(new=2, existing=0)
    assert raced == [True]
    assert store.transactions == 1 + 2  # the first write, the lost one, the retry
    assert store.timeline(ANN, limit=1).summary == summarise([ev(n) for n in range(1, 6)])


def test_timeline_is_one_query_per_page_summary_first_newest_first(
    store: TableEventStore,
) -> None:
    batch = [ev(n, list(EventKind)[n % 5]) for n in range(23)]
    store.write(batch)
    expected = sorted((e.entry() for e in batch), key=lambda entry: entry.at, reverse=True)

    pages, continuation = [], None
    while True:
        page = store.timeline(ANN, limit=5, continuation=continuation)
        pages.append(page)
        continuation = page.continuation
        if continuation is None:
            break
    assert store.queries == len(pages)
    assert pages[0].summary == summarise(batch)
    assert all(page.summary is None for page in pages[1:])
    assert all(len(page.events) <= 5 for page in pages)
    assert [entry for page in pages for entry in page.events] == expected

    # "Emails" only: filtered by the service, so pages stay within the limit.
    before, calls, continuation = store.queries, 0, None
    emails: list[TimelineEntry] = []
    while True:
        page = store.timeline(ANN, kinds=set(EMAIL_KINDS), limit=3, continuation=continuation)
        calls += 1
        assert len(page.events) <= 3
        emails.extend(page.events)
        continuation = page.continuation
        if continuation is None:
            break
    assert store.queries - before == calls
    assert emails == [entry for entry in expected if entry.kind in EMAIL_KINDS]


def test_an_unknown_person_has_an_empty_first_page(store: TableEventStore) -> None:
    page = store.timeline(BOB, limit=10)
    assert (page.summary, page.events, page.continuation) == (EMPTY_SUMMARY, (), None)
    with pytest.raises(ValueError):
        store.timeline("ann@example.com", limit=10)
    with pytest.raises(ValueError):
        store.timeline(BOB, limit=0)


def test_purge_deletes_old_events_and_recomputes_the_summaries(store: TableEventStore) -> None:
    ann = [ev(n, list(EventKind)[n % 5], minutes=n * 60) for n in range(150)]
    bob = [ev(n, EventKind.OPEN, email="bob@example.com", minutes=n) for n in range(3)]
    store.write(ann + bob)
    cutoff = T0 + timedelta(minutes=120 * 60 + 30)

    assert store.purge(cutoff) == 121 + 3
    kept = [e for e in ann if e.at >= cutoff]
    assert store.timeline(ANN, limit=1).summary == summarise(kept)
    assert everything(store, ANN) == [e.entry() for e in reversed(kept)]
    assert store.timeline(BOB, limit=5).summary == EMPTY_SUMMARY
    assert store.purge(cutoff) == 0

    # A purged event read again is stored again: retention is about age, not identity.
    assert store.write(ann[:1]).new == 1


def test_the_fake_and_the_table_store_agree(store: TableEventStore) -> None:
    fake = InMemoryEventStore()
    batch = [ev(n, list(EventKind)[(n * 7) % 5], email=["ann@example.com", "BOB@example.com"][
        n % 2], minutes=n // 3) for n in range(40)]
    for target in (store, fake):
        assert target.write(batch[:25]) == WriteResult(25, 0)
        assert target.write(batch[10:]) == WriteResult(15, 15)
        assert target.purge(T0 + timedelta(minutes=2)) == 6
    for key in (ANN, BOB):
        assert first_page_summary(store, key) == first_page_summary(fake, key)
        for kinds in (None, set(EMAIL_KINDS), {EventKind.CLICK}):
            assert everything(store, key, kinds, limit=4) == everything(fake, key, kinds, 4)
