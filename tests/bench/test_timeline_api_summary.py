"""The timeline benchmark's arithmetic and its reading of logs and data: percentiles, the
latency summary, requests per view, and the people it seeds."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime

import pytest

from bench.timeline_api import (
    azurite_requests,
    latency,
    mix,
    per_view,
    percentile,
    person_events,
    server_ms,
)


def test_percentiles_interpolate_between_the_nearest_ranks() -> None:
    values = [float(n) for n in range(1, 11)]  # 1..10, in any order
    shuffled = values[::-1]
    assert percentile(shuffled, 0) == 1.0 and percentile(shuffled, 100) == 10.0
    assert percentile(shuffled, 50) == 5.5
    assert percentile(shuffled, 95) == pytest.approx(9.55)
    assert percentile(values, 95) == pytest.approx(
        statistics.quantiles(values, n=20, method="inclusive")[-1])
    assert percentile([42.0], 95) == 42.0


def test_a_percentile_needs_values_and_a_rank_from_0_to_100() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_the_summary_says_whether_p95_is_under_the_target() -> None:
    fast = [100.0] * 95 + [400.0] * 5  # p95 between the last 100 and the first 400
    assert latency(fast) == {"p50_ms": 100.0, "p95_ms": 115.0, "max_ms": 400.0,
                             "p95_under_target": True}
    slow = [100.0] * 90 + [400.0] * 10
    assert latency(slow)["p95_ms"] == 400.0 and latency(slow)["p95_under_target"] is False
    assert latency([300.0])["p95_under_target"] is False  # under, not at
    assert "p95_under_target" not in latency([1.0], None)


def test_requests_per_view() -> None:
    assert per_view(200, 200) == 1.0 and per_view(7, 3) == 2.33 and per_view(5, 0) == 0.0


def test_the_dev_host_time_is_read_from_its_timeline_request_lines_only() -> None:
    lines = ["function EngagementTimeline started (id 1234abcd) for GET /api/timeline",
             "HTTP GET /api/timeline -> 200 in 41 ms",
             "HTTP GET /api/programs -> 200 in 9 ms",
             "HTTP GET /api/timeline -> 200 in 7 ms"]
    assert server_ms(lines) == [41.0, 7.0]


def test_azurite_requests_are_those_the_sdk_logged_for_its_endpoint() -> None:
    endpoint = "http://127.0.0.1:10002/devstoreaccount1"
    lines = [f"Request URL: '{endpoint}/engagement()?$filter=REDACTED'\nRequest method: 'GET'",
             "Response status: 200",
             "Request URL: 'https://127.0.0.1:7302/api/data/v9.2/$batch'",
             f"Request URL: '{endpoint}/Tables'"]
    assert azurite_requests(lines, endpoint) == 2


def test_a_person_gets_exactly_the_events_asked_for_of_every_kind_and_distinct() -> None:
    end = datetime(2026, 3, 1, tzinfo=UTC)
    events = person_events("someone@example.com", 500, random.Random(3), end)
    assert len(events) == 500 and len({event.event_id for event in events}) == 500
    assert all(event.at <= end for event in events)
    counts = mix(events)
    assert sum(counts.values()) == 500 and all(counts.values())
    assert counts["send"] > counts["open"] > counts["form_response"]
    clicked = [event for event in events if event.kind.value == "click"]
    assert all(str(event.details["url"]).startswith("https://") for event in clicked)
    forms = [event for event in events if event.kind.value == "form_response"]
    assert all(event.details["answers"] for event in forms)
    again = person_events("someone@example.com", 500, random.Random(3), end)
    assert [event.event_id for event in again] == [event.event_id for event in events]
