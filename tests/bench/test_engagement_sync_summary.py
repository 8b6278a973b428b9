"""The Engagement benchmark's pure parts: the seed generator's counts and mix, the rewritten data
set, and the summary arithmetic (requests per 1000 events, the hourly limit, the checks)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from typing import Any

import pytest

from bench.engagement_seed import KINDS, EngagementSeed
from bench.engagement_sync import TimerFailures, checks, figures, hourly_limit, reader_log
from emulators.dotdigital.engagement_campaigns import parse_campaigns
from emulators.dotdigital.engagement_surveys import parse_surveys
from shared.domain.email import match_key
from shared.domain.model import SyncType

AS_OF = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def built() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return EngagementSeed(6000, 3, seed=1, as_of=AS_OF).build()


def _counted(accounts: list[dict[str, Any]]) -> Counter[str]:
    """The events a data set holds, counted from its rows as the emulator serves them."""
    counts: Counter[str] = Counter()
    for account in accounts:
        for campaign in account["campaigns"]:
            for row in campaign["activities"]:
                counts["send"] += 1
                counts["open"] += len(row.get("opens", []))
                counts["click"] += len(row.get("clicks", []))
                counts["page_view"] += len(row.get("pageViews", []))
        for survey in account["surveys"]:
            counts["form_response"] += sum("dateCompleted" in item for item in survey["responses"])
    return counts


def test_about_n_events_are_made_and_the_counts_are_those_of_the_rows(built: Any) -> None:
    accounts, made = built
    assert 6000 <= made["events"] < 6000 + 3 * 20  # each account stops at its share
    assert sum(made["by_kind"].values()) == made["events"]
    assert dict(_counted(accounts)) == made["by_kind"]
    assert [account["events"] for account in made["accounts"]] == [
        sum(account["by_kind"].values()) for account in made["accounts"]]


def test_the_mix_is_mostly_sends_then_opens_with_some_clicks_page_views_and_forms(
    built: Any,
) -> None:
    mix = built[1]["mix"]
    assert 0.58 < mix["send"] < 0.70
    assert 0.20 < mix["open"] < 0.31
    assert 0.02 < mix["click"] < 0.05
    assert 0.04 < mix["page_view"] < 0.10
    assert 0.003 < mix["form_response"] < 0.015
    totals = built[1]["accounts"]
    assert all(account["untracked_campaigns"] >= 1 for account in totals)
    assert sum(account["incomplete_responses"] for account in totals) >= 1


def test_many_people_some_in_several_accounts(built: Any) -> None:
    made = built[1]
    assert made["people"] >= made["events"] / 15
    assert made["people_in_several_accounts"] > 0
    emails = {match_key(row["email"]) for account in built[0]
              for campaign in account["campaigns"] for row in campaign["activities"]}
    assert len(emails) == made["people"]


def test_contact_ids_are_32_bit_and_each_account_s_own(built: Any) -> None:
    for account in built[0]:
        ids = [row["contactId"] for campaign in account["campaigns"]
               for row in campaign["activities"]]
        assert max(ids) <= 2**31 - 1
        by_email: dict[str, int] = {}
        for campaign in account["campaigns"]:
            for row in campaign["activities"]:
                assert by_email.setdefault(row["email"], row["contactId"]) == row["contactId"]
        assert len(set(by_email.values())) == len(by_email)


def test_the_same_seed_makes_the_same_data_and_another_seed_other_data(built: Any) -> None:
    again = EngagementSeed(6000, 3, seed=1, as_of=AS_OF).build()
    other = EngagementSeed(6000, 3, seed=2, as_of=AS_OF).build()
    assert again == built
    assert other[0] != built[0]


def test_every_event_is_before_as_of_and_no_two_share_a_second(built: Any) -> None:
    limit = AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")
    for account in built[0]:
        for campaign in account["campaigns"]:
            assert campaign["dateSent"] < limit
            for row in campaign["activities"]:
                for name in ("opens", "clicks", "pageViews"):
                    dates = [item["date"] for item in row.get(name, [])]
                    assert dates == sorted(set(dates)) and all(date < limit for date in dates)


def test_the_emulator_loads_the_campaigns_and_forms(built: Any) -> None:
    for account in built[0]:
        campaigns = parse_campaigns([(f"c{n}", raw) for n, raw in enumerate(account["campaigns"])])
        surveys = parse_surveys([(f"s{n}", raw) for n, raw in enumerate(account["surveys"])],
                                AS_OF)
        assert len(campaigns) == len(account["campaigns"])
        assert len(surveys) == 2


def test_the_sample_counts_are_what_the_data_holds_for_those_people(built: Any) -> None:
    accounts, made = built
    held: dict[str, Counter[str]] = {}
    for account in accounts:
        for campaign in account["campaigns"]:
            for row in campaign["activities"]:
                counts = held.setdefault(str(match_key(row["email"])), Counter())
                counts["send"] += 1
                counts["open"] += len(row.get("opens", []))
                counts["click"] += len(row.get("clicks", []))
                counts["page_view"] += len(row.get("pageViews", []))
        for survey in account["surveys"]:
            for item in survey["responses"]:
                counts = held.setdefault(str(match_key(item["email"])), Counter())
                counts["form_response"] += "dateCompleted" in item
    assert made["sample"]
    for person in made["sample"]:
        expected = held[str(match_key(person["email"]))]
        assert person["counts"] == {kind: expected[kind] for kind in KINDS}


def test_rewrite_streams_the_campaigns_into_the_data_set_and_sets_sync_now_on_engagement_only(
    built: Any,
) -> None:
    schedules = [{"ec_synctype": int(sync_type), "ec_intervalminutes": 15, "ec_syncnow": False}
                 for sync_type in SyncType]
    dataset = {"dataverse": {"tables": {"ec_syncschedules": schedules}},
               "dotdigital": {"accounts": [{"id": 1001 + n, "campaigns": [{"id": 1}],
                                            "surveys": []} for n in range(3)]}}
    out = io.StringIO()
    made = EngagementSeed(6000, 3, seed=1, as_of=AS_OF).rewrite(dataset, out)
    written = json.loads(out.getvalue())
    assert made == built[1]
    assert [{"campaigns": a["campaigns"], "surveys": a["surveys"]}
            for a in written["dotdigital"]["accounts"]] == built[0]
    rows = {row["ec_synctype"]: row for row in written["dataverse"]["tables"]["ec_syncschedules"]}
    assert rows[SyncType.ENGAGEMENT] == {"ec_synctype": int(SyncType.ENGAGEMENT),
                                         "ec_intervalminutes": 15, "ec_syncnow": True}
    for other in (SyncType.CONTACT_OPT_IN, SyncType.SUPPRESSION_LISTS):
        assert rows[other]["ec_syncnow"] is False and rows[other]["ec_intervalminutes"] == 0


def _stats() -> dict[str, Any]:
    return {"dotdigital": {"requests": 120, "throttled": 1, "by_route": {
                "GET /v2/campaigns/{id}/activities/since-date/{date}": 60,
                "GET /v2/surveys/with-activity-since/{date}": 10, "v2.account-info": 3,
                "GET /v2/programs": 3}},
            "dataverse": {"requests": 40, "throttled": 2}}


def test_figures_are_per_request_per_1000_events_and_per_second() -> None:
    totals = {"items": 60_000, "read_send": 40_000, "read_open": 20_000, "written": 59_000,
              "existing": 1000, "failed": 0}
    result = figures(totals, _stats(), 100.0, {"Brand 1": 50, "Brand 2": 70}, 2, 60_000)
    assert result["events_read_by_kind"] == {"send": 40_000, "open": 20_000, "click": 0,
                                             "page_view": 0, "form_response": 0}
    assert result["events_per_dotdigital_request"] == 500.0
    assert result["dotdigital_requests_per_1000_events"] == 2.0
    assert result["dotdigital_engagement_requests"] == 70
    assert result["events_written_per_second"] == 600.0  # what the store holds, per second
    assert result["events_read_per_second"] == 600.0
    assert (result["events_written"], result["events_already_stored"]) == (59_000, 1000)
    assert result["throttled_responses"] == 3
    limit = result["dotdigital_hourly_limit"]
    assert limit["events_per_account_per_hour_at_limit"] == 1_000_000
    assert limit["events_per_account"] == 30_000


def test_nothing_read_or_no_time_does_not_divide_by_zero() -> None:
    result = figures({}, _stats(), 0.0, {}, 3, 0)
    assert result["dotdigital_requests_per_1000_events"] == 120_000.0
    assert result["events_written_per_second"] == 0.0
    assert result["dotdigital_hourly_limit"]["within_limit"] is True


def test_the_hourly_limit_is_judged_by_the_busiest_account() -> None:
    within = hourly_limit({"Brand 1": 500, "Brand 2": 2000})
    assert within["within_limit"] is True and within["max_hours_at_limit"] == 1.0
    assert within["hours_at_limit_by_account"] == {"Brand 1": 0.25, "Brand 2": 1.0}
    over = hourly_limit({"Brand 1": 500, "Brand 2": 3001})
    assert over["within_limit"] is False and over["max_hours_at_limit"] == 1.5


BY_KIND = {"send": 3, "open": 2, "click": 0, "page_view": 0, "form_response": 1}


def test_checks_cross_the_generated_data_the_counters_and_the_store() -> None:
    store = {"rows": dict(BY_KIND), "summaries": dict(BY_KIND)}
    counts = {"events_read_by_kind": dict(BY_KIND), "events_read": 6, "events_written": 6,
              "events_already_stored": 0}
    assert all(checks({"by_kind": BY_KIND}, counts, store, {"mismatched": 0}).values())
    # A redelivered batch: its first delivery stored two events before it failed.
    redelivered = {**counts, "events_written": 4, "events_already_stored": 2}
    assert all(checks({"by_kind": BY_KIND}, redelivered, store, {"mismatched": 0}).values())
    short = {**store, "summaries": {**BY_KIND, "send": 2}}
    failed = checks({"by_kind": BY_KIND}, {**counts, "events_written": 7}, short,
                    {"mismatched": 1})
    assert failed == {"read_equals_generated": True, "written_or_found_equals_read": False,
                      "store_rows_equal_generated": True, "summaries_equal_rows": False,
                      "written_at_most_store_rows": False, "sample_timelines_match": False}


def test_a_dry_run_must_read_everything_and_store_nothing() -> None:
    empty = dict.fromkeys(BY_KIND, 0)
    counts = {"events_read_by_kind": dict(BY_KIND), "events_read": 6, "events_written": 0,
              "events_already_stored": 0}
    store = {"rows": dict(empty), "summaries": dict(empty)}
    assert checks({"by_kind": BY_KIND}, counts, store, {}, dry_run=True) == {
        "read_equals_generated": True, "nothing_written": True}
    held = {"rows": {**empty, "send": 1}, "summaries": {**empty, "send": 1}}
    assert not checks({"by_kind": BY_KIND}, counts, held, {}, dry_run=True)["nothing_written"]


def test_timer_failures_in_a_row_end_the_wait_and_a_success_resets_them(tmp_path: Any) -> None:
    log = tmp_path / "connector.log"
    watch = TimerFailures(log, limit=2)
    watch.check()  # no log yet
    log.write_text("a function SyncTimer failed in 3 ms (id 1): ValueError: x\n"
                   "b function SyncTimer finished in 5 ms (id 2)\n"
                   "c function SyncTimer failed in 3 ms (id 3): ValueError: y\n"
                   "d function SyncTimer fai")  # a line still being written
    watch.check()
    assert watch.in_a_row == 1
    with log.open("a") as handle:
        handle.write("led in 4 ms (id 4): ValueError: z\n")
    with pytest.raises(SystemExit, match="2 times in a row"):
        watch.check()


def test_the_readers_log_lines_are_summed() -> None:
    log = ("x account=a engagement run r1: 42 pages, 1001 items, 46 batches published in 2.8s"
           " (finished)\n"
           "y account=b engagement run r1: 10 pages, 99 items, 4 batches published in 1.25s\n"
           "z account=b suppression run r1: 5 pages, 7 items, 1 batches published in 9.0s\n")
    assert reader_log(log) == {"pages": 52, "items": 1100, "batches": 50, "seconds": 4.0}
