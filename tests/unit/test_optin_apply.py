"""The applier service against in-memory CRM records, schedules, state and queue."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

import pytest

from shared.adapters.servicebus.message_codec import JsonMessageCodec, encode
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.domain.model import OptInType, ScheduleUpdate, SyncSchedule, SyncStatus, SyncType
from shared.errors import (
    AppError,
    AuthFailed,
    BadRequest,
    ConfigError,
    DomainError,
    NotFound,
    RateLimited,
    System,
    TransientError,
)
from shared.services.optin.applier import Applier, ApplyResult, apply_optin_delivery
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import ReceivedMessage, RunStatus
from shared.services.sync.schedules import ScheduleKeeper
from tests.fakes.crm import FakeCrmSettings
from tests.fakes.crm_records import FakeCrmRecords
from tests.fakes.publisher import FakeBatchPublisher
from tests.fakes.state import InMemorySyncStateStore

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
ACCOUNT = "acc-1"
RUN = "20240501T120000-abcd1234"
QUEUE = "optin-batches"
S, D, V = OptInType.SINGLE, OptInType.DOUBLE, OptInType.VERIFIED_DOUBLE


def _batch(
    batch: int, *items: tuple[str, str], dry_run: bool = False, run_id: str = RUN,
    account: str = ACCOUNT,
) -> ApplyOptInBatch:
    changes = tuple(OptInChange(email, kind) for email, kind in items)
    return ApplyOptInBatch(BatchRef(account, run_id, batch, dry_run), changes)


def received(
    command: ApplyOptInBatch, *, delivery_count: int = 1, body: bytes | None = None,
    properties: Mapping[str, object] | None = None,
) -> ReceivedMessage:
    """``command`` as the queue delivers it (the body and properties may be replaced)."""
    message = encode(command, session_id="optin-0")
    return ReceivedMessage(
        message_id=message.message_id, body=message.body if body is None else body,
        application_properties=dict(message.application_properties if properties is None
                                    else properties),
        session_id=message.session_id, delivery_count=delivery_count,
    )


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
        self.publisher = FakeBatchPublisher()
        self.applier = Applier(
            crm_records=self.crm, schedules=ScheduleKeeper(self.settings), state=self.state,
            publisher=self.publisher, codec=JsonMessageCodec(), queue=QUEUE,
            max_delivery_count=max_delivery_count, clock=lambda: NOW,
        )

    def start(self, *, batches: int, done: bool = True, dry_run: bool = False) -> None:
        key = optin_sync_key(ACCOUNT, dry_run=dry_run)
        self.state.start_run(key, RUN, since=NOW - dt.timedelta(hours=1), until=NOW,
                             dry_run=dry_run)
        self.state.record_published(key, RUN, batches=batches, done=done)

    def deliver(self, command: ApplyOptInBatch, *, delivery_count: int = 1) -> ApplyResult:
        return apply_optin_delivery(received(command, delivery_count=delivery_count),
                                    self.applier)


@pytest.fixture
def world() -> World:
    return World()


def test_counts_every_kind_of_item_and_raises_records_to_the_incoming_type(world: World) -> None:
    contact = world.crm.add("contact", "  Ann@Example.com")
    lead = world.crm.add("lead", "ann@example.com", V)
    account = world.crm.add("account", "ANN@EXAMPLE.COM", S)
    world.start(batches=1)
    result = world.deliver(_batch(
        0, ("ann@example.com", "Double"), ("Ann@example.com ", "Single"),
        ("nobody@example.com", "Double"), ("", "Double"), ("not-an-address", "Single"),
        ("bob@example.com", "Triple"),
    ))
    assert result.ref == BatchRef(ACCOUNT, RUN, 0) and result.dead_lettered is None
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
    first = world.deliver(_batch(0, ("a@example.com", "Single")))
    assert first.applied_now and world.settings.writes == []
    assert world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN).status is (
        RunStatus.APPLYING)
    last = world.deliver(_batch(1, ("a@example.com", "Double")))
    assert last.applied_now
    assert world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN).status is (
        RunStatus.COMPLETED)
    [(row_id, update)] = world.settings.writes
    assert row_id == "sched-1"
    assert update.status is SyncStatus.NONE and update.last_sync == NOW
    assert update.last_result == "2 read, 2 changed, 0 failed"


def test_a_batch_applied_twice_changes_nothing_the_second_time(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=2)
    batch = _batch(0, ("a@example.com", "Double"))
    world.deliver(batch)
    again = world.deliver(batch, delivery_count=2)
    assert not again.applied_now
    assert len(world.crm.writes) == 1
    assert world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN).counters["items"] == 1


def test_dry_run_reports_changes_and_writes_nothing(world: World) -> None:
    record = world.crm.add("contact", "a@example.com", S)
    world.start(batches=1, dry_run=True)
    result = world.deliver(_batch(0, ("a@example.com", "VerifiedDouble"), dry_run=True))
    assert result.counters["changed_contact"] == 1
    assert world.crm.writes == [] and world.crm.values()[("contact", record.row_id)] is S
    [(_, update)] = world.settings.writes
    assert update.last_result == "1 read, 1 would change, 0 failed"


def test_a_batch_with_nothing_valid_reads_nothing_from_crm(world: World) -> None:
    world.start(batches=1)
    result = world.deliver(_batch(0, (" ", "Double"), ("a@example.com", "?")))
    assert world.crm.lookups == []
    assert result.counters["invalid_email"] == 1 and result.counters["unknown_opt_in"] == 1
    assert world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN).status is (
        RunStatus.COMPLETED)


def test_a_failure_before_the_last_delivery_is_raised_and_counts_nothing(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    world.crm.fail_next = 1
    with pytest.raises(TransientError):
        world.deliver(_batch(0, ("a@example.com", "Double")))
    run = world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN)
    assert run is not None and run.batches_applied == 0 and world.settings.writes == []
    assert world.publisher.dead_letters(QUEUE) == []  # Service Bus redelivers it
    # the redelivery succeeds
    world.deliver(_batch(0, ("a@example.com", "Double")), delivery_count=2)
    assert set(world.crm.values().values()) == {D}


def test_the_last_delivery_marks_the_batch_failed_then_raises(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    world.crm.fail_next = 1
    with pytest.raises(TransientError):
        world.deliver(_batch(0, ("a@example.com", "Double"), ("b@example.com", "Single")),
                      delivery_count=3)
    run = world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN)
    assert run is not None and run.status is RunStatus.COMPLETED
    assert run.counters["failed"] == 2 and run.counters["items"] == 2
    [(_, update)] = world.settings.writes
    assert update.status is SyncStatus.NONE
    assert update.last_result == "2 read, 0 changed, 2 failed"
    # The raise makes the broker dead-letter it (its last delivery): the app does not too.
    assert world.publisher.dead_letters(QUEUE) == []


def test_a_batch_of_a_run_the_state_does_not_know_is_dead_lettered_when_it_arrives(
    world: World,
) -> None:
    world.crm.add("contact", "a@example.com")
    result = world.deliver(_batch(0, ("a@example.com", "Double"), run_id="unknown-run"))
    # Counting it as failed cannot succeed either: it goes to the dead letters, not round the
    # redeliveries. CRM was written (values only rise, so that is safe); no run was invented.
    assert result.dead_lettered == "NotFound"
    [letter] = world.publisher.dead_letters(QUEUE)
    assert letter.application_properties["DeadLetterReason"] == "NotFound"
    assert world.state.runs == {}


def test_a_schedule_write_that_failed_is_repeated_by_the_redelivery(world: World) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    world.settings.fail_next_writes = 1
    batch = _batch(0, ("a@example.com", "Double"))
    with pytest.raises(TransientError):
        world.deliver(batch)
    world.deliver(batch, delivery_count=2)
    [(_, update)] = world.settings.writes
    assert update.status is SyncStatus.NONE



# --- failures that cannot heal: dead-lettered on the delivery that meets them -------------------
def test_a_batch_is_dead_lettered_and_counted_failed_at_once_when_crm_refuses_it(
    world: World,
) -> None:
    contact = world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    world.crm.fail_next = 1
    world.crm.failure = BadRequest(System.DATAVERSE, "the request is malformed", status=400)
    command = _batch(0, ("a@example.com", "Double"), ("b@example.com", "Single"))

    result = world.deliver(command)  # no raise: the delivery completes

    assert result.dead_lettered == "BadRequest" and not result.applied_now
    assert result.ref == command.ref
    assert (result.counters["items"], result.counters["failed"]) == (2, 2)
    run = world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN)
    assert run is not None and run.status is RunStatus.COMPLETED
    assert (run.counters["items"], run.counters["failed"]) == (2, 2)
    [(_, update)] = world.settings.writes
    assert update.status is SyncStatus.NONE
    assert update.last_result == "2 read, 0 changed, 2 failed"
    [letter] = world.publisher.dead_letters(QUEUE)
    delivered = received(command)
    assert (letter.message_id, letter.body) == (delivered.message_id, delivered.body)
    assert letter.application_properties["DeadLetterReason"] == "BadRequest"
    assert "the request is malformed" in str(
        letter.application_properties["DeadLetterErrorDescription"])
    assert letter.application_properties["DeliveryCount"] == 1
    assert letter.application_properties["SessionId"] == "optin-0"
    assert letter.application_properties["run_id"] == RUN  # the batch's own properties kept
    assert world.crm.values() == {("contact", contact.row_id): None}


@pytest.mark.parametrize("error", [
    BadRequest(System.DATAVERSE, "400", status=400),
    AuthFailed(System.DATAVERSE, "403", status=403),
    NotFound(System.DATAVERSE, "no such column", status=404),
    ConfigError("DATAVERSE_URL is not set"),
    DomainError("refused"),
])
def test_every_permanent_error_is_dead_lettered_at_once_when_it_is_met(
    world: World, error: AppError
) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    world.crm.fail_next, world.crm.failure = 1, error
    result = world.deliver(_batch(0, ("a@example.com", "Double")))
    assert result.dead_lettered == type(error).__name__
    assert [m.application_properties["DeadLetterReason"]
            for m in world.publisher.dead_letters(QUEUE)] == [type(error).__name__]
    assert world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN).counters[
        "failed"] == 1


@pytest.mark.parametrize("error", [
    TransientError(System.DATAVERSE, "503", status=503),
    RateLimited(System.DATAVERSE, "429", status=429, retry_after_s=5),
])
def test_a_transient_error_still_raises_on_the_first_delivery_when_it_may_heal(
    world: World, error: AppError
) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    world.crm.fail_next, world.crm.failure = 1, error
    with pytest.raises(type(error)):
        world.deliver(_batch(0, ("a@example.com", "Double")))
    run = world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN)
    assert run is not None and run.batches_applied == 0 and run.counters == {}
    assert world.publisher.dead_letters(QUEUE) == [] and world.settings.writes == []


def test_an_unreadable_batch_is_dead_lettered_and_counted_failed_when_its_properties_name_it(
    world: World,
) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    command = _batch(0, ("a@example.com", "Double"), ("b@example.com", "Single"))

    result = apply_optin_delivery(received(command, body=b'{"schema": "optin-batch"'),
                                  world.applier)

    assert result.dead_lettered == "MessageFormatError" and result.ref == command.ref
    run = world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN)
    assert run is not None and run.status is RunStatus.COMPLETED
    assert (run.counters["items"], run.counters["failed"]) == (2, 2)
    [(_, update)] = world.settings.writes
    assert update.last_result == "2 read, 0 changed, 2 failed"
    [letter] = world.publisher.dead_letters(QUEUE)
    assert letter.body == b'{"schema": "optin-batch"'
    assert letter.application_properties["DeadLetterReason"] == "MessageFormatError"
    assert world.crm.lookups == [] and world.crm.writes == []


def test_an_unreadable_message_is_dead_lettered_and_counts_nothing_when_it_names_no_batch(
    world: World,
) -> None:
    world.start(batches=1)
    result = apply_optin_delivery(
        received(_batch(0), body=b"\xff", properties={"schema": "something-else"}), world.applier)
    assert (result.dead_lettered, result.ref) == ("MessageFormatError", None)
    assert result.counters["failed"] == 0
    run = world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN)
    assert run is not None and run.batches_applied == 0
    assert world.settings.writes == []
    assert len(world.publisher.dead_letters(QUEUE)) == 1


def test_a_crafted_batch_with_an_unkeyable_run_id_is_dead_lettered_before_crm_is_touched(
    world: World,
) -> None:
    contact = world.crm.add("contact", "a@example.com")
    body = json.dumps({"schema": "optin-batch", "version": 2, "run_id": "run/../x",
                       "account": ACCOUNT, "batch": 0,
                       "items": [{"email": "a@example.com", "opt_in_type": "Double"}]}).encode()
    result = apply_optin_delivery(received(_batch(0), body=body, properties={}), world.applier)
    assert result.dead_lettered == "MessageFormatError"
    assert world.crm.values() == {("contact", contact.row_id): None}
    assert world.crm.lookups == [] and world.crm.writes == []
    assert len(world.publisher.dead_letters(QUEUE)) == 1


def test_a_dry_run_batch_that_cannot_be_applied_is_counted_in_the_dry_run_when_refused(
    world: World,
) -> None:
    world.crm.add("contact", "a@example.com")
    world.start(batches=1, dry_run=True)
    world.crm.fail_next, world.crm.failure = 1, BadRequest(System.DATAVERSE, "400", status=400)
    result = world.deliver(_batch(0, ("a@example.com", "Double"), dry_run=True))
    assert result.dead_lettered == "BadRequest"
    dry = world.state.get_run(optin_sync_key(ACCOUNT, dry_run=True), RUN)
    assert dry is not None and dry.status is RunStatus.COMPLETED and dry.counters["failed"] == 1
    assert world.state.get_run(optin_sync_key(ACCOUNT, dry_run=False), RUN) is None
    [(_, update)] = world.settings.writes
    assert update.last_result == "1 read, 0 would change, 1 failed"


def test_a_v1_message_still_in_flight_is_applied_when_it_arrives_after_an_upgrade(
    world: World,
) -> None:
    contact = world.crm.add("contact", "a@example.com")
    world.start(batches=1)
    v1 = (b'{"schema": "optin-batch", "version": 1, "run_id": "' + RUN.encode()
          + b'", "account": "acc-1", "batch": 0, "dry_run": false, "items": [{"email":'
          b' "a@example.com", "opt_in_type": "Double", "modified": "2024-05-01T12:00:00Z"}]}')
    result = apply_optin_delivery(received(_batch(0), body=v1), world.applier)
    assert result.applied_now and result.dead_lettered is None
    assert world.crm.values()[("contact", contact.row_id)] is D
