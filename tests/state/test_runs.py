"""Run accounting: every batch counts once, and exactly one caller sees the run complete."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import DomainError, NotFound, PreconditionFailed
from shared.services.ports import RunStatus, SyncKey, SyncStateStore

KEY = SyncKey("3f2504e0-4f89-11d3-9a0c-0305e82c3301", "ContactOptIn")
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = SINCE + timedelta(hours=1)
_run_ids = itertools.count(1)


def new_run(store: SyncStateStore, *, dry_run: bool = False) -> str:
    run_id = f"20261129T120000Z-{next(_run_ids)}"
    store.start_run(KEY, run_id, since=SINCE, until=UNTIL, dry_run=dry_run)
    return run_id


def test_a_started_run_is_publishing_with_its_window(store: SyncStateStore) -> None:
    run = store.start_run(KEY, "r-1", since=SINCE, until=UNTIL, dry_run=True)

    assert store.get_run(KEY, "r-1") == run
    assert (run.status, run.since, run.until, run.dry_run) == (
        RunStatus.PUBLISHING, SINCE, UNTIL, True)
    assert (run.batches_published, run.batches_applied) == (0, 0)
    assert run.started_at.tzinfo == UTC and run.completed_at is None and run.counters == {}
    assert store.get_run(KEY, "r-2") is None


def test_starting_a_run_again_returns_it_but_not_with_another_window(
    store: SyncStateStore,
) -> None:
    run = store.start_run(KEY, "r-1", since=SINCE, until=UNTIL)
    assert store.start_run(KEY, "r-1", since=SINCE, until=UNTIL) == run
    with pytest.raises(DomainError, match="already exists"):
        store.start_run(KEY, "r-1", since=SINCE, until=UNTIL + timedelta(seconds=1))
    assert store.get_run(KEY, "r-1") == run


def test_a_run_completes_when_its_last_batch_is_applied(store: SyncStateStore) -> None:
    run_id = new_run(store)
    store.record_published(KEY, run_id, batches=2)
    first = store.mark_batch_applied(KEY, run_id, 0, {"read": 100, "changed": 3})
    update = store.record_published(KEY, run_id, batches=3, done=True)
    second = store.mark_batch_applied(KEY, run_id, 2, {"read": 100, "skipped_malformed": 1})
    last = store.mark_batch_applied(KEY, run_id, 1, {"read": 50, "changed": 7})

    assert first.applied_now and not first.completed_now
    assert update.run.status is RunStatus.APPLYING and not update.completed_now
    assert update.run.batches_published - update.run.batches_applied == 2  # 3 out, 1 applied
    assert second.applied_now and not second.completed_now
    assert last.applied_now and last.completed_now
    final = store.get_run(KEY, run_id)
    assert final == last.run
    assert final is not None and final.status is RunStatus.COMPLETED
    assert final.completed_at is not None
    assert final.batches_published - final.batches_applied == 0
    assert final.counters == {"changed": 10, "read": 250, "skipped_malformed": 1}


def test_a_redelivered_batch_changes_nothing(store: SyncStateStore) -> None:
    run_id = new_run(store)
    store.record_published(KEY, run_id, batches=2, done=True)
    store.mark_batch_applied(KEY, run_id, 0, {"changed": 5})
    before = store.get_run(KEY, run_id)

    again = store.mark_batch_applied(KEY, run_id, 0, {"changed": 5})

    assert not again.applied_now and not again.completed_now
    assert again.run == before == store.get_run(KEY, run_id)


def test_the_last_redelivery_does_not_complete_the_run_twice(store: SyncStateStore) -> None:
    run_id = new_run(store)
    store.record_published(KEY, run_id, batches=1, done=True)
    outcomes = [store.mark_batch_applied(KEY, run_id, 0, {"changed": 1}) for _ in range(3)]

    assert [o.completed_now for o in outcomes] == [True, False, False]
    assert [o.applied_now for o in outcomes] == [True, False, False]


def test_batches_applied_before_publishing_ends_complete_it_on_the_readers_call(
    store: SyncStateStore,
) -> None:
    run_id = new_run(store)
    store.record_published(KEY, run_id, batches=2)
    store.mark_batch_applied(KEY, run_id, 0, {})
    store.mark_batch_applied(KEY, run_id, 1, {})

    done = store.record_published(KEY, run_id, batches=2, done=True)
    repeated = store.record_published(KEY, run_id, batches=2, done=True)

    assert done.completed_now and done.run.status is RunStatus.COMPLETED
    assert not repeated.completed_now and repeated.run == done.run


def test_a_run_with_no_batches_completes_when_publishing_ends(store: SyncStateStore) -> None:
    run_id = new_run(store)
    update = store.record_published(KEY, run_id, batches=0, done=True)
    assert update.completed_now and update.run.status is RunStatus.COMPLETED


def test_the_published_count_never_shrinks(store: SyncStateStore) -> None:
    run_id = new_run(store)
    store.record_published(KEY, run_id, batches=5)
    update = store.record_published(KEY, run_id, batches=3)
    assert update.run.batches_published == 5 and not update.completed_now


def test_a_finished_run_refuses_more_batches(store: SyncStateStore) -> None:
    run_id = new_run(store)
    store.record_published(KEY, run_id, batches=2, done=True)
    before = store.get_run(KEY, run_id)

    with pytest.raises(DomainError, match="beyond"):
        store.mark_batch_applied(KEY, run_id, 2, {"changed": 1})
    with pytest.raises(DomainError, match="finished publishing"):
        store.record_published(KEY, run_id, batches=3)
    assert store.get_run(KEY, run_id) == before


def test_publishing_cannot_end_below_an_applied_batch(store: SyncStateStore) -> None:
    run_id = new_run(store)
    store.mark_batch_applied(KEY, run_id, 4, {})  # published, but not yet recorded
    with pytest.raises(DomainError, match="applied"):
        store.record_published(KEY, run_id, batches=4, done=True)
    assert store.record_published(KEY, run_id, batches=5).run.status is RunStatus.PUBLISHING


def test_unknown_runs_are_not_found(store: SyncStateStore) -> None:
    with pytest.raises(NotFound):
        store.record_published(KEY, "nope", batches=1)
    with pytest.raises(NotFound):
        store.mark_batch_applied(KEY, "nope", 0, {})


@pytest.mark.parametrize("batch, counters, message", [
    (-1, {}, "batch number"),
    (True, {}, "batch number"),
    (10_000_000, {}, "batch number"),
    (0, {"changed": -1}, "counter changed"),
    (0, {"changed": True}, "counter changed"),
    (0, {"changed": 1.5}, "counter changed"),
    (0, {"Changed": 1}, "counter name"),
    (0, {"has space": 1}, "counter name"),
])
def test_bad_batch_input_is_rejected_and_nothing_changes(
    store: SyncStateStore, batch: int, counters: dict[str, int], message: str
) -> None:
    run_id = new_run(store)
    store.record_published(KEY, run_id, batches=1)
    before = store.get_run(KEY, run_id)
    with pytest.raises(ValueError, match=message):
        store.mark_batch_applied(KEY, run_id, batch, counters)
    assert store.get_run(KEY, run_id) == before


@pytest.mark.parametrize("run_id", ["", "has space", "a/b", "x" * 65, "#1"])
def test_bad_run_ids_are_rejected(store: SyncStateStore, run_id: str) -> None:
    with pytest.raises(ValueError, match="run id"):
        store.start_run(KEY, run_id, since=SINCE, until=UNTIL)


def test_a_run_window_must_not_be_reversed_or_naive(store: SyncStateStore) -> None:
    with pytest.raises(ValueError, match="after"):
        store.start_run(KEY, "r-1", since=UNTIL, until=SINCE)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_run(KEY, "r-1", since=datetime(2026, 11, 1), until=UNTIL)
    assert store.get_run(KEY, "r-1") is None


def test_concurrent_appliers_count_every_batch_once(
    make_store: Callable[[], SyncStateStore],
) -> None:
    setup = make_store()
    run_id = new_run(setup)
    batches = 12
    setup.record_published(KEY, run_id, batches=batches, done=True)
    # Every batch delivered twice, to eight workers with their own store instances.
    deliveries = [b for b in range(batches) for _ in range(2)]

    def deliver(batch: int) -> tuple[bool, bool]:
        store = make_store()
        for _ in range(20):  # a lost race is retryable: Service Bus would redeliver
            try:
                outcome = store.mark_batch_applied(KEY, run_id, batch, {"changed": batch})
            except PreconditionFailed:
                continue
            return outcome.applied_now, outcome.completed_now
        raise AssertionError(f"batch {batch} never got through")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(deliver, deliveries))

    assert sum(applied for applied, _ in results) == batches
    assert sum(completed for _, completed in results) == 1
    final = setup.get_run(KEY, run_id)
    assert final is not None and final.status is RunStatus.COMPLETED
    assert final.counters == {"changed": sum(range(batches))}


def test_the_store_settles_forty_concurrent_appliers_without_redelivery(
    make_store: Callable[[], SyncStateStore],
) -> None:
    # Forty sessions (four instances of host.json's ten) applying one run's batches at once:
    # each must get through on its first delivery, or its redelivery would count its records as
    # unchanged (they were written by the first).
    setup = make_store()
    run_id = new_run(setup)
    batches = 40
    setup.record_published(KEY, run_id, batches=batches, done=True)
    start = threading.Barrier(batches)

    def deliver(batch: int) -> bool:
        store = make_store()
        start.wait(timeout=30)
        return store.mark_batch_applied(KEY, run_id, batch, {"changed": 1}).applied_now

    with ThreadPoolExecutor(max_workers=batches) as pool:
        assert all(pool.map(deliver, range(batches)))
    final = setup.get_run(KEY, run_id)
    assert final is not None and final.status is RunStatus.COMPLETED
    assert final.counters == {"changed": batches}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), batches=st.integers(min_value=0, max_value=6))
def test_any_order_and_duplication_completes_exactly_once(
    store: SyncStateStore, data: st.DataObject, batches: int
) -> None:
    # Each example has its own run, so sharing the fixture's store between examples is safe.
    run_id = new_run(store)
    deliveries = data.draw(st.lists(st.integers(0, max(batches - 1, 0)), max_size=3 * batches)
                           .map(lambda extra: list(range(batches)) + extra)
                           .flatmap(st.permutations))
    done_at = data.draw(st.integers(0, len(deliveries)))
    completions = 0
    for position, batch in enumerate([*deliveries, None]):
        if position == done_at:
            completions += store.record_published(KEY, run_id, batches=batches,
                                                  done=True).completed_now
        if batch is not None:
            completions += store.mark_batch_applied(KEY, run_id, batch, {"read": 10}).completed_now

    final = store.get_run(KEY, run_id)
    assert completions == 1
    assert final is not None and final.status is RunStatus.COMPLETED
    assert final.batches_applied == batches
    assert final.counters == ({"read": 10 * batches} if batches else {})


def test_the_count_is_exact_when_forty_appliers_race_the_end_of_publishing(
    make_store: Callable[[], SyncStateStore],
) -> None:
    # The reader declares publishing done while the forty are applying: whichever side sees the
    # last outcome must complete the run, exactly once, with every batch's counters in it.
    setup = make_store()
    run_id = new_run(setup)
    batches = 40
    setup.record_published(KEY, run_id, batches=batches)
    start = threading.Barrier(batches + 1)

    def deliver(batch: int) -> bool:
        store = make_store()
        start.wait(timeout=30)
        return store.mark_batch_applied(KEY, run_id, batch, {"changed": batch + 1}).completed_now

    def end_publishing() -> bool:
        store = make_store()
        start.wait(timeout=30)
        return store.record_published(KEY, run_id, batches=batches, done=True).completed_now

    with ThreadPoolExecutor(max_workers=batches + 1) as pool:
        reader = pool.submit(end_publishing)
        completions = sum(pool.map(deliver, range(batches))) + reader.result()
    assert completions == 1
    final = setup.get_run(KEY, run_id)
    assert final is not None and final.status is RunStatus.COMPLETED
    assert final.batches_applied == batches
    assert final.counters == {"changed": sum(range(1, batches + 1))}


def test_an_open_run_reports_the_sum_of_its_applied_batches(store: SyncStateStore) -> None:
    run_id = new_run(store)
    store.record_published(KEY, run_id, batches=3)
    store.mark_batch_applied(KEY, run_id, 0, {"changed": 2, "items": 5})
    store.mark_batch_applied(KEY, run_id, 2, {"changed": 1, "items": 4})
    run = store.get_run(KEY, run_id)
    assert run is not None and run.status is RunStatus.PUBLISHING
    assert run.batches_applied == 2
    assert run.counters == {"changed": 3, "items": 9}


def test_retention_removes_old_completed_runs_and_nothing_else(
    store: SyncStateStore, clock: Any
) -> None:
    old_done = new_run(store)
    store.record_published(KEY, old_done, batches=2, done=True)
    for batch in range(2):
        store.mark_batch_applied(KEY, old_done, batch, {"changed": 1})
    old_open = new_run(store)
    store.record_published(KEY, old_open, batches=2, done=True)
    store.mark_batch_applied(KEY, old_open, 0, {"changed": 1})
    store.advance_watermark(KEY, clock.now, etag=None)
    cutoff = clock.now + timedelta(seconds=1)
    clock.now += timedelta(days=1)
    recent = new_run(store)
    store.record_published(KEY, recent, batches=1, done=True)
    store.mark_batch_applied(KEY, recent, 0, {"changed": 1})

    assert store.purge_runs(cutoff) == 1
    assert store.get_run(KEY, old_done) is None
    open_run = store.get_run(KEY, old_open)
    assert open_run is not None and open_run.counters == {"changed": 1}
    assert store.get_run(KEY, recent) is not None
    assert store.get_watermark(KEY) is not None
    assert store.purge_runs(cutoff) == 0  # nothing left to remove: a repeat is harmless
