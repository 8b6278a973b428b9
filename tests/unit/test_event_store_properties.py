"""Property: however batches of events are delivered (replayed, duplicated, reordered, split
differently), the store ends with the same events and the same summaries as one clean write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.engagement import (
    EngagementEvent,
    EventKind,
    TimelineEntry,
    person_key,
    summarise,
)
from tests.fakes.event_store import InMemoryEventStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SPELLINGS = {"ann": ["ann@example.com", " ANN@example.com"], "bob": ["bob@example.com"],
             "cy": ["Cy@Example.com"]}

events = st.builds(
    lambda person, spelling, kind, seconds, source, url: EngagementEvent(
        SPELLINGS[person][spelling % len(SPELLINGS[person])], kind,
        T0 + timedelta(seconds=seconds), f"campaign-{source}", f"Campaign {source}",
        {"url": f"https://x.example/{url}"} if kind in (EventKind.CLICK, EventKind.PAGE_VIEW)
        else {},
    ),
    st.sampled_from(sorted(SPELLINGS)), st.integers(0, 1), st.sampled_from(list(EventKind)),
    st.integers(0, 5), st.integers(1, 2), st.integers(1, 2),
)


def _state(store: InMemoryEventStore) -> dict[str, object]:
    state: dict[str, object] = {}
    for person in SPELLINGS:
        key = person_key(f"{person}@example.com")
        state[person] = (store.entries(key), store.summary(key))
    return state


@given(
    batches=st.lists(st.lists(events, max_size=8), min_size=1, max_size=4),
    deliveries=st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=10),
)
@settings(max_examples=150, deadline=None)
def test_replays_duplicates_and_reordering_change_nothing(
    batches: list[list[EngagementEvent]], deliveries: list[tuple[int, bool]]
) -> None:
    once = InMemoryEventStore()
    for batch in batches:
        once.write(batch)

    messy = InMemoryEventStore()
    # Every batch at least once, plus redeliveries in any order, some reversed inside.
    plan = [(n, False) for n in reversed(range(len(batches)))]
    plan += [(n % len(batches), flip) for n, flip in deliveries]
    new = existing = 0
    for number, flip in plan:
        batch = batches[number]
        result = messy.write(list(reversed(batch)) if flip else batch + batch[:1])
        new, existing = new + result.new, existing + result.existing

    assert _state(messy) == _state(once)
    distinct = {event.event_id for batch in batches for event in batch}
    assert new == len(distinct)
    for person in SPELLINGS:
        key = person_key(f"{person}@example.com")
        stored = messy.entries(key)
        # The summary counts exactly the stored events, whichever reading of each won.
        assert messy.summary(key) == summarise(stored)
        assert [entry.at for entry in stored] == sorted((e.at for e in stored), reverse=True)


@given(batch=st.lists(events, max_size=20), limit=st.integers(1, 6),
       kinds=st.none() | st.sets(st.sampled_from(list(EventKind)), min_size=1))
@settings(max_examples=100, deadline=None)
def test_pages_join_up_to_the_filtered_timeline_one_query_each(
    batch: list[EngagementEvent], limit: int, kinds: set[EventKind] | None
) -> None:
    store = InMemoryEventStore()
    store.write(batch)
    key = person_key("ann@example.com")
    wanted = set(EventKind) if kinds is None else kinds
    seen: list[TimelineEntry] = []
    continuation, calls = None, 0
    while True:
        page = store.timeline(key, kinds=kinds, limit=limit, continuation=continuation)
        calls += 1
        assert len(page.events) <= limit
        assert (page.summary is not None) == (calls == 1)
        seen.extend(page.events)
        continuation = page.continuation
        if continuation is None:
            break
    assert store.queries == calls
    assert seen == [entry for entry in store.entries(key) if entry.kind in wanted]
