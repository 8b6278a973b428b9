"""The Programs mirror: its rules (``domain.programs``) and ``ProgramsMirror`` with fakes."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from shared.domain.model import EmailAccount
from shared.domain.programs import (
    NAME_LENGTH,
    Duplicate,
    NewProgramRow,
    PlatformProgram,
    ProgramRow,
    ProgramRowChange,
    ProgramsPlan,
    enabled_for_users,
    plan_programs,
)
from shared.errors import PreconditionFailed, RateLimited, System, TransientError
from shared.services.ports import SyncKey
from shared.services.programs.mirror import STATE_NAME, ProgramsMirror, ProgramsRefresh
from tests.fakes.crm_programs import InMemoryCrmPrograms, row_id_for
from tests.fakes.email_platform import FakeEmailPlatform
from tests.fakes.state import InMemorySyncStateStore

T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
BRAND = EmailAccount(row_id="acc-1", name="Brand", dotdigital_account_id="1001",
                     api_user="api@example.com", secret_name="DD_SECRET")
OTHER = EmailAccount(row_id="acc-2", name="Other", dotdigital_account_id="1002",
                     api_user="api2@example.com", secret_name="DD_SECRET_2")


def program(program_id: int, name: str = "", status: str = "Active") -> PlatformProgram:
    return PlatformProgram(program_id, name or f"Program {program_id}", status)


def row(row_id: str, program_id: int, name: str = "", status: str = "Active", *,
        enabled: bool = False, active: bool = True) -> ProgramRow:
    return ProgramRow(row_id, program_id, name or f"Program {program_id}", status, enabled,
                      active)


# --- rules ----------------------------------------------------------------------------------------
def test_a_new_program_becomes_a_disabled_row_whatever_its_status() -> None:
    programs = [program(1, "Birthday", "Active"), program(2, "Draft one", "Draft"),
                program(3, "Old", "Deactivated"), program(4, "Back", "ReadOnly")]
    plan = plan_programs(programs, [])
    assert plan.create == (NewProgramRow(1, "Birthday", "Active"),
                           NewProgramRow(2, "Draft one", "Draft"),
                           NewProgramRow(3, "Old", "Deactivated"),
                           NewProgramRow(4, "Back", "ReadOnly"))
    assert (plan.change, plan.unchanged, plan.updated, plan.deactivated) == ((), 0, 0, 0)


def test_nothing_is_written_when_nothing_differs() -> None:
    plan = plan_programs([program(1, "A", "Active"), program(2, "B", "Draft")],
                         [row("r1", 1, "A", "Active", enabled=True), row("r2", 2, "B", "Draft")])
    assert plan == ProgramsPlan(unchanged=2)
    assert plan.empty


def test_name_and_status_follow_dotdigital_but_enabled_is_never_written() -> None:
    plan = plan_programs(
        [program(1, "Renamed", "Active"), program(2, "B", "Deactivated")],
        [row("r1", 1, "A", "Active", enabled=True), row("r2", 2, "B", "Active", enabled=True)],
    )
    assert plan.change == (ProgramRowChange("r1", name="Renamed"),
                           ProgramRowChange("r2", status="Deactivated"))
    assert (plan.updated, plan.deactivated, plan.unchanged) == (2, 0, 0)
    assert not any(hasattr(change, "enabled") for change in plan.change)


def test_a_program_gone_deactivates_its_row_once_and_never_deletes_it() -> None:
    rows = [row("r1", 1, enabled=True), row("r2", 2, active=False)]
    plan = plan_programs([], rows)
    assert plan.change == (ProgramRowChange("r1", active=False),)
    assert (plan.deactivated, plan.updated, plan.unchanged) == (1, 0, 1)


def test_an_inactive_row_whose_program_is_back_is_reactivated_with_its_values() -> None:
    plan = plan_programs([program(2, "Back again", "ReadOnly")],
                         [row("r2", 2, "Old", "Active", enabled=True, active=False)])
    assert plan.change == (ProgramRowChange("r2", name="Back again", status="ReadOnly",
                                            active=True),)
    assert (plan.updated, plan.deactivated) == (1, 0)


def test_names_are_compared_as_stored_so_a_long_name_is_written_once() -> None:
    long_name = "x" * 255
    first = plan_programs([program(1, long_name)], [])
    assert first.create[0].name == "x" * NAME_LENGTH
    again = plan_programs([program(1, long_name)], [row("r1", 1, "x" * NAME_LENGTH)])
    assert again.empty


def test_a_blank_name_gets_a_placeholder_and_a_program_listed_twice_counts_once() -> None:
    plan = plan_programs([program(7, "x"), PlatformProgram(7, "  ", "Draft")], [])
    assert plan.create == (NewProgramRow(7, "Program 7", "Draft"),)


def test_duplicates_keep_one_row_deterministically_and_leave_the_others_alone() -> None:
    rows = [row("r-b", 1, "Copy", "Draft", enabled=True), row("r-a", 1, "Old", "Draft"),
            row("r-0", 1, "Inactive copy", active=False)]
    plan = plan_programs([program(1, "Birthday", "Active")], rows)
    # The active row with the lowest id is the mirrored one, whatever the read order.
    assert plan.change == (ProgramRowChange("r-a", name="Birthday", status="Active"),)
    assert plan.duplicates == (Duplicate(1, "r-a", ("r-0", "r-b")),)
    assert plan_programs([program(1, "Birthday", "Active")], list(reversed(rows))) == plan
    gone = plan_programs([], rows)
    assert gone.change == (ProgramRowChange("r-a", active=False),)


def test_enabled_for_users_are_the_enabled_active_rows_by_name() -> None:
    rows = [row("r1", 1, "beta", enabled=True), row("r2", 2, "Alpha", enabled=True),
            row("r3", 3, "gamma"), row("r4", 4, "delta", enabled=True, active=False)]
    assert [r.row_id for r in enabled_for_users(rows)] == ["r2", "r1"]


# --- the service ----------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def platform() -> FakeEmailPlatform:
    return FakeEmailPlatform()


@pytest.fixture
def crm() -> InMemoryCrmPrograms:
    return InMemoryCrmPrograms()


@pytest.fixture
def state(clock: Clock) -> InMemorySyncStateStore:
    return InMemorySyncStateStore(clock=clock)


@pytest.fixture
def mirror(platform: FakeEmailPlatform, crm: InMemoryCrmPrograms,
           state: InMemorySyncStateStore, clock: Clock) -> ProgramsMirror:
    return ProgramsMirror(platform, crm, state, min_interval_s=300, clock=clock)


def test_a_refresh_mirrors_then_follows_dotdigital_keeping_the_admins_choice(
    mirror: ProgramsMirror, platform: FakeEmailPlatform, crm: InMemoryCrmPrograms,
    clock: Clock,
) -> None:
    platform.set_programs(BRAND.row_id, program(1, "Birthday"), program(2, "Welcome", "Draft"),
                          program(3, "Winback"))
    first = mirror.refresh(BRAND)
    assert first == ProgramsRefresh(BRAND.row_id, refreshed=True, created=3)
    assert {p: (r.name, r.status, r.enabled, r.active) for p, r in crm.of(BRAND.row_id).items()} \
        == {1: ("Birthday", "Active", False, True), 2: ("Welcome", "Draft", False, True),
            3: ("Winback", "Active", False, True)}

    crm.set_enabled(row_id_for(BRAND.row_id, 1), True)
    platform.set_programs(BRAND.row_id, program(1, "Birthday 2026", "Deactivated"),
                          program(2, "Welcome", "Draft"))
    clock.advance(301)
    second = mirror.refresh(BRAND)
    assert second == ProgramsRefresh(BRAND.row_id, refreshed=True, updated=1, deactivated=1,
                                     unchanged=1)
    rows = crm.of(BRAND.row_id)
    assert (rows[1].name, rows[1].status, rows[1].enabled, rows[1].active) == (
        "Birthday 2026", "Deactivated", True, True)
    assert rows[3].active is False


def test_a_second_refresh_within_the_interval_asks_nothing(
    mirror: ProgramsMirror, platform: FakeEmailPlatform, crm: InMemoryCrmPrograms,
    state: InMemorySyncStateStore, clock: Clock,
) -> None:
    platform.set_programs(BRAND.row_id, program(1))
    mirror.refresh(BRAND)
    stamp = state.get_watermark(SyncKey(BRAND.row_id, STATE_NAME))
    assert stamp is not None and stamp.value == T0
    clock.advance(299)
    assert mirror.refresh(BRAND) == ProgramsRefresh(BRAND.row_id, refreshed=False)
    assert (platform.program_requests, crm.reads) == ([BRAND.row_id], 1)
    forced = mirror.refresh(BRAND, force=True)
    assert forced == ProgramsRefresh(BRAND.row_id, refreshed=True, unchanged=1)
    assert len(platform.program_requests) == 2
    assert len(crm.writes) == 1  # the forced one found nothing to write
    clock.advance(300)  # 300 s after the forced refresh, whose time is the new stamp
    assert mirror.refresh(BRAND).refreshed


def test_the_stamp_is_shared_by_every_mirror_on_the_same_store(
    platform: FakeEmailPlatform, crm: InMemoryCrmPrograms, state: InMemorySyncStateStore,
    clock: Clock,
) -> None:
    platform.set_programs(BRAND.row_id, program(1))
    ProgramsMirror(platform, crm, state, clock=clock).refresh(BRAND)
    other_worker = ProgramsMirror(platform, crm, state, clock=clock)
    assert not other_worker.refresh(BRAND).refreshed
    assert platform.program_requests == [BRAND.row_id]


def test_a_failed_refresh_is_not_stamped_so_the_next_call_tries_again(
    mirror: ProgramsMirror, platform: FakeEmailPlatform, crm: InMemoryCrmPrograms,
    state: InMemorySyncStateStore,
) -> None:
    platform.set_programs(BRAND.row_id, program(1))
    crm.write_failure = TransientError(System.DATAVERSE, "unavailable", status=503)
    with pytest.raises(TransientError):
        mirror.refresh(BRAND)
    assert state.get_watermark(SyncKey(BRAND.row_id, STATE_NAME)) is None
    crm.write_failure = None
    assert mirror.refresh(BRAND).created == 1


def test_running_twice_is_safe_and_a_racing_creation_is_planned_again(
    mirror: ProgramsMirror, platform: FakeEmailPlatform, crm: InMemoryCrmPrograms,
) -> None:
    platform.set_programs(BRAND.row_id, program(1, "A"), program(2, "B"))
    # Another refresh created program 1's row between this one's read and its write.
    real_rows = crm.rows

    def rows_then_race(account_id: str) -> list[ProgramRow]:
        found = real_rows(account_id)
        if crm.reads == 1:
            crm.add(account_id, row(row_id_for(account_id, 1), 1, "A"))
        return found

    crm.rows = rows_then_race  # type: ignore[method-assign]
    result = mirror.refresh(BRAND, force=True)
    assert result == ProgramsRefresh(BRAND.row_id, refreshed=True, created=1, unchanged=1)
    assert len(crm.stored) == 2
    assert mirror.refresh(BRAND, force=True) == ProgramsRefresh(
        BRAND.row_id, refreshed=True, unchanged=2)


def test_a_stamp_ahead_of_this_clock_is_fresh_and_never_moved_back(
    mirror: ProgramsMirror, platform: FakeEmailPlatform, state: InMemorySyncStateStore,
    clock: Clock,
) -> None:
    key = SyncKey(BRAND.row_id, STATE_NAME)
    state.advance_watermark(key, T0 + dt.timedelta(seconds=60), etag=None)
    assert not mirror.refresh(BRAND).refreshed
    assert mirror.refresh(BRAND, force=True).refreshed
    stamp = state.get_watermark(key)
    assert stamp is not None and stamp.value == T0 + dt.timedelta(seconds=60)


def test_a_stamp_written_meanwhile_by_another_worker_stands(
    mirror: ProgramsMirror, platform: FakeEmailPlatform, state: InMemorySyncStateStore,
) -> None:
    key = SyncKey(BRAND.row_id, STATE_NAME)

    def another_worker_stamps() -> None:
        state.advance_watermark(key, T0, etag=None)

    platform.set_programs(BRAND.row_id, program(1))
    real = platform.programs

    def programs(account: EmailAccount) -> list[PlatformProgram]:
        found = real(account)
        another_worker_stamps()
        return found

    platform.programs = programs  # type: ignore[method-assign]
    assert mirror.refresh(BRAND).created == 1  # the lost stamp is not a failure


def test_refresh_all_reports_one_accounts_failure_and_goes_on(
    mirror: ProgramsMirror, platform: FakeEmailPlatform, crm: InMemoryCrmPrograms,
    caplog: pytest.LogCaptureFixture,
) -> None:
    platform.program_failures[BRAND.row_id] = RateLimited(
        System.DOTDIGITAL, "too many requests", status=429, retry_after_s=60)
    platform.set_programs(OTHER.row_id, program(5))
    with caplog.at_level(logging.ERROR):
        results = mirror.refresh_all([BRAND, OTHER])
    assert results[0].account == BRAND.row_id and not results[0].refreshed
    assert results[0].error is not None and "429" in results[0].error
    assert results[1] == ProgramsRefresh(OTHER.row_id, refreshed=True, created=1)
    assert "acc-1" in caplog.text


def test_duplicates_are_logged_and_counted(
    mirror: ProgramsMirror, platform: FakeEmailPlatform, crm: InMemoryCrmPrograms,
    caplog: pytest.LogCaptureFixture,
) -> None:
    platform.set_programs(BRAND.row_id, program(1, "A"))
    crm.add(BRAND.row_id, row("r-1", 1, "A"))
    crm.add(BRAND.row_id, row("r-2", 1, "A copy", enabled=True))
    with caplog.at_level(logging.WARNING):
        result = mirror.refresh(BRAND)
    assert result == ProgramsRefresh(BRAND.row_id, refreshed=True, unchanged=1, duplicates=1)
    assert crm.writes == [] and crm.row("r-2").name == "A copy"
    assert "program 1 has 2 rows" in caplog.text


def test_a_second_precondition_failure_is_raised(
    mirror: ProgramsMirror, platform: FakeEmailPlatform, crm: InMemoryCrmPrograms,
) -> None:
    platform.set_programs(BRAND.row_id, program(1))
    crm.write_failure = PreconditionFailed(System.DATAVERSE, "lost", status=412)
    with pytest.raises(PreconditionFailed):
        mirror.refresh(BRAND)
    assert len(crm.before_write) == 2 and crm.reads == 2


def test_a_negative_interval_is_refused(
    platform: FakeEmailPlatform, crm: InMemoryCrmPrograms, state: InMemorySyncStateStore,
) -> None:
    with pytest.raises(ValueError, match="min_interval_s"):
        ProgramsMirror(platform, crm, state, min_interval_s=-1)
