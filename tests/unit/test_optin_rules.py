"""The opt-in rules (shared/domain/optin.py), table by table."""

from __future__ import annotations

import pytest

from shared.domain.model import OptInType
from shared.domain.optin import (
    OptInUpdate,
    RecordValue,
    decide_updates,
    higher,
    shard_of,
    strongest_per_address,
)

U, S, D, V = (OptInType.UNKNOWN, OptInType.SINGLE, OptInType.DOUBLE, OptInType.VERIFIED_DOUBLE)


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        (None, U, U),  # a first sync fills an empty value, even with Unknown
        (None, V, V),
        (U, S, S),
        (S, D, D),
        (D, V, V),
        (U, V, V),
        (V, U, V),  # a lower type never replaces a higher one
        (D, S, D),
        (S, U, S),
        (D, D, D),  # the same value: nothing changes
    ],
)
def test_higher_keeps_the_highest_value(
    current: OptInType | None, incoming: OptInType, expected: OptInType
) -> None:
    assert higher(current, incoming) is expected


def test_rank_order_follows_the_choice_values() -> None:
    assert sorted([V, U, D, S]) == [U, S, D, V]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ([], {}),
        ([("a@x.com", S)], {"a@x.com": S}),
        ([("a@x.com", S), ("a@x.com", V), ("a@x.com", D)], {"a@x.com": V}),
        ([("a@x.com", V), ("b@x.com", U), ("a@x.com", U)], {"a@x.com": V, "b@x.com": U}),
    ],
)
def test_strongest_per_address_collapses_repeats_to_the_highest(
    changes: list[tuple[str, OptInType]], expected: dict[str, OptInType]
) -> None:
    assert strongest_per_address(changes) == expected


def _record(table: str, key: str, value: OptInType | None) -> RecordValue:
    return RecordValue(table, f"{table}-{key}", key, value)


@pytest.mark.parametrize(
    ("records", "incoming", "expected"),
    [
        # empty values are filled on every table with the address
        (
            [_record("contact", "a", None), _record("lead", "a", None)],
            {"a": S},
            [("contact", S), ("lead", S)],
        ),
        # only records whose value changes are written
        ([_record("contact", "a", D), _record("account", "a", S)], {"a": D}, [("account", D)]),
        # higher stays
        ([_record("contact", "a", V)], {"a": U}, []),
        # records of addresses not in the batch are left alone
        ([_record("contact", "b", None)], {"a": V}, []),
        ([], {"a": V}, []),
    ],
)
def test_decide_updates_writes_only_records_that_rise(
    records: list[RecordValue], incoming: dict[str, OptInType],
    expected: list[tuple[str, OptInType]],
) -> None:
    updates = decide_updates(records, incoming)
    assert [(u.record.table, u.new_value) for u in updates] == expected
    assert all(isinstance(u, OptInUpdate) and u.new_value != u.record.opt_in for u in updates)


def test_decide_updates_applied_twice_changes_nothing_the_second_time() -> None:
    records = [_record("contact", "a", None), _record("lead", "a", S)]
    first = decide_updates(records, {"a": D})
    after = [RecordValue(u.record.table, u.record.row_id, "a", u.new_value) for u in first]
    assert decide_updates(after, {"a": D}) == []


@pytest.mark.parametrize(
    ("key", "shards", "expected"),
    [
        # Pinned: a shard must never move between processes or releases, or one address could
        # be applied by two sessions at once while batches of both versions are in flight.
        ("a@example.com", 8, 2),
        ("a@example.com", 1000, 234),
        ("o'brien@example.com", 8, 1),
        ("ünïcødé@exämple.com", 16, 0),
        ("anything", 1, 0),
    ],
)
def test_shard_of_is_pinned(key: str, shards: int, expected: int) -> None:
    assert shard_of(key, shards) == expected


def test_shards_spread_addresses() -> None:
    seen = {shard_of(f"user{i}@example.com", 8) for i in range(200)}
    assert seen == set(range(8))


@pytest.mark.parametrize("shards", [0, -1])
def test_shard_of_refuses_fewer_than_one_shard(shards: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("a@example.com", shards)
