"""Watermarks only move forward; checkpoints resume; every lost race is PreconditionFailed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

import pytest

from shared.errors import DomainError, PreconditionFailed
from shared.services.ports import PageCursor, SyncKey, SyncStateStore

KEY = SyncKey("3f2504e0-4f89-11d3-9a0c-0305e82c3301", "ContactOptIn")
OTHER = SyncKey("9b2c1e7a-0000-4000-8000-000000000002", "ContactOptIn")
T0 = datetime(2026, 11, 1, 8, 30, 15, 123456, tzinfo=UTC)


def cursor(page: int = 0, batch: int = 0) -> PageCursor:
    return PageCursor(run_id="20261129T120000Z-a1", since=T0, until=T0 + timedelta(hours=1),
                      marker=f"marker-{page}" if page else None, pages_read=page,
                      next_batch=batch)


# --- watermark ------------------------------------------------------------------------------------
def test_no_watermark_before_the_first_run(store: SyncStateStore) -> None:
    assert store.get_watermark(KEY) is None


def test_watermark_is_created_then_read_back_in_utc(store: SyncStateStore) -> None:
    paris = timezone(timedelta(hours=1))
    created = store.advance_watermark(KEY, T0.astimezone(paris), etag=None)

    read = store.get_watermark(KEY)
    assert read == created
    assert read is not None and read.value == T0 and read.value.tzinfo == UTC
    assert store.get_watermark(OTHER) is None


def test_watermark_moves_forward_with_a_new_etag(store: SyncStateStore) -> None:
    first = store.advance_watermark(KEY, T0, etag=None)
    second = store.advance_watermark(KEY, T0 + timedelta(minutes=5), etag=first.etag)

    assert second.value == T0 + timedelta(minutes=5)
    assert second.etag != first.etag
    assert store.get_watermark(KEY) == second


def test_watermark_never_moves_back(store: SyncStateStore) -> None:
    current = store.advance_watermark(KEY, T0, etag=None)

    with pytest.raises(DomainError, match="move back"):
        store.advance_watermark(KEY, T0 - timedelta(microseconds=1), etag=current.etag)
    assert store.get_watermark(KEY) == current


def test_advancing_to_the_same_time_is_a_no_op(store: SyncStateStore) -> None:
    current = store.advance_watermark(KEY, T0, etag=None)

    assert store.advance_watermark(KEY, T0, etag=current.etag) == current
    assert store.get_watermark(KEY) == current


def test_two_writers_from_the_same_read_one_wins(
    make_store: Callable[[], SyncStateStore],
) -> None:
    first, second = make_store(), make_store()
    start = first.advance_watermark(KEY, T0, etag=None)
    seen_by_second = second.get_watermark(KEY)
    assert seen_by_second is not None

    won = first.advance_watermark(KEY, T0 + timedelta(minutes=1), etag=start.etag)
    with pytest.raises(PreconditionFailed):
        second.advance_watermark(KEY, T0 + timedelta(minutes=2), etag=seen_by_second.etag)
    assert second.get_watermark(KEY) == won


def test_creating_a_watermark_that_exists_or_replacing_one_that_does_not_loses(
    store: SyncStateStore,
) -> None:
    with pytest.raises(PreconditionFailed):
        store.advance_watermark(KEY, T0, etag='W/"made-up"')
    assert store.get_watermark(KEY) is None

    current = store.advance_watermark(KEY, T0, etag=None)
    with pytest.raises(PreconditionFailed):
        store.advance_watermark(KEY, T0 + timedelta(minutes=1), etag=None)
    assert store.get_watermark(KEY) == current


@pytest.mark.parametrize("bad_key", [
    SyncKey("", "ContactOptIn"), SyncKey("a/b", "ContactOptIn"), SyncKey("a#b", "ContactOptIn"),
    SyncKey("acct", "Contact OptIn"), SyncKey("x" * 101, "ContactOptIn"), SyncKey("a|b", "T"),
])
def test_bad_keys_are_rejected(store: SyncStateStore, bad_key: SyncKey) -> None:
    with pytest.raises(ValueError, match="invalid"):
        store.advance_watermark(bad_key, T0, etag=None)
    with pytest.raises(ValueError, match="invalid"):
        store.get_watermark(bad_key)


def test_a_naive_watermark_is_rejected_and_nothing_is_written(store: SyncStateStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.advance_watermark(KEY, datetime(2026, 11, 1, 8, 30), etag=None)
    assert store.get_watermark(KEY) is None


# --- checkpoints ----------------------------------------------------------------------------------
def test_cursor_checkpoint_and_resume(make_store: Callable[[], SyncStateStore]) -> None:
    reader = make_store()
    assert reader.get_checkpoint(KEY, PageCursor) is None
    saved = reader.save_checkpoint(KEY, cursor(), etag=None)
    for page in range(1, 4):
        saved = reader.save_checkpoint(KEY, cursor(page, page * 2), etag=saved.etag)

    # A new process (the killed run's successor) picks up exactly where it stopped.
    resumed = make_store().get_checkpoint(KEY, PageCursor)
    assert resumed == saved
    assert resumed is not None and resumed.value == cursor(3, 6)
    assert make_store().get_checkpoint(OTHER, PageCursor) is None


def test_a_second_reader_cannot_start_or_overwrite_a_cursor(
    make_store: Callable[[], SyncStateStore],
) -> None:
    first, second = make_store(), make_store()
    saved = first.save_checkpoint(KEY, cursor(), etag=None)
    with pytest.raises(PreconditionFailed):
        second.save_checkpoint(KEY, cursor(9), etag=None)
    stale = saved.etag
    saved = first.save_checkpoint(KEY, cursor(1), etag=saved.etag)
    with pytest.raises(PreconditionFailed):
        second.save_checkpoint(KEY, cursor(9), etag=stale)
    assert second.get_checkpoint(KEY, PageCursor) == saved


def test_deleting_a_cursor_needs_its_etag_and_is_idempotent(store: SyncStateStore) -> None:
    first = store.save_checkpoint(KEY, cursor(), etag=None)
    latest = store.save_checkpoint(KEY, cursor(1), etag=first.etag)

    with pytest.raises(PreconditionFailed):
        store.delete_checkpoint(KEY, PageCursor, etag=first.etag)
    assert store.get_checkpoint(KEY, PageCursor) == latest

    store.delete_checkpoint(KEY, PageCursor, etag=latest.etag)
    assert store.get_checkpoint(KEY, PageCursor) is None
    store.delete_checkpoint(KEY, PageCursor, etag=latest.etag)


@dataclass(frozen=True, slots=True)
class EngagementCursor:
    STATE_NAME: ClassVar[str] = "engagement_cursor"

    campaign_id: int
    last_seen: datetime | None
    score: float
    complete: bool
    note: str | None = None


def test_any_checkpoint_type_round_trips_with_its_own_row(store: SyncStateStore) -> None:
    value = EngagementCursor(campaign_id=2**40, last_seen=None, score=0.5, complete=False)
    store.save_checkpoint(KEY, value, etag=None)
    store.save_checkpoint(KEY, cursor(), etag=None)

    found = store.get_checkpoint(KEY, EngagementCursor)
    assert found is not None and found.value == value
    assert store.get_checkpoint(KEY, PageCursor) is not None


@pytest.mark.parametrize("bad", [
    PageCursor(run_id="r", since=T0, until=T0, marker=None,
               pages_read="3", next_batch=0),  # type: ignore[arg-type]
    PageCursor(run_id="r", since=T0, until=T0, marker=None, pages_read=True, next_batch=0),
    PageCursor(run_id="r", since=datetime(2026, 1, 1), until=T0, marker=None, pages_read=0,
               next_batch=0),
    PageCursor(run_id=None, since=T0, until=T0, marker=None,  # type: ignore[arg-type]
               pages_read=0, next_batch=0),
    PageCursor(run_id="r", since=T0, until=T0, marker=None, pages_read=2**64, next_batch=0),
])
def test_ill_typed_checkpoints_are_rejected_and_nothing_is_written(
    store: SyncStateStore, bad: PageCursor
) -> None:
    with pytest.raises(ValueError):
        store.save_checkpoint(KEY, bad, etag=None)
    assert store.get_checkpoint(KEY, PageCursor) is None


def test_a_type_that_is_not_a_checkpoint_is_rejected(store: SyncStateStore) -> None:
    @dataclass(frozen=True)
    class Unnamed:
        value: int

    @dataclass(frozen=True)
    class Nested:
        STATE_NAME: ClassVar[str] = "nested"
        values: list[int]

    with pytest.raises(ValueError, match="not a checkpoint type"):
        store.save_checkpoint(KEY, Unnamed(1), etag=None)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="unsupported type"):
        store.save_checkpoint(KEY, Nested([1]), etag=None)
