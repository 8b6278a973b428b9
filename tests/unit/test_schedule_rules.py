"""Pure schedule rules: manual, interval, Sync Now, the daily window, status, next sync."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.domain.model import ScheduleUpdate, SyncSchedule, SyncStatus, SyncType
from shared.domain.schedule import (
    in_window,
    is_due,
    next_sync_after,
    next_window_opening,
    schedule_problem,
)
from shared.services.sync.schedules import ScheduleKeeper
from tests.fakes.crm import FakeCrmSettings, an_account

NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def a_schedule(**changes: object) -> SyncSchedule:
    base = SyncSchedule(row_id="s1", email_account_id="acc-1", sync_type=SyncType.CONTACT_OPT_IN)
    return SyncSchedule(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})


def at(hour: int, minute: int = 0) -> dt.datetime:
    return NOON.replace(hour=hour, minute=minute)


class TestIsDue:
    def test_manual_schedule_is_never_due_without_sync_now(self) -> None:
        assert not is_due(a_schedule(), NOON)
        assert not is_due(a_schedule(next_sync=NOON - dt.timedelta(days=1)), NOON)

    def test_sync_now_makes_a_manual_schedule_due(self) -> None:
        assert is_due(a_schedule(sync_now=True), NOON)

    def test_sync_now_bypasses_the_interval(self) -> None:
        later = NOON + dt.timedelta(hours=5)
        assert not is_due(a_schedule(interval_minutes=60, next_sync=later), NOON)
        assert is_due(a_schedule(interval_minutes=60, next_sync=later, sync_now=True), NOON)

    @pytest.mark.parametrize(("next_sync", "due"), [
        (None, True),
        (NOON - dt.timedelta(minutes=1), True),
        (NOON, True),
        (NOON + dt.timedelta(minutes=1), False),
    ])
    def test_interval_schedule_is_due_when_next_sync_is_empty_or_passed(
        self, next_sync: dt.datetime | None, due: bool
    ) -> None:
        assert is_due(a_schedule(interval_minutes=30, next_sync=next_sync), NOON) is due

    @pytest.mark.parametrize("status", [SyncStatus.ADDED_TO_QUEUE, SyncStatus.IN_PROGRESS])
    def test_a_schedule_with_a_run_in_flight_is_not_due(self, status: SyncStatus) -> None:
        assert not is_due(a_schedule(sync_now=True, interval_minutes=5, status=status), NOON)

    def test_sync_now_does_not_bypass_the_window(self) -> None:
        night = a_schedule(sync_now=True, window_start=22 * 60, window_end=2 * 60)
        assert not is_due(night, NOON)
        assert is_due(night, at(23))

    def test_bad_rows_are_never_due(self) -> None:
        assert not is_due(a_schedule(sync_now=True, window_start=60, window_end=60), NOON)
        assert not is_due(a_schedule(interval_minutes=-5, sync_now=True), NOON)

    def test_naive_times_are_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            is_due(a_schedule(interval_minutes=5), dt.datetime(2026, 3, 2, 12))


class TestWindow:
    @pytest.mark.parametrize(("start", "end", "moment", "inside"), [
        (None, None, at(3), True),
        (9 * 60, 17 * 60, at(9), True),  # start is inside
        (9 * 60, 17 * 60, at(16, 59), True),
        (9 * 60, 17 * 60, at(17), False),  # end is outside
        (9 * 60, 17 * 60, at(8, 59), False),
        (22 * 60, 2 * 60, at(23), True),  # wraps past midnight
        (22 * 60, 2 * 60, at(0, 30), True),
        (22 * 60, 2 * 60, at(2), False),
        (22 * 60, 2 * 60, at(12), False),
        (20 * 60, None, at(21), True),  # only a start: until midnight
        (20 * 60, None, at(19), False),
        (None, 6 * 60, at(5), True),  # only an end: from midnight
        (None, 6 * 60, at(7), False),
    ])
    def test_window_membership(
        self, start: int | None, end: int | None, moment: dt.datetime, inside: bool
    ) -> None:
        assert in_window(a_schedule(window_start=start, window_end=end), moment) is inside

    def test_window_is_read_in_utc(self) -> None:
        paris = dt.timezone(dt.timedelta(hours=1))
        schedule = a_schedule(window_start=11 * 60, window_end=12 * 60)
        assert in_window(schedule, dt.datetime(2026, 3, 2, 12, 30, tzinfo=paris))

    @pytest.mark.parametrize(("changes", "problem"), [
        ({"window_start": 60, "window_end": 60}, "equals"),
        ({"window_start": 1440}, "window start"),
        ({"window_end": 1441}, "window end"),
        ({"window_start": -1}, "window start"),
        ({"interval_minutes": -1}, "negative"),
    ])
    def test_impossible_rows_are_named(self, changes: dict[str, int], problem: str) -> None:
        assert problem in (schedule_problem(a_schedule(**changes)) or "")

    def test_usable_rows_have_no_problem(self) -> None:
        assert schedule_problem(a_schedule(window_start=0, window_end=1440)) is None


class TestNextSync:
    def test_manual_schedule_has_no_next_sync(self) -> None:
        assert next_sync_after(a_schedule(), NOON) is None

    def test_next_sync_is_one_interval_later(self) -> None:
        assert next_sync_after(a_schedule(interval_minutes=90), NOON) == at(13, 30)

    def test_next_sync_outside_the_window_moves_to_its_next_opening(self) -> None:
        office = a_schedule(interval_minutes=240, window_start=9 * 60, window_end=17 * 60)
        assert next_sync_after(office, at(15)) == at(9) + dt.timedelta(days=1)

    def test_next_opening_of_a_window_that_wraps(self) -> None:
        night = a_schedule(window_start=22 * 60, window_end=2 * 60)
        assert next_window_opening(night, at(12)) == at(22)
        assert next_window_opening(night, at(23)) == at(23)


class _Rows:
    def __init__(self, rows: list[dict[str, object]]) -> None:
        self.rows = rows

    def iter_rows(self, table: str, **_: object) -> list[dict[str, object]]:
        return self.rows


def test_rows_of_an_unknown_sync_type_are_ignored_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shared.adapters.dataverse.settings_tables import DataverseCrmSettings

    rows = [
        {"ec_syncscheduleid": "good", "_ec_emailaccountid_value": "acc-1",
         "ec_synctype": int(SyncType.CONTACT_OPT_IN)},
        {"ec_syncscheduleid": "future", "_ec_emailaccountid_value": "acc-1",
         "ec_synctype": 100000099},
    ]
    crm = DataverseCrmSettings(_Rows(rows))  # type: ignore[arg-type]
    with caplog.at_level("WARNING"):
        assert [s.row_id for s in crm.sync_schedules()] == ["good"]
    assert "schedule future ignored: unknown sync type 100000099" in caplog.text


def test_a_manual_run_clears_an_old_next_sync() -> None:
    account = an_account()
    crm = FakeCrmSettings([account])
    row = crm.create_schedule(account, SyncType.CONTACT_OPT_IN)
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    crm.update_schedule(row.row_id, ScheduleUpdate(next_sync=old, sync_now=True))
    ScheduleKeeper(crm).started(crm.schedules[row.row_id], dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    written = crm.schedules[row.row_id]
    assert written.next_sync is None
    assert written.sync_now is False
    assert written.status is SyncStatus.ADDED_TO_QUEUE


def test_a_schedule_update_cannot_set_and_clear_next_sync() -> None:
    with pytest.raises(ValueError):
        ScheduleUpdate(next_sync=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), clear_next_sync=True)
