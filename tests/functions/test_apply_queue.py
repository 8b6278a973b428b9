"""The ApplyOptInBatch function called with a real ServiceBusMessage and fake services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import azure.functions as func
import pytest
from azure.functions.servicebus import ServiceBusMessage

from shared import bootstrap
from shared.adapters.servicebus.message_codec import JsonMessageCodec, encode
from shared.config import load_settings
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.domain.model import OptInType, SyncSchedule, SyncStatus, SyncType
from shared.entrypoints import sync_queues
from shared.errors import BadRequest, System, TransientError
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import RunStatus
from tests.fakes.crm import FakeCrmSettings
from tests.fakes.crm_programs import InMemoryCrmPrograms
from tests.fakes.crm_records import FakeCrmRecords
from tests.fakes.email_platform import FakeEmailPlatform
from tests.fakes.event_store import InMemoryEventStore
from tests.fakes.publisher import FakeBatchPublisher
from tests.fakes.state import InMemorySyncStateStore
from tests.fakes.suppression_store import InMemoryCrmSuppressions

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
ENVIRON = {
    "DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
    "ENTRA_TENANT_ID": "tenant",
    "ENTRA_CLIENT_ID": "client",
    "ENTRA_CLIENT_SECRET": "s3cret",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "OPTIN_MAX_DELIVERY_COUNT": "3",
}
RUN = "20240501T120000-abcd1234"
DEAD_LETTERS = "optin-batches-deadletter"  # beside the default OPTIN_QUEUE_NAME

# The ribbon API's parts: queue and timer functions never reach them.
NOT_USED: Any = None


class NoJournal:
    def record(self, run_id: str, kind: str, summary: Mapping[str, object]) -> None:
        raise AssertionError("the applier writes no journal")

    def runs(self, kind: str) -> list[dict[str, object]]:
        return []


class Fixture:
    def __init__(self) -> None:
        self.records = FakeCrmRecords()
        self.settings = FakeCrmSettings([], [SyncSchedule(
            "sched-1", "acc-1", SyncType.CONTACT_OPT_IN, status=SyncStatus.IN_PROGRESS)])
        self.state = InMemorySyncStateStore(clock=lambda: NOW)
        self.publisher = FakeBatchPublisher()
        self.services = bootstrap.Services(
            settings=load_settings(ENVIRON), crm_settings=self.settings,
            crm_records=self.records, crm_suppressions=InMemoryCrmSuppressions(),
            email_platform=FakeEmailPlatform(),
            run_journal=NoJournal(), sync_state=self.state, publisher=self.publisher,
            codec=JsonMessageCodec(), crm_programs=InMemoryCrmPrograms(),
            user_tokens=NOT_USED, records_as_user=NOT_USED, enrolments=NOT_USED,
        engagement_source=NOT_USED, event_store=InMemoryEventStore(),
        )
        key = optin_sync_key("acc-1", dry_run=False)
        self.state.start_run(key, RUN, since=NOW - dt.timedelta(hours=1), until=NOW)
        self.state.record_published(key, RUN, batches=1, done=True)

    def run(self) -> Any:
        return self.state.get_run(optin_sync_key("acc-1", dry_run=False), RUN)


def queue_function() -> Callable[[func.ServiceBusMessage], None]:
    function: Any = sync_queues.apply_optin.build().get_user_function()
    return function  # type: ignore[no-any-return]


def message(
    body: bytes, *, delivery_count: int = 1, properties: Mapping[str, object] | None = None
) -> ServiceBusMessage:
    return ServiceBusMessage(
        body=body, message_id="m-1", delivery_count=delivery_count, session_id="optin-0",
        application_properties=dict(properties or {}), user_properties=dict(properties or {}),
        content_type="application/json",
    )


def a_batch(*items: tuple[str, str]) -> ApplyOptInBatch:
    return ApplyOptInBatch(BatchRef("acc-1", RUN, 0),
                           tuple(OptInChange(email, kind) for email, kind in items))


def batch_body(*items: tuple[str, str]) -> bytes:
    return encode(a_batch(*items)).body


def test_a_good_batch_is_applied_and_completes_the_run() -> None:
    fixture = Fixture()
    contact = fixture.records.add("contact", "Ann@Example.com")
    with bootstrap.override(fixture.services):
        queue_function()(message(batch_body(("ann@example.com", "Double"), ("", "Single"))))
    assert fixture.records.values()[("contact", contact.row_id)] is OptInType.DOUBLE
    run = fixture.run()
    assert run.status is RunStatus.COMPLETED
    assert run.counters["invalid_email"] == 1 and run.counters["changed_contact"] == 1
    assert fixture.settings.schedules["sched-1"].status is SyncStatus.NONE


def test_a_v1_batch_still_in_flight_is_applied_after_an_upgrade() -> None:
    fixture = Fixture()
    contact = fixture.records.add("contact", "ann@example.com")
    v1 = (b'{"schema": "optin-batch", "version": 1, "run_id": "' + RUN.encode()
          + b'", "account": "acc-1", "batch": 0, "items": [{"email": "ann@example.com",'
          b' "opt_in_type": "Double", "modified": "2024-05-01T11:59:00Z"}]}')
    with bootstrap.override(fixture.services):
        queue_function()(message(v1))
    assert fixture.records.values()[("contact", contact.row_id)] is OptInType.DOUBLE
    assert fixture.run().status is RunStatus.COMPLETED


@pytest.mark.parametrize("body", [b"", b"\xff", b"[]", b'{"schema": "optin-batch"}',
                                  b'{"schema": "optin-batch", "version": 1, "items": []}'])
def test_an_undecodable_message_is_dead_lettered_at_once_and_changes_nothing(body: bytes) -> None:
    fixture = Fixture()
    fixture.records.add("contact", "ann@example.com")
    with bootstrap.override(fixture.services):
        queue_function()(message(body))  # completes: redelivering it could never succeed
    assert fixture.records.lookups == [] and fixture.records.writes == []
    assert fixture.run().batches_applied == 0
    [letter] = fixture.publisher.messages(DEAD_LETTERS)
    assert (letter.message_id, letter.body) == ("m-1", body)
    assert letter.application_properties["DeadLetterReason"] == "MessageFormatError"
    assert letter.application_properties["SessionId"] == "optin-0"
    assert letter.application_properties["DeliveryCount"] == 1


def test_the_last_delivery_marks_the_batch_failed_then_raises() -> None:
    fixture = Fixture()
    fixture.records.add("contact", "ann@example.com")
    fixture.records.fail_next = 3
    body = batch_body(("ann@example.com", "Double"), ("bob@example.com", "Single"))
    with bootstrap.override(fixture.services):
        for delivery in (1, 2):
            with pytest.raises(TransientError):
                queue_function()(message(body, delivery_count=delivery))
            assert fixture.run().batches_applied == 0
        with pytest.raises(TransientError):
            queue_function()(message(body, delivery_count=3))
    run = fixture.run()
    assert run.status is RunStatus.COMPLETED
    assert run.counters["failed"] == 2
    assert fixture.settings.schedules["sched-1"].last_result == "2 read, 0 changed, 2 failed"
    assert fixture.publisher.messages(DEAD_LETTERS) == []  # the broker dead-letters it


def test_a_batch_crm_refuses_is_dead_lettered_and_counted_failed_on_its_first_delivery() -> None:
    fixture = Fixture()
    fixture.records.add("contact", "ann@example.com")
    fixture.records.fail_next = 1
    fixture.records.failure = BadRequest(System.DATAVERSE, "bad column", status=400)
    body = batch_body(("ann@example.com", "Double"), ("bob@example.com", "Single"))
    with bootstrap.override(fixture.services):
        queue_function()(message(body))
    run = fixture.run()
    assert run.status is RunStatus.COMPLETED and run.counters["failed"] == 2
    assert fixture.settings.schedules["sched-1"].last_result == "2 read, 0 changed, 2 failed"
    [letter] = fixture.publisher.messages(DEAD_LETTERS)
    assert letter.body == body
    assert letter.application_properties["DeadLetterReason"] == "BadRequest"


def test_an_undecodable_batch_is_counted_as_failed_in_its_run_on_its_first_delivery() -> None:
    fixture = Fixture()
    fixture.records.add("contact", "ann@example.com")
    # What encode put in the properties of a batch of two, with a body that no longer decodes.
    properties = dict(encode(a_batch(("ann@example.com", "Double"),
                                     ("bob@example.com", "Single"))).application_properties)
    with bootstrap.override(fixture.services):
        queue_function()(message(b"{", delivery_count=1, properties=properties))
    run = fixture.run()
    assert run.status is RunStatus.COMPLETED
    assert run.counters["items"] == 2 and run.counters["failed"] == 2
    schedule = fixture.settings.schedules["sched-1"]
    assert schedule.status is SyncStatus.NONE
    assert schedule.last_result == "2 read, 0 changed, 2 failed"
    assert fixture.records.lookups == [] and fixture.records.writes == []
    [letter] = fixture.publisher.messages(DEAD_LETTERS)
    assert letter.application_properties["DeadLetterReason"] == "MessageFormatError"
    assert letter.application_properties["run_id"] == RUN  # still names its batch


@pytest.mark.parametrize("properties", [
    {},
    {"schema": "other", "run_id": RUN, "account": "acc-1", "batch": 0, "items": 2,
     "dry_run": False},
    {"schema": "optin-batch", "run_id": RUN, "account": "acc-1", "batch": 0, "items": 2},
    {"schema": "optin-batch", "run_id": RUN, "account": "acc-1", "batch": "0", "items": 2,
     "dry_run": False},
    {"schema": "optin-batch", "run_id": RUN, "account": "", "batch": 0, "items": 2,
     "dry_run": False},
])
def test_an_undecodable_message_whose_properties_name_no_batch_counts_nothing(
    properties: dict[str, object],
) -> None:
    fixture = Fixture()
    with bootstrap.override(fixture.services):
        queue_function()(message(b"{", delivery_count=1, properties=properties))
    assert fixture.run().batches_applied == 0
    assert fixture.settings.schedules["sched-1"].status is SyncStatus.IN_PROGRESS
    assert len(fixture.publisher.messages(DEAD_LETTERS)) == 1
