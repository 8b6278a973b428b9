"""Faults through the whole app: throttling, errors and resets on both services, and batches
that never succeed (dead letters)."""

from __future__ import annotations

import json
from typing import Any

from devhost.local_queue import MAX_DELIVERY_COUNT_EXCEEDED, LocalQueueStore
from devtools.local_stack import LocalStack
from devtools.run_report import build_report
from emulators.datagen import generate_dataset
from shared.adapters.servicebus.message_codec import OutboundMessage
from shared.domain.email import match_key
from shared.domain.model import SyncStatus
from shared.domain.optin import shard_of
from tests.e2e.conftest import stack_for
from tests.e2e.org import Org, value_of

# Rules are tried in order, each with its own draw: these give 10% 429, 5% 503 and 2% resets.
FAULTS: list[dict[str, Any]] = [
    {"path": "*", "status": 429, "retry_after": 1, "probability": 0.10},
    {"path": "*", "status": 503, "probability": 0.05 / 0.90},
    {"path": "*", "reset": True, "probability": 0.02 / 0.85},
]


def crm_state(stack: LocalStack) -> dict[str, dict[str, int | None]]:
    return {entity_set: stack.values_of(entity_set)
            for entity_set in ("contacts", "leads", "accounts")}


def test_with_faults_on_both_services_dynamics_ends_as_without_them() -> None:
    dataset = generate_dataset(contacts=800, accounts=3, seed=11)
    with stack_for(dataset) as clean:
        clean.request_sync_now()
        clean.run_until_complete(timeout_s=60)
        expected = crm_state(clean)
        assert build_report(clean)["ok"]
    with stack_for(dataset, SYNC_READER_MAX_SECONDS="5") as faulty:
        for admin in (faulty.dataverse, faulty.dotdigital):
            admin.set_faults(FAULTS, seed=5)
        faulty.request_sync_now()
        completion = faulty.run_until_complete(timeout_s=90)
        report = build_report(faulty, completion)
        assert crm_state(faulty) == expected
        injected = report["faults_injected"]
        assert injected["dataverse"] > 0 and injected["dotdigital"] > 0, report
        assert report["throttled"]["dataverse"] > 0, report
        assert report["dead_lettered"] == 0 and report["total"]["failed"] == 0, report
        assert report["total"]["unfinished_runs"] == 0, report
    changed = sum(1 for table in expected.values() for v in table.values() if v is not None)
    assert changed > 0


def shard_alone(shards: int, taken: set[int]) -> tuple[str, int]:
    """An address whose shard is not in ``taken``."""
    n = 0
    while True:
        address = f"user{n}@example.com"
        key = match_key(address)
        assert isinstance(key, str)
        shard = shard_of(key, shards)
        if shard not in taken:
            return address, shard
        n += 1


def poisoned_org() -> tuple[Org, str, int, list[str]]:
    """One account whose every address but one is in another shard than the poisoned one."""
    org = Org(email_accounts=1)
    row_id = org.add_schedule(0, sync_now=True)
    poisoned, poisoned_shard = shard_alone(4, set())
    org.add_dotdigital(0, poisoned, "Double")
    # Only a lead carries the address, so its batch writes one table: a plain UpdateMultiple
    # (writes to several tables share one $batch, which this fault rule would not single out).
    org.add_crm("leads", poisoned)
    healthy = []
    for n in range(40):
        address = f"healthy{n}@example.com"
        key = match_key(address)
        assert isinstance(key, str)
        if shard_of(key, 4) == poisoned_shard:
            continue
        org.add_dotdigital(0, address, "Single")
        healthy.append(org.add_crm("contacts", address))
    return org, row_id, poisoned_shard, healthy


def test_a_batch_crm_refuses_is_dead_lettered_at_once_with_its_reason_while_the_rest_apply(
) -> None:
    org, row_id, poisoned_shard, healthy = poisoned_org()
    with stack_for(org.dataset(), OPTIN_SHARDS="4", OPTIN_MAX_DELIVERY_COUNT="3") as stack:
        stack.dataverse.set_faults([{
            "method": "POST", "status": 400,
            "path": "/api/data/v9.2/leads/Microsoft.Dynamics.CRM.UpdateMultiple",
        }])
        completion = stack.run_until_complete(timeout_s=60)
        contacts = stack.values_of("contacts")
        assert {contacts[r] for r in healthy} == {value_of("Single")}
        # A 400 fails the same way every time: parked on its first delivery, not redelivered.
        [letter] = stack.dead_letters()
        assert letter.queue == f"{stack.optin_queue}-deadletter"
        assert letter.session_id == f"optin-{poisoned_shard}"
        assert letter.dead_letter_reason == "BadRequest"
        assert letter.delivery_count == 1
        assert "HTTP 400" in (letter.dead_letter_description or ""), letter
        assert stack.host.dead_letters(stack.optin_queue) == []  # none left to the broker
        assert stack.counters()["dead_lettered"] == 0 and stack.counters()["failures"] == 0
        schedule = next(s for s in stack.schedules() if s.row_id == row_id)
        assert schedule.status is SyncStatus.NONE
        assert schedule.last_result == f"{len(healthy) + 1} read, {len(healthy)} changed, 1 failed"
        report = build_report(stack, completion)
        assert report["ok"] is False
        assert report["dead_lettered"] == 1 and report["total"]["failed"] == 1
        [listed] = report["dead_letters"]
        assert (listed["queue"], listed["reason"]) == (letter.queue, "BadRequest")


