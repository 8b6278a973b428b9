"""The applier service against in-memory CRM records, schedules and state."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.domain.model import OptInType, ScheduleUpdate, SyncSchedule, SyncStatus, SyncType
from shared.entrypoints.messages import OptInBatch, OptInChange
from shared.errors import NotFound, System, TransientError
from shared.services.optin.applier import Applier, apply_optin_batch
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import RunStatus
from tests.fakes.crm import FakeCrmSettings
from tests.fakes.crm_records import FakeCrmRecords
from tests.fakes.state import InMemorySyncStateStore

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
ACCOUNT = "acc-1"
RUN = "20240501T120000-abcd1234"
S, D, V = OptInType.SINGLE, OptInType.DOUBLE, OptInType.VERIFIED_DOUBLE


def _batch(
    batch: int, *items: tuple[str, str], dry_run: bool = False, run_id: str = RUN,
    account: str = ACCOUNT,
) -> OptInBatch:
    changes = tuple(OptInChange(email, kind, NOW) for email, kind in items)
    return OptInBatch(run_id, account, batch, changes, dry_run=dry_run)


class FlakySchedules(FakeCrmSettings):
    fail_next_writes = 0

    def update_schedule(self, row_id: str, update: ScheduleUpdate) -> None:
        if self.fail_next_writes > 0:
            self.fail_next_writes -= 1
            raise TransientError(System.DATAVERSE, "injected failure", status=503)
        super().update_schedule(row_id, update)


class World:
    def __init__(self, *, max_delivery_count: int = 3) -> None:
        self.crm = FakeCrmRecords()
        self.settings = FlakySchedules(
            [],
            [SyncSchedule("sched-1", ACCOUNT, SyncType.CONTACT_OPT_IN,
                          status=SyncStatus.IN_PROGRESS)]
        )
        self.state = InMemorySyncStateStore(clock=lambda: NOW)
        self.applier = Applier(self.crm, self.settings, self.state, max_delivery_count,
                               clock=lambda: NOW)

    def start(self, *, batches: int, done: bool = True, dry_run: bool = False) -> None:
        key = optin_sync_key(ACCOUNT, dry_run=dry_run)
        self.state.start_run(key, RUN, since=NOW - dt.timedelta(hours=1), until=NOW,
                             dry_run=dry_run)
        self.state.record_published(key, RUN, batches=batches, done=done)


@pytest.fixture
def world() -> World:
    return World()


def test_counts_every_kind_of_item_and_raises_records_to_the_incoming_type(world: World) -> None:
    contact = world.crm.add("contact", "  Ann@Example.com")
    lead = world.crm.add("lead", "ann@example.com", V)
    account = world.crm.add("account", "ANN@EXAMPLE.COM", S)
    world.start(batches=1)
    result = apply_optin_batch(_batch(
        0, ("ann@example.com", "Double"), ("Ann@example.com ", "Single"),
        ("nobody@example.com", "Double"), ("", "Double"), ("not-an-address", "Single"),
        ("bob@example.com", "Triple"),
    ), world.applier, delivery_count=1)
    assert result.counters == {
        "items": 6, "invalid_email": 2, "unknown_opt_in": 1, "unmatched": 1,
        "changed_contact": 1, "changed_lead": 0, "changed_account": 1, "failed": 0,
    }
    values = world.crm.values()
    assert values[("contact", contact.row_id)] is D
    assert values[("lead", lead.row_id)] is V  # a lower type never replaces a higher one
    assert values[("account", account.row_id)] is D


def test_the_last_batch_completes_the_run_and_the_schedule(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=2)
    first = apply_optin_batch(_batch(0, ("a@example.com", "Single")), world.applier,
                              delivery_count=1)
    assert not first.outcome.completed_now and world.settings.writes == []
    last = apply_optin_batch(_batch(1, ("a@example.com", "Double")), world.applier,
                             delivery_count=1)
    assert last.outcome.completed_now
    assert last.outcome.run.status is RunStatus.COMPLETED
    [(row_id, update)] = world.settings.writes
    assert row_id == "sched-1"
    assert update.status is SyncStatus.NONE and update.last_sync == NOW
    assert update.last_result == "2 read, 2 changed, 0 failed"


def test_a_batch_applied_twice_changes_nothing_the_second_time(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=2)
    batch = _batch(0, ("a@example.com", "Double"))
    apply_optin_batch(batch, world.applier, delivery_count=1)
    again = apply_optin_batch(batch, world.applier, delivery_count=2)
    assert not again.outcome.applied_now
    assert len(world.crm.writes) == 1
    assert world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN).counters["items"] == 1


def test_dry_run_reports_changes_and_writes_nothing(world: World) -> None:
    record = world.crm.add("contact", "a@example.com", S)
    world.start(batches=1, dry_run=True)
    result = apply_optin_batch(_batch(0, ("a@example.com", "VerifiedDouble"), dry_run=True),
                               world.applier, delivery_count=1)
    assert result.counters["changed_contact"] == 1
    assert world.crm.writes == [] and world.crm.values()[("contact", record.row_id)] is S
    [(_, update)] = world.settings.writes
    assert update.last_result == "1 read, 1 would change, 0 failed"


def test_a_batch_with_nothing_valid_reads_nothing_from_crm(world: World) -> None:
    world.start(batches=1)
    result = apply_optin_batch(_batch(0, (" ", "Double"), ("a@example.com", "?")),
                               world.applier, delivery_count=1)
    assert world.crm.lookups == []
    assert result.counters["invalid_email"] == 1 and result.counters["unknown_opt_in"] == 1
    assert result.outcome.completed_now


def test_a_failure_before_the_last_delivery_is_raised_and_counts_nothing(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    world.crm.fail_next = 1
    with pytest.raises(TransientError):
        apply_optin_batch(_batch(0, ("a@example.com", "Double")), world.applier,
                          delivery_count=1)
    run = world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN)
    assert run is not None and run.batches_applied == 0 and world.settings.writes == []
    # the redelivery succeeds
    apply_optin_batch(_batch(0, ("a@example.com", "Double")), world.applier, delivery_count=2)
    assert set(world.crm.values().values()) == {D}


def test_the_last_delivery_marks_the_batch_failed_then_raises(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    world.crm.fail_next = 1
    with pytest.raises(TransientError):
        apply_optin_batch(_batch(0, ("a@example.com", "Double"), ("b@example.com", "Single")),
                          world.applier, delivery_count=3)
    run = world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN)
    assert run is not None and run.status is RunStatus.COMPLETED
    assert run.counters["failed"] == 2 and run.counters["items"] == 2
    [(_, update)] = world.settings.writes
    assert update.status is SyncStatus.NONE
    assert update.last_result == "2 read, 0 changed, 2 failed"


def test_a_run_the_state_does_not_know_is_an_error_and_writes_nothing(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    with pytest.raises(NotFound):
        apply_optin_batch(_batch(0, ("a@example.com", "Double"), run_id="unknown-run"),
                          world.applier, delivery_count=1)
    # CRM was written (values only rise, so that is safe), but the run accounting was not
    assert world.state.runs == {}


def test_a_schedule_write_that_failed_is_repeated_by_the_redelivery(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    world.settings.fail_next_writes = 1
    batch = _batch(0, ("a@example.com", "Double"))
    with pytest.raises(TransientError):
        apply_optin_batch(batch, world.applier, delivery_count=1)
    apply_optin_batch(batch, world.applier, delivery_count=2)
    [(_, update)] = world.settings.writes
    assert update.status is SyncStatus.NONE

