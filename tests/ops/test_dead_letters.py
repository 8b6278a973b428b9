"""``python -m ops dead-letters`` on the dev host's queues, end to end: the app in a local stack
gives a batch up, the console lists, shows, replays and purges it, and the run's counts follow.

Brand 1's only lead (cat@example.com) is alone in its shard, so its batch is the one write to
``leads``: a Dataverse fault on that request poisons exactly that batch.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient

from devhost.local_publisher import LocalQueuePublisher
from devhost.local_queue import MAX_DELIVERY_COUNT_EXCEEDED, LocalQueueStore, QueueOptions
from devtools.azurite import AzuriteHandle
from devtools.local_stack import LocalStack
from ops.dead_letters.accounting import RunAccounting
from ops.dead_letters.local import LocalDeadLetters
from ops.dead_letters.masking import mask_email, mask_text
from ops.dead_letters.model import DeadLetter, Where
from ops.dead_letters.replay import replay, replay_message
from ops.dead_letters.store import DeadLetterConsole
from ops.dead_letters.views import show_record
from shared.adapters.servicebus import message_codec as codec
from shared.adapters.servicebus.message_codec import OutboundMessage
from shared.adapters.storage.sync_state import TableSyncStateStore
from shared.domain.commands import (
    ApplyEngagementBatch,
    ApplyOptInBatch,
    ApplySuppressionBatch,
    BatchRef,
    OptInChange,
    QueueCommand,
    SuppressionEvent,
)
from shared.domain.engagement import EngagementEvent, EventKind
from shared.domain.model import SyncType
from shared.services.optin.applier import COUNTERS as OPTIN_COUNTERS
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import ReceivedMessage, RunState, RunStatus
from tests.e2e.org import value_of
from tests.ops.conftest import Console, OpsStack

LEAD_WRITES = "/api/data/v9.2/leads/Microsoft.Dynamics.CRM.UpdateMultiple"
POISONED = "cat@example.com"


class Terminal(io.StringIO):
    """stdin as a person at a terminal answers."""

    def isatty(self) -> bool:
        return True


def refuse_lead_writes(stack: LocalStack, status: int) -> None:
    stack.dataverse.set_faults([{"method": "POST", "status": status, "path": LEAD_WRITES}])


def letters(console: Console, *args: str) -> list[dict[str, Any]]:
    code, out, err = console("dead-letters", "list", "--json", *args)
    assert code == 0, err
    found: list[dict[str, Any]] = json.loads(out)
    return found


def the_lead(stack: LocalStack) -> dict[str, Any]:
    [lead] = [row for row in stack.dataverse.rows("leads") if row["emailaddress1"] == POISONED]
    return lead


def run_of(stack: LocalStack, account: str, run_id: str) -> RunState:
    run = stack.state.get_run(optin_sync_key(account, dry_run=False), run_id)
    assert run is not None
    return run


def last_result(stack: LocalStack, account: str) -> str | None:
    [schedule] = [s for s in stack.schedules(SyncType.CONTACT_OPT_IN)
                  if s.email_account_id == account]
    return schedule.last_result


def attention(console: Console) -> tuple[int, list[tuple[str, str]]]:
    code, out, _ = console("status", "--no-connectivity", "--json")
    return code, [(item["kind"], item["subject"]) for item in json.loads(out)["attention"]]


def test_a_poisoned_batch_is_listed_shown_replayed_once_and_its_run_then_counts_exactly(
    ops_stack: OpsStack, console: Console,
) -> None:
    stack, brand1 = ops_stack.stack, ops_stack.account_id(0)
    refuse_lead_writes(stack, 400)
    stack.request_sync_now(email_accounts=[brand1])
    stack.run_until_complete(timeout_s=60)
    result = last_result(stack, brand1)
    assert result is not None and result.endswith(" changed, 1 failed"), result
    read, changed = int(result.split()[0]), int(result.split()[2])

    # list: the batch with its reason, run, account and batch number.
    [listed] = letters(console, "--account", brand1)
    letter_id, run_id = listed["message_id"], listed["run_id"]
    assert listed["queue"] == stack.optin_queue and listed["where"] == "app"
    assert listed["reason"] == "BadRequest" and "400" in listed["description"]
    assert listed["email_account_id"] == brand1 and listed["sync_type"] == "ContactOptIn"
    assert isinstance(listed["batch"], int) and listed["items"] == 1
    assert listed["delivery_count"] == 1 and listed["readable"] is True
    assert run_of(stack, brand1, run_id).counters["failed"] == 1
    code, out, _ = console("dead-letters", "list")
    assert code == 0
    assert all(text in out for text in (letter_id, "BadRequest", run_id, brand1, "app"))
    assert [x["message_id"] for x in letters(console, "--run", run_id)] == [letter_id]
    assert [x["message_id"] for x in letters(console, "--account", "Brand 1")] == [letter_id]
    assert letters(console, "--run", "20000101T000000-00000000") == []
    assert letters(console, "--queue", stack.suppression_queue) == []
    assert console("dead-letters", "list", "--queue", "nope")[0] == 2
    code, found = attention(console)
    assert code == 1 and ("dead_letters", stack.optin_queue) in found

    # show: the items, addresses masked unless revealed.
    code, out, _ = console("dead-letters", "show", letter_id)
    assert code == 0 and "c***@e***.com" in out and POISONED not in out
    assert "VerifiedDouble" in out and run_id in out and "BadRequest" in out
    code, out, _ = console("dead-letters", "show", letter_id, "--json")
    assert json.loads(out)["item_list"] == [{"email": "c***@e***.com",
                                             "opt_in_type": "VerifiedDouble"}]
    code, out, _ = console("dead-letters", "show", letter_id, "--reveal")
    assert code == 0 and POISONED in out
    assert console("dead-letters", "show", "no-such-id")[0] == 2

    # A replay that fails again is dead-lettered again, with the new reason, and stays there.
    refuse_lead_writes(stack, 403)
    code, out, err = console("dead-letters", "replay", letter_id, "--yes")
    assert code == 0, (out, err)
    stack.wait_idle()
    time.sleep(1.0)  # nothing re-sends it: still one dead letter, the queue still idle
    stack.wait_idle()
    [again] = letters(console, "--account", brand1)
    assert again["message_id"] == f"{letter_id}~replay-1" and again["replay_number"] == 1
    assert again["reason"] == "AuthFailed" and again["run_id"] == run_id
    assert stack.host.store.counts(stack.optin_queue).active == 0
    assert run_of(stack, brand1, run_id).counters["failed"] == 1  # counted failed, once
    assert the_lead(stack)["ec_optintype"] == value_of("Unknown")

    # The fault removed, the replay applies the batch once and the run counts it exactly.
    stack.dataverse.clear_faults()
    held = LocalDeadLetters(stack.host.store).dead_letters(stack.optin_queue)
    code, out, err = console("dead-letters", "replay", again["message_id"], "--yes")
    assert code == 0, (out, err)
    assert f"{letter_id}~replay-2" in out and "taken back" in out
    stack.wait_idle()
    lead = the_lead(stack)
    assert lead["ec_optintype"] == value_of("VerifiedDouble")
    run = run_of(stack, brand1, run_id)
    assert run.counters["failed"] == 0 and run.counters["changed_lead"] == 1
    assert last_result(stack, brand1) == f"{read} read, {changed + 1} changed, 0 failed"
    assert letters(console, "--account", brand1) == []
    assert attention(console) == (0, [])  # healthy again: status exits 0

    # Replaying twice changes nothing: the dead letter is gone, and the same send again is
    # dropped by duplicate detection.
    code, _, err = console("dead-letters", "replay", again["message_id"], "--yes")
    assert code == 2 and "no dead letter" in err
    LocalDeadLetters(stack.host.store).send(stack.optin_queue, replay_message(held[0]))
    stack.wait_idle()
    assert stack.host.store.counts(stack.optin_queue).active == 0
    assert the_lead(stack)["versionnumber"] == lead["versionnumber"]
    assert run_of(stack, brand1, run_id).counters == run.counters


def test_purge_deletes_dead_letters_only_once_confirmed(
    ops_stack: OpsStack, console: Console, monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = ops_stack.stack
    # Bodies no schema reads and no properties naming a batch: parked at once, in no run.
    stack.host.store.send(stack.optin_queue, [
        OutboundMessage(name, b"\xff not json", session_id="optin-0")
        for name in ("poison-a", "poison-b")])
    stack.wait_idle()

    def parked() -> list[str]:
        return sorted(x["message_id"] for x in letters(console)
                      if x["message_id"].startswith("poison-"))

    assert parked() == ["poison-a", "poison-b"]
    [listed] = [x for x in letters(console) if x["message_id"] == "poison-a"]
    assert listed["reason"] == "MessageFormatError" and listed["run_id"] is None
    assert listed["readable"] is False

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal, no --yes
    code, _, err = console("dead-letters", "purge", "poison-a")
    assert code == 2 and "--yes" in err and parked() == ["poison-a", "poison-b"]
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, _, err = console("dead-letters", "purge", "poison-a")
    assert code == 0 and "nothing changed" in err and parked() == ["poison-a", "poison-b"]
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, _ = console("dead-letters", "purge", "poison-a")
    assert code == 0 and "poison-a" in out and parked() == ["poison-b"]
    assert console("dead-letters", "purge", "poison-b", "--yes")[0] == 0
    assert parked() == []
    assert console("dead-letters", "purge")[0] == 2  # names nothing
    assert stack.host.store.counts(stack.optin_queue).active == 0  # purging sends nothing


# --- the local back end and the masking, without a stack --------------------------------------
def test_a_broker_dead_letter_on_the_local_queues_is_replayed_and_removed(tmp_path: Path) -> None:
    store = LocalQueueStore(tmp_path)
    queue = "optin-batches"
    store.configure(queue, QueueOptions(max_delivery_count=1, requires_session=True))
    command = ApplyOptInBatch(BatchRef("acct-1", "20260302T120000-1a2b3c4d", 4),
                              (OptInChange("a@example.com", "Double"),))
    store.send(queue, [codec.encode(command, session_id="optin-2")])
    session = store.accept_next_session(queue)
    assert session is not None
    [delivered] = store.receive_from_session(session).messages
    assert store.abandon(delivered, "TransientError: dataverse 503")  # the last delivery
    store.release_session(session)
    local = LocalDeadLetters(store)

    [letter] = local.dead_letters(queue)
    assert (letter.where, letter.entity) == (Where.BROKER, f"{queue}/$deadletterqueue")
    assert letter.reason == MAX_DELIVERY_COUNT_EXCEEDED and letter.delivery_count == 1
    assert letter.description == "TransientError: dataverse 503"
    assert letter.session_id == "optin-2"

    report = replay(DeadLetterConsole(local, (queue,)), [letter], [letter])

    assert report.ok and store.dead_letters(queue) == []
    [again] = store.peek(queue)
    assert again.message_id == f"{delivered.message_id}~replay-1"
    assert again.session_id == "optin-2" and again.body == delivered.body
    assert again.application_properties["ReplayOf"] == delivered.message_id
    local.send(queue, replay_message(letter))  # the same replay again: a duplicate, dropped
    assert store.counts(queue).active == 1
    # A message a receiver holds is not removed under it.
    session = store.accept_next_session(queue)
    assert session is not None
    [held] = store.receive_from_session(session).messages
    assert not store.delete(queue, held.sequence_number)


def a_letter(account: str, run_id: str, batch: int) -> DeadLetter:
    message = codec.encode(ApplyOptInBatch(BatchRef(account, run_id, batch),
                                           (OptInChange("a@example.com", "Double"),)),
                           session_id="optin-1")
    return DeadLetter("optin-batches", "optin-batches-deadletter", Where.APP, message.message_id,
                      1, message.body, message.application_properties, "optin-1", 1,
                      "BadRequest", "", None)


def test_reopening_takes_a_given_up_batch_back_out_of_its_run_and_can_put_it_back(
    azurite: AzuriteHandle,
) -> None:
    table = TableClient.from_connection_string(azurite.connection_string, "deadletterruns")
    state, accounting = TableSyncStateStore(table), RunAccounting(table)
    account, run_id = "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "20260302T120000-1a2b3c4d"
    key = optin_sync_key(account, dry_run=False)
    since = dt.datetime(2026, 3, 2, 11, tzinfo=dt.UTC)
    state.start_run(key, run_id, since=since, until=since + dt.timedelta(hours=1))
    state.record_published(key, run_id, batches=2, done=True)
    applied = dict.fromkeys(OPTIN_COUNTERS, 0) | {"items": 3, "changed_contact": 2}
    given_up = dict.fromkeys(OPTIN_COUNTERS, 0) | {"items": 1, "failed": 1}
    state.mark_batch_applied(key, run_id, 0, applied)
    assert state.mark_batch_applied(key, run_id, 1, given_up).completed_now

    reopened = accounting.reopen(a_letter(account, run_id, 1))
    assert "taken back" in reopened.note and reopened.undo is not None
    run = state.get_run(key, run_id)
    assert run is not None and run.status is RunStatus.APPLYING
    assert run.batches_applied == 1 and run.counters == applied

    # The replay could not be sent: the run is as it was.
    assert "failed again" in reopened.undo()
    run = state.get_run(key, run_id)
    assert run is not None and run.status is RunStatus.COMPLETED
    assert run.counters["failed"] == 1 and run.counters["changed_contact"] == 2

    # Taken back again, the replay's delivery completes the run with exact counts.
    accounting.reopen(a_letter(account, run_id, 1))
    replayed = dict.fromkeys(OPTIN_COUNTERS, 0) | {"items": 1, "changed_lead": 1}
    outcome = state.mark_batch_applied(key, run_id, 1, replayed)
    assert outcome.applied_now and outcome.completed_now
    assert outcome.run.counters["failed"] == 0 and outcome.run.counters["changed_lead"] == 1

    # A batch counted as applied, and a run retention purged, are left alone.
    again = accounting.reopen(a_letter(account, run_id, 1))
    assert "changes no count" in again.note and again.undo is None
    gone = accounting.reopen(a_letter(account, "20000101T000000-00000000", 0))
    assert "no longer in the state store" in gone.note and gone.undo is None


def test_every_schema_is_shown_with_its_items_and_nothing_personal_unless_revealed(
    tmp_path: Path,
) -> None:
    store = LocalQueueStore(tmp_path)
    at = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    ref = BatchRef("acct-1", "20260302T120000-1a2b3c4d", 0)
    commands: dict[str, QueueCommand] = {
        "suppression-batches": ApplySuppressionBatch(
            ref, account_name="Brand 1", update_do_not_bulk_email=True,
            items=(SuppressionEvent("sue@example.com", at, "HardBounced"),
                   SuppressionEvent("tom@example.com", at, ""))),
        "engagement-batches": ApplyEngagementBatch(ref, (EngagementEvent(
            "ann@example.com", EventKind.FORM_RESPONSE, at, "form-7", "Preferences",
            {"answers": [{"question": "Email", "answer": "ann@example.com"}]}),)),
    }
    publisher = LocalQueuePublisher(store)
    for queue, command in commands.items():
        message = codec.encode(command, session_id="s-0")
        publisher.dead_letter(queue, ReceivedMessage(
            message.message_id, message.body, message.application_properties, "s-0", 1),
            reason="NotFound", description="no column ec_reason")
    local = LocalDeadLetters(store)

    [suppression] = local.dead_letters("suppression-batches")
    assert suppression.where is Where.APP and suppression.session_id == "s-0"
    masked = show_record(suppression, at, reveal=False)
    assert masked["sync_type"] == "SuppressionLists" and masked["account_name"] == "Brand 1"
    assert masked["item_list"] == [
        {"email": "s***@e***.com", "at": at.isoformat(), "reason": "HardBounced"},
        {"email": "t***@e***.com", "at": at.isoformat(), "reason": "(resubscribed)"}]
    [engagement] = local.dead_letters("engagement-batches")
    masked = show_record(engagement, at, reveal=False)
    assert masked["sync_type"] == "Engagement"
    assert "ann@" not in json.dumps(masked, default=str)
    assert masked["item_list"][0]["details"] == ["answers"]  # the field names only
    revealed = show_record(engagement, at, reveal=True)
    assert revealed["item_list"][0]["details"]["answers"][0]["answer"] == "ann@example.com"


@pytest.mark.parametrize(("address", "masked"), [
    ("john.doe@example.com", "j***@e***.com"),
    ("Ann@Shop.co.uk", "A***@S***.uk"),
    ("x@localhost", "x***@l***"),
    ("not an address", "n***"),
    ("", ""),
])
def test_addresses_are_masked_to_their_first_letters(address: str, masked: str) -> None:
    assert mask_email(address) == masked


def test_addresses_in_free_text_are_masked() -> None:
    assert mask_text("contact 'jo@example.com' and bob@x.org refused") == (
        "contact 'j***@e***.com' and b***@x***.org refused")
