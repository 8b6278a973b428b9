"""Schedules through the whole app: manual until Sync Now, the daily window, the status a run
walks through, last and next sync, the last result, and dry runs (architecture §1.1 C5)."""

from __future__ import annotations

import datetime as dt

from devtools.run_report import build_report
from shared.domain.model import SyncSchedule, SyncStatus, SyncType
from shared.services.optin.reader import optin_sync_key
from tests.e2e.conftest import stack_for
from tests.e2e.org import Org, value_of


def schedule_of(schedules: list[SyncSchedule], row_id: str) -> SyncSchedule:
    return next(s for s in schedules if s.row_id == row_id)


def minute_now() -> int:
    now = dt.datetime.now(dt.UTC)
    return now.hour * 60 + now.minute


def test_status_walks_from_none_to_queued_to_in_progress_and_back_with_last_and_next_sync(
) -> None:
    org = Org(email_accounts=2)
    manual = org.add_schedule(0, sync_now=True)
    interval = org.add_schedule(1, interval=60)  # never run: due at once
    for n in range(1500):  # two dotdigital pages
        org.add_dotdigital(0, f"person{n}@example.com", "Double")
    changed = [org.add_crm("contacts", f"person{n}@example.com") for n in range(0, 1500, 7)]
    org.add_dotdigital(1, "second@example.com", "Single")
    second = org.add_crm("contacts", "second@example.com")
    # Every read of the first account's pages takes longer than the reader may run, so the
    # first tick stops after one page and the second tick finishes the run.
    with stack_for(org.dataset(), queues=False, SYNC_READER_MAX_SECONDS="1") as stack:
        stack.dotdigital.set_faults([{"method": "GET", "delay_ms": 1200,
                                      "path": "/r1/contacts/v3"}])
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)
        assert stack.trigger_timer().succeeded
        first = stack.schedules()
        assert schedule_of(first, manual).status is SyncStatus.ADDED_TO_QUEUE
        assert schedule_of(first, manual).sync_now is False
        assert schedule_of(first, manual).next_sync is None  # manual: no next sync
        assert schedule_of(first, manual).last_sync is None
        assert schedule_of(first, interval).status is SyncStatus.IN_PROGRESS  # one page: done

        assert stack.trigger_timer().succeeded
        assert schedule_of(stack.schedules(), manual).status is SyncStatus.IN_PROGRESS
        assert stack.values_of("contacts")[changed[0]] is None  # nothing applied yet

        stack.start_queues()  # nothing was applied until the statuses were seen
        stack.wait_idle()
        after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        done = stack.schedules()
        for row_id in (manual, interval):
            schedule = schedule_of(done, row_id)
            assert schedule.status is SyncStatus.NONE
            assert schedule.last_sync is not None and before <= schedule.last_sync <= after
        assert schedule_of(done, manual).last_result == \
            f"1,500 read, {len(changed)} changed, 0 failed"
        assert schedule_of(done, interval).last_result == "1 read, 1 changed, 0 failed"
        next_sync = schedule_of(done, interval).next_sync
        assert next_sync is not None
        assert before + dt.timedelta(minutes=60) <= next_sync <= after + dt.timedelta(minutes=60)
        assert schedule_of(done, manual).next_sync is None
        values = stack.values_of("contacts")
        assert {values[row_id] for row_id in changed} == {value_of("Double")}
        assert values[second] == value_of("Single")