def test_a_batch_that_keeps_failing_transiently_is_dead_lettered_after_its_last_delivery(
) -> None:
    org, row_id, poisoned_shard, healthy = poisoned_org()
    # One attempt per request: each delivery meets the 503 once, and the broker gives up after
    # the third.
    with stack_for(org.dataset(), OPTIN_SHARDS="4", OPTIN_MAX_DELIVERY_COUNT="3",
                   RETRY_MAX_ATTEMPTS="1") as stack:
        stack.dataverse.set_faults([{
            "method": "POST", "status": 503,
            "path": "/api/data/v9.2/leads/Microsoft.Dynamics.CRM.UpdateMultiple",
        }])
        completion = stack.run_until_complete(timeout_s=60)
        contacts = stack.values_of("contacts")
        assert {contacts[r] for r in healthy} == {value_of("Single")}
        [letter] = stack.dead_letters()
        assert letter.queue == stack.optin_queue  # the broker's own dead letters
        assert letter.session_id == f"optin-{poisoned_shard}"
        assert letter.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED
        assert letter.delivery_count == 3
        assert "TransientError" in (letter.dead_letter_description or ""), letter
        schedule = next(s for s in stack.schedules() if s.row_id == row_id)
        assert schedule.status is SyncStatus.NONE
        assert schedule.last_result == f"{len(healthy) + 1} read, {len(healthy)} changed, 1 failed"
        report = build_report(stack, completion)
        assert report["ok"] is False
        assert report["dead_lettered"] == 1 and report["total"]["failed"] == 1
        assert report["dead_letters"][0]["queue"] == f"{stack.optin_queue}/$deadletterqueue"


def test_an_undecodable_message_is_dead_lettered_at_once_with_its_reason() -> None:
    org = Org(email_accounts=1)
    org.add_schedule(0)
    with stack_for(org.dataset(), OPTIN_MAX_DELIVERY_COUNT="2") as stack:
        store = LocalQueueStore(stack.values["LOCAL_QUEUE_DIR"])
        body = json.dumps({"type": "optin-batch", "version": 99}).encode()
        store.send(stack.optin_queue, [
            OutboundMessage("poison-1", body, session_id="optin-0"),
        ])
        stack.wait_idle()
        [letter] = stack.dead_letters()
        assert letter.message_id == "poison-1" and letter.body == body
        assert letter.dead_letter_reason == "MessageFormatError"
        assert letter.delivery_count == 1 and letter.session_id == "optin-0"
        assert "no 'schema'" in (letter.dead_letter_description or ""), letter
        # The delivery completed: the broker counted no failure and dead-lettered nothing.
        assert stack.counters()["dead_lettered"] == 0 and stack.counters()["failures"] == 0
        assert stack.counters()["completed"] == 1


def test_a_batch_whose_body_cannot_be_read_is_counted_as_failed_in_its_run() -> None:
    org = Org(email_accounts=1)
    row_id = org.add_schedule(0, sync_now=True)
    contacts = []
    for n in range(3):
        org.add_dotdigital(0, f"reader{n}@example.com", "Double")
        contacts.append(org.add_crm("contacts", f"reader{n}@example.com"))
    with stack_for(org.dataset(), queues=False, OPTIN_SHARDS="1",
                   OPTIN_MAX_DELIVERY_COUNT="2") as stack:
        assert stack.trigger_timer().succeeded
        # The run's one batch arrives with a body this app cannot read (a newer schema, or
        # damage on the way), under the application properties its reader gave it.
        directory = stack.values["LOCAL_QUEUE_DIR"]
        store = LocalQueueStore(directory)
        session = store.accept_next_session(stack.optin_queue)
        assert session is not None
        [original] = store.receive_from_session(session).messages
        store.complete(original)
        store.release_session(session)
        store.send(stack.optin_queue, [OutboundMessage(
            "unreadable-0", b'{"schema": "optin-batch", "version": 2}',
            application_properties=original.application_properties,
            session_id=original.session_id,
        )])

        stack.start_queues()
        stack.wait_idle()

        [letter] = stack.dead_letters()
        assert letter.message_id == "unreadable-0"
        assert letter.dead_letter_reason == "MessageFormatError" and letter.delivery_count == 1
        assert letter.application_properties["run_id"] == original.application_properties[
            "run_id"]  # replayable: it still names its batch
        schedule = next(s for s in stack.schedules() if s.row_id == row_id)
        assert schedule.status is SyncStatus.NONE
        assert schedule.last_result == "3 read, 0 changed, 3 failed"
        values = stack.values_of("contacts")
        assert [values[c] for c in contacts] == [None, None, None]
