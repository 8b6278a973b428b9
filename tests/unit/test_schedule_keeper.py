"""ScheduleKeeper: the schedule rows it creates, the states it writes, and a cycle with nobody."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from shared.adapters.dataverse.settings_tables import schedule_name
from shared.config import SyncSettings
from shared.domain.model import SyncSchedule, SyncStatus, SyncType
from shared.services.optin.reader import OptInReader, optin_sync_key
from shared.services.ports import RunState
from shared.services.sync.cycle import run_sync_cycle
from shared.services.sync.schedules import IMPLEMENTED_SYNC_TYPES, ScheduleKeeper, format_result
from tests.fakes.crm import FakeCrmSettings, an_account
from tests.fakes.email_platform import FakeEmailPlatform
from tests.fakes.publisher import FakeBatchPublisher
from tests.fakes.state import InMemorySyncStateStore

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def a_run(account: str, *, counters: dict[str, int], dry_run: bool = False) -> RunState:
    state = InMemorySyncStateStore(clock=lambda: T0)
    key = optin_sync_key(account, dry_run=dry_run)
    state.start_run(key, "run-1", since=T0 - dt.timedelta(hours=1), until=T0, dry_run=dry_run)
    state.record_published(key, "run-1", batches=1, done=True)
    return state.mark_batch_applied(key, "run-1", 0, counters).run


class TestEnsure:
    def test_a_row_is_named_after_the_account_and_the_sync_type_when_one_is_created(
        self,
    ) -> None:
        crm = FakeCrmSettings([an_account("acc-1", name="Brand 1")])
        optin, suppression, engagement = ScheduleKeeper(crm).ensure(crm.accounts, [])
        assert crm.names[optin.row_id] == "Brand 1 · ContactOptIn"
        assert crm.names[suppression.row_id] == "Brand 1 · SuppressionLists"
        assert (optin.email_account_id, optin.sync_type) == ("acc-1", SyncType.CONTACT_OPT_IN)
        assert suppression.sync_type == SyncType.SUPPRESSION_LISTS
        assert engagement.sync_type == SyncType.ENGAGEMENT
        assert crm.names[engagement.row_id] == "Brand 1 · Engagement"
        for row in (optin, suppression, engagement):
            assert (row.interval_minutes, row.status, row.sync_now) == (
                0, SyncStatus.NONE, False)

    def test_rows_are_created_only_for_implemented_sync_types_when_an_account_has_none(
        self,
    ) -> None:
        crm = FakeCrmSettings([an_account("acc-1"), an_account("acc-2")])
        rows = ScheduleKeeper(crm).ensure(crm.accounts, [])
        assert IMPLEMENTED_SYNC_TYPES == (SyncType.CONTACT_OPT_IN, SyncType.SUPPRESSION_LISTS,
                                          SyncType.ENGAGEMENT)
        assert sorted((r.email_account_id, r.sync_type) for r in crm.created) == [
            (account, sync_type) for account in ("acc-1", "acc-2")
            for sync_type in IMPLEMENTED_SYNC_TYPES]
        assert rows == crm.created

    def test_existing_rows_are_kept_and_nothing_is_created_when_every_account_has_one(
        self,
    ) -> None:
        existing = [
            SyncSchedule("s-optin", "acc-1", SyncType.CONTACT_OPT_IN, interval_minutes=30),
            SyncSchedule("s-suppression", "acc-1", SyncType.SUPPRESSION_LISTS),
            SyncSchedule("s-engagement", "acc-1", SyncType.ENGAGEMENT),
        ]
        crm = FakeCrmSettings([an_account("acc-1")], existing)
        assert ScheduleKeeper(crm).ensure(crm.accounts, existing) == existing
        assert crm.created == [] and crm.writes == []

    def test_nothing_is_created_when_there_is_no_account(self) -> None:
        crm = FakeCrmSettings([])
        assert ScheduleKeeper(crm).ensure([], []) == []
        assert crm.created == []

    def test_a_long_account_name_is_cut_so_the_row_name_fits_its_column_when_created(
        self,
    ) -> None:
        name = schedule_name(an_account("acc-1", name="B" * 150), SyncType.CONTACT_OPT_IN)
        assert len(name) == 100 and name.endswith("B · ContactOptIn")
        blank = schedule_name(an_account("acc-1", name=" "), SyncType.CONTACT_OPT_IN)
        assert blank == "acc-1 · ContactOptIn"  # never a row named after nothing


class TestStatus:
    def test_a_started_run_is_added_to_queue_with_sync_now_cleared_and_next_sync_planned(
        self,
    ) -> None:
        row = SyncSchedule("s1", "acc-1", SyncType.CONTACT_OPT_IN, interval_minutes=60,
                           sync_now=True)
        crm = FakeCrmSettings([an_account("acc-1")], [row])
        returned = ScheduleKeeper(crm).started(row, T0)
        written = crm.schedules["s1"]
        assert returned == written
        assert (written.status, written.sync_now, written.next_sync) == (
            SyncStatus.ADDED_TO_QUEUE, False, T0 + dt.timedelta(minutes=60))

    def test_publishing_done_moves_the_row_to_in_progress(self) -> None:
        row = SyncSchedule("s1", "acc-1", SyncType.CONTACT_OPT_IN,
                           status=SyncStatus.ADDED_TO_QUEUE)
        crm = FakeCrmSettings([an_account("acc-1")], [row])
        ScheduleKeeper(crm).publishing_done(row)
        assert crm.schedules["s1"].status is SyncStatus.IN_PROGRESS
        [(row_id, update)] = crm.writes
        assert row_id == "s1" and update.last_sync is None and update.last_result is None

    def test_a_completed_run_writes_none_last_sync_and_its_result_to_its_own_row_only(
        self,
    ) -> None:
        rows = [
            SyncSchedule("mine", "acc-1", SyncType.CONTACT_OPT_IN,
                         status=SyncStatus.IN_PROGRESS),
            SyncSchedule("other-type", "acc-1", SyncType.ENGAGEMENT,
                         status=SyncStatus.IN_PROGRESS),
            SyncSchedule("other-account", "acc-2", SyncType.CONTACT_OPT_IN,
                         status=SyncStatus.IN_PROGRESS),
        ]
        crm = FakeCrmSettings([an_account("acc-1"), an_account("acc-2")], rows)
        run = a_run("acc-1", counters={"items": 1234, "changed_contact": 400,
                                       "changed_lead": 56, "failed": 3})
        ScheduleKeeper(crm).completed("acc-1", SyncType.CONTACT_OPT_IN, run, T0)
        mine = crm.schedules["mine"]
        assert (mine.status, mine.last_sync, mine.last_result) == (
            SyncStatus.NONE, T0, "1,234 read, 456 changed, 3 failed")
        assert crm.schedules["other-type"].status is SyncStatus.IN_PROGRESS
        assert crm.schedules["other-account"].status is SyncStatus.IN_PROGRESS

    def test_completing_twice_writes_the_same_result_when_a_redelivery_repeats_it(self) -> None:
        row = SyncSchedule("s1", "acc-1", SyncType.CONTACT_OPT_IN, status=SyncStatus.IN_PROGRESS)
        crm = FakeCrmSettings([an_account("acc-1")], [row])
        run = a_run("acc-1", counters={"items": 2}, dry_run=True)
        keeper = ScheduleKeeper(crm)
        keeper.completed("acc-1", SyncType.CONTACT_OPT_IN, run, T0)
        keeper.completed("acc-1", SyncType.CONTACT_OPT_IN, run, T0)
        assert [update.last_result for _, update in crm.writes] == [
            "2 read, 0 would change, 0 failed"] * 2

    @pytest.mark.parametrize(("counters", "dry_run", "expected"), [
        ({}, False, "0 read, 0 changed, 0 failed"),
        ({"items": 5, "changed_contact": 1, "changed_lead": 1, "changed_account": 1,
          "unmatched": 2}, False, "5 read, 3 changed, 0 failed"),
        # A table added later counts as changed without this function knowing its name.
        ({"items": 1, "changed_opportunity": 1}, True, "1 read, 1 would change, 0 failed"),
    ])
    def test_the_result_sums_every_changed_counter_when_formatted(
        self, counters: dict[str, int], dry_run: bool, expected: str
    ) -> None:
        assert format_result(counters, dry_run=dry_run) == expected


def test_a_cycle_is_ok_and_creates_nothing_when_no_email_account_is_active(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crm = FakeCrmSettings([])
    platform = FakeEmailPlatform()
    publisher = FakeBatchPublisher()
    reader = OptInReader(
        platform=platform, state=InMemorySyncStateStore(), publisher=publisher,
        schedules=ScheduleKeeper(crm), queue="optin-batches", settings=SyncSettings(),
    )
    with caplog.at_level(logging.WARNING):
        summary = run_sync_cycle(crm, reader, "run-1", T0)
    assert summary.ok and summary.optin == []
    assert summary.summary()["connectivity"] == {
        "ok": True, "accounts": [], "note": "no active email account is configured in CRM"}
    assert crm.created == [] and crm.writes == []
    assert platform.requests == [] and publisher.sends == 0
    assert caplog.text == ""  # a fresh install is quiet, not a warning every tick