def test_manual_schedules_wait_for_sync_now_and_sync_now_waits_for_the_window() -> None:
    org = Org(email_accounts=3)
    minute = minute_now()
    manual = org.add_schedule(0)
    later = ((minute + 60) % 1440, (minute + 120) % 1440)
    around_now = ((minute - 60) % 1440, (minute + 60) % 1440)
    closed = org.add_schedule(1, sync_now=True, window=later)
    open_ = org.add_schedule(2, interval=30, window=around_now)
    rows = []
    for account in range(3):
        org.add_dotdigital(account, f"brand{account}@example.com", "Single")
        rows.append(org.add_crm("contacts", f"brand{account}@example.com"))
    with stack_for(org.dataset()) as stack:
        stack.run_until_complete(timeout_s=60)
        values = stack.values_of("contacts")
        assert [values[r] for r in rows] == [None, None, value_of("Single")]
        schedules = stack.schedules()
        assert schedule_of(schedules, manual).last_sync is None
        assert schedule_of(schedules, closed).sync_now is True  # kept until the window opens
        assert schedule_of(schedules, closed).last_sync is None
        assert schedule_of(schedules, open_).last_sync is not None

        stack.request_sync_now(email_accounts=[org.ids[0]])
        stack.run_until_complete(timeout_s=60)
        assert stack.values_of("contacts")[rows[0]] == value_of("Single")
        assert schedule_of(stack.schedules(), manual).sync_now is False

        stack.edit_schedules({"ec_windowstart": (minute - 60) % 1440}, email_accounts=[org.ids[1]])
        stack.run_until_complete(timeout_s=60)
        assert stack.values_of("contacts")[rows[1]] == value_of("Single")
        assert schedule_of(stack.schedules(), closed).sync_now is False


def test_dry_run_writes_nothing_and_reports_what_it_would_change() -> None:
    org = Org(email_accounts=1)
    row_id = org.add_schedule(0, sync_now=True)
    org.add_dotdigital(0, "a@example.com", "Double")
    org.add_dotdigital(0, "b@example.com", "Single")
    contact = org.add_crm("contacts", "a@example.com")
    lead = org.add_crm("leads", "b@example.com", "Unknown")
    with stack_for(org.dataset(), SYNC_DRY_RUN="true") as stack:
        stack.dataverse.clear_stats()
        completion = stack.run_until_complete(timeout_s=60)
        assert stack.values_of("contacts")[contact] is None
        assert stack.values_of("leads")[lead] == value_of("Unknown")
        schedule = schedule_of(stack.schedules(), row_id)
        assert schedule.status is SyncStatus.NONE
        assert schedule.last_result == "2 read, 2 would change, 0 failed"
        report = build_report(stack, completion)
        assert report["dry_run"] is True
        assert report["total"]["changed"] == {"contact": 1, "lead": 1, "account": 0}
        routes = stack.dataverse.stats()["by_route"]
        assert not [name for name in routes if "update" in name.lower()], routes
        # Dry runs never move the real watermark.
        assert stack.state.get_watermark(optin_sync_key(org.ids[0], dry_run=False)) is None


def test_a_deactivated_schedule_does_not_run_and_is_not_replaced() -> None:
    org = Org(email_accounts=1)
    switched_off = org.add_schedule(0, interval=30, sync_now=True)
    for row in org.tables["ec_syncschedules"]:
        if row["ec_syncscheduleid"] == switched_off:
            # Inactive (status reason Inactive): an administrator switched the sync off.
            row["statecode"], row["statuscode"] = 1, 2
    org.add_dotdigital(0, "brand0@example.com", "Single")
    contact = org.add_crm("contacts", "brand0@example.com")
    with stack_for(org.dataset()) as stack:
        stack.run_until_complete(timeout_s=60)
        assert stack.values_of("contacts")[contact] is None
        optin_rows = [row for row in stack.dataverse.rows("ec_syncschedules")
                      if row["ec_synctype"] == int(SyncType.CONTACT_OPT_IN)]
        assert [row["ec_syncscheduleid"] for row in optin_rows] == [switched_off]
        assert optin_rows[0]["ec_syncnow"] is True and optin_rows[0]["ec_lastsync"] is None

        stack.dataverse.update_rows("ec_syncschedules",
                                    {switched_off: {"statecode": 0, "statuscode": 1}},
                                    primary_key="ec_syncscheduleid")
        stack.run_until_complete(timeout_s=60)
        assert stack.values_of("contacts")[contact] == value_of("Single")
