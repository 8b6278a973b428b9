"""Engagement rules: deterministic ids, keys that sort newest first, order-free summaries."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.domain.engagement import (
    EMPTY_SUMMARY,
    EVENT_ROW_END,
    SUMMARY_ROW_KEY,
    EngagementEvent,
    EventKind,
    PersonSummary,
    add,
    first_row_key_before,
    person_key,
    row_key,
    summarise,
)

T0 = datetime(2026, 3, 1, 9, 30, 15, tzinfo=UTC)


def event(kind: EventKind = EventKind.CLICK, at: datetime = T0, *, email: str = "ann@example.com",
          source: str = "campaign-7", title: str = "Spring sale", **details: object
          ) -> EngagementEvent:
    return EngagementEvent(email, kind, at, source, title, details)


def test_the_same_event_read_twice_has_the_same_id_whatever_its_display_fields() -> None:
    first = event(url="https://x.example/a", ip="1.2.3.4")
    again = event(email="  ANN@Example.com ", title="Spring sale (renamed)",
                  url="https://x.example/a", ip="5.6.7.8",
                  at=(T0 + timedelta(microseconds=900)).astimezone(timezone(timedelta(hours=2))))
    assert again.event_id == first.event_id
    assert row_key(again) == row_key(first)
    assert again.entry().at == first.entry().at == T0


@pytest.mark.parametrize("other", [
    event(EventKind.OPEN, url="https://x.example/a"),
    event(source="campaign-8", url="https://x.example/a"),
    event(at=T0 + timedelta(seconds=1), url="https://x.example/a"),
    event(url="https://x.example/b"),
    event(email="bob@example.com", url="https://x.example/a"),
])
def test_ids_differ_by_kind_source_second_url_and_person(other: EngagementEvent) -> None:
    assert other.event_id != event(url="https://x.example/a").event_id


def test_form_responses_are_told_apart_by_their_response_id() -> None:
    one = event(EventKind.FORM_RESPONSE, source="survey-3", response_id=11,
                answers=[{"question": "Size?", "answer": "M"}])
    two = event(EventKind.FORM_RESPONSE, source="survey-3", response_id=12,
                answers=[{"question": "Size?", "answer": "M"}])
    assert one.event_id != two.event_id


def test_the_partition_is_a_hash_of_the_match_key_never_the_address() -> None:
    key = event().person_key
    assert key == person_key("ann@example.com")
    assert key == hashlib.sha256(b"ann@example.com").hexdigest()
    assert "ann" not in key and "ann" not in row_key(event())
    assert event(email=" Ann@EXAMPLE.com").person_key == key
    with pytest.raises(ValueError):
        person_key("Ann@Example.com")  # not a match key: the caller forgot to normalise


def test_row_keys_sort_the_summary_first_then_events_newest_first() -> None:
    times = [T0 + timedelta(seconds=s) for s in (0, 1, 59, 3600, 86400 * 400)]
    events = [event(at=at, url=f"u{n}") for n, at in enumerate(times)]
    keys = sorted(row_key(e) for e in events)
    assert keys == [row_key(e) for e in sorted(events, key=lambda e: e.at, reverse=True)]
    assert SUMMARY_ROW_KEY < keys[0] and keys[-1] < EVENT_ROW_END
    assert len({len(key) for key in keys}) == 1


def test_same_second_events_sort_deterministically_by_id() -> None:
    pair = [event(url="a"), event(url="b")]
    assert sorted(map(row_key, pair)) == sorted(map(row_key, reversed(pair)))


def test_purge_bound_covers_exactly_the_events_before_it() -> None:
    events = [event(at=T0 + timedelta(seconds=s), url=str(s)) for s in (-1, 0, 1)]
    for before, expected in ((T0, 1), (T0 + timedelta(milliseconds=1), 2),
                             (T0 + timedelta(seconds=1), 2), (T0 - timedelta(days=1), 0)):
        low = first_row_key_before(before)
        assert sum(row_key(e) >= low for e in events) == expected
    assert first_row_key_before(datetime(1970, 1, 1, tzinfo=UTC)) == EVENT_ROW_END


@pytest.mark.parametrize("bad", [
    dict(email="not-an-address"),
    dict(at=datetime(2026, 1, 1)),
    dict(at=datetime(1969, 12, 31, tzinfo=UTC)),
    dict(source=""),
    dict(details_bad=object()),
])
def test_events_that_cannot_be_stored_are_refused(bad: dict[str, object]) -> None:
    values: dict[str, object] = {"email": "ann@example.com", "kind": EventKind.OPEN, "at": T0,
                                 "source_id": "c", "title": "t", "details": {}}
    if "details_bad" in bad:
        values["details"] = {"x": bad["details_bad"]}
    else:
        values.update({("source_id" if k == "source" else k): v for k, v in bad.items()})
    with pytest.raises(ValueError):
        EngagementEvent(**values)  # type: ignore[arg-type]


def test_details_and_titles_are_kept_as_they_read_back() -> None:
    e = event(EventKind.FORM_RESPONSE, title="x" * 1000,
              answers=({"question": "Q", "answer": "A"},))
    assert e.details == {"answers": [{"question": "Q", "answer": "A"}]}
    assert len(e.title) == 400
    with pytest.raises(ValueError):
        event(blob="x" * 20_000)


def test_summary_counts_per_kind_and_first_and_last_times() -> None:
    events = [event(EventKind.SEND, T0), event(EventKind.OPEN, T0 + timedelta(hours=1)),
              event(EventKind.CLICK, T0 + timedelta(hours=2), url="u"),
              event(EventKind.CLICK, T0 - timedelta(days=1), url="v")]
    summary = summarise(events)
    assert summary == PersonSummary(sends=1, opens=1, clicks=2, first_at=T0 - timedelta(days=1),
                                    last_at=T0 + timedelta(hours=2))
    assert summary.total == 4 and summary.count(EventKind.PAGE_VIEW) == 0
    assert summarise([]) == EMPTY_SUMMARY


def test_summary_does_not_depend_on_order_or_grouping() -> None:
    events = [event(kind, T0 + timedelta(minutes=n), url=str(n))
              for n, kind in enumerate(itertools.islice(itertools.cycle(EventKind), 7))]
    expected = summarise(events)
    for order in itertools.permutations(events[:5]):
        assert add(summarise(order[:2]), order[2:] + tuple(events[5:])) == expected
