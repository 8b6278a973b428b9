"""The kill trials' checks: the watermark check finds a watermark ahead of what is applied or
queued (opt-in and engagement batches), and the Engagement sync's final state and summary check
see an event stored twice or a summary that counts wrong."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from azure.data.tables import EdmType, EntityProperty

from bench.kill_trials import (
    SYNCS,
    engagement_state,
    reading,
    summary_violations,
    watermark_violations,
)
from bench.process_stack import ENGAGEMENT_QUEUE, OPTIN_QUEUE
from devhost.local_publisher import LocalQueuePublisher
from devhost.local_queue import LocalQueueStore, QueueOptions
from shared.adapters.servicebus.message_codec import encode
from shared.domain.commands import ApplyEngagementBatch, ApplyOptInBatch, BatchRef, OptInChange
from shared.domain.engagement import SUMMARY_ROW_KEY, EngagementEvent, EventKind, row_key
from shared.services.ports import ReceivedMessage

UNTIL = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)
PARTITION = "account-1|ContactOptIn"


class FrozenState:
    """What ``watermark_violations`` reads of a stack: the state table's rows."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def state_rows(self) -> list[dict[str, Any]]:
        return self.rows


def _rows(*, published: int, applied: list[int], status: str = "applying",
          watermark: dt.datetime | None = UNTIL) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{
        "PartitionKey": PARTITION, "RowKey": "run|r1", "Status": status, "Until": UNTIL,
        "BatchesPublished": EntityProperty(published, EdmType.INT64),
    }]
    rows += [{"PartitionKey": PARTITION, "RowKey": f"run|r1|batch|{b:07d}"} for b in applied]
    if watermark is not None:
        rows.append({"PartitionKey": PARTITION, "RowKey": "watermark", "Value": watermark})
    return rows


def _command(batch: int) -> ApplyOptInBatch:
    return ApplyOptInBatch(BatchRef("account-1", "r1", batch),
                           (OptInChange("a@example.com", "Double"),))


def _queue(tmp_path: Path, batches: list[int]) -> LocalQueueStore:
    store = LocalQueueStore(tmp_path)
    store.configure(OPTIN_QUEUE, QueueOptions(requires_session=True))
    LocalQueuePublisher(store).publish(OPTIN_QUEUE, [_command(b) for b in batches],
                                       session_id="optin-0")
    return store


def test_every_batch_applied_or_queued_is_no_violation(tmp_path: Path) -> None:
    store = _queue(tmp_path, [2])
    state = FrozenState(_rows(published=3, applied=[0, 1]))
    assert watermark_violations(state, store) == []


def test_a_batch_neither_applied_nor_queued_is_reported(tmp_path: Path) -> None:
    store = _queue(tmp_path, [])
    problems = watermark_violations(FrozenState(_rows(published=3, applied=[0, 1])), store)
    assert problems == [f"{PARTITION} run r1: batch 2 is behind the watermark but neither "
                        "applied nor queued"]


def test_a_watermark_over_a_run_still_publishing_is_reported(tmp_path: Path) -> None:
    store = _queue(tmp_path, [0])
    problems = watermark_violations(
        FrozenState(_rows(published=1, applied=[], status="publishing")), store)
    assert problems == [f"{PARTITION} run r1: watermark moved before publishing finished"]


def test_a_watermark_no_run_ends_at_is_reported(tmp_path: Path) -> None:
    store = _queue(tmp_path, [])
    later = UNTIL + dt.timedelta(hours=1)
    problems = watermark_violations(
        FrozenState(_rows(published=0, applied=[], watermark=later)), store)
    assert problems == [f"{PARTITION}: no run ends at the watermark {later}"]


def test_a_batch_the_app_moved_to_the_dead_letters_is_no_violation(tmp_path: Path) -> None:
    store = _queue(tmp_path, [])
    encoded = encode(_command(2), session_id="optin-0")
    received = ReceivedMessage(encoded.message_id, encoded.body,
                               dict(encoded.application_properties), "optin-0", 1)
    LocalQueuePublisher(store).dead_letter(OPTIN_QUEUE, received, reason="BadRequest",
                                           description="400")
    assert watermark_violations(FrozenState(_rows(published=3, applied=[0, 1])), store) == []


def test_an_unreadable_message_on_the_queue_is_named_by_its_properties(tmp_path: Path) -> None:
    store = _queue(tmp_path, [])
    encoded = encode(_command(2), session_id="optin-0")
    received = ReceivedMessage(encoded.message_id, b"{", dict(encoded.application_properties),
                               "optin-0", 1)
    LocalQueuePublisher(store).dead_letter(OPTIN_QUEUE, received, reason="MessageFormatError",
                                           description="not JSON")
    assert watermark_violations(FrozenState(_rows(published=3, applied=[0, 1])), store) == []


# --- the Engagement sync ---------------------------------------------------------------------
ENGAGEMENT_PARTITION = "account-1|Engagement"
OPENED = dt.datetime(2025, 5, 2, 9, 30, tzinfo=dt.UTC)
SENT = dt.datetime(2025, 5, 2, 9, tzinfo=dt.UTC)


def _engagement_command(batch: int) -> ApplyEngagementBatch:
    event = EngagementEvent("ann@example.com", EventKind.OPEN, OPENED, "campaign:11", "Sale")
    return ApplyEngagementBatch(BatchRef("account-1", "r1", batch), (event,))


def _engagement_queue(tmp_path: Path, batches: list[int]) -> LocalQueueStore:
    store = LocalQueueStore(tmp_path)
    store.configure(ENGAGEMENT_QUEUE, QueueOptions(requires_session=True))
    LocalQueuePublisher(store).publish(
        ENGAGEMENT_QUEUE, [_engagement_command(b) for b in batches], session_id="engagement-0")
    return store


def _engagement_rows(*, published: int, applied: list[int]) -> list[dict[str, Any]]:
    return [{**row, "PartitionKey": ENGAGEMENT_PARTITION}
            for row in _rows(published=published, applied=applied)]


def test_an_engagement_batch_on_the_queue_is_no_violation(tmp_path: Path) -> None:
    store = _engagement_queue(tmp_path, [2])
    state = FrozenState(_engagement_rows(published=3, applied=[0, 1]))
    assert watermark_violations(state, store, SYNCS["engagement"]) == []


def test_an_engagement_batch_neither_applied_nor_queued_is_reported(tmp_path: Path) -> None:
    store = _engagement_queue(tmp_path, [])
    state = FrozenState(_engagement_rows(published=3, applied=[0, 1]))
    assert watermark_violations(state, store, SYNCS["engagement"]) == [
        f"{ENGAGEMENT_PARTITION} run r1: batch 2 is behind the watermark but neither applied "
        "nor queued"]


def test_an_unreadable_engagement_message_is_named_by_its_properties(tmp_path: Path) -> None:
    store = _engagement_queue(tmp_path, [])
    encoded = encode(_engagement_command(2), session_id="engagement-0")
    received = ReceivedMessage(encoded.message_id, b"{", dict(encoded.application_properties),
                               "engagement-0", 1)
    LocalQueuePublisher(store).dead_letter(ENGAGEMENT_QUEUE, received,
                                           reason="MessageFormatError", description="not JSON")
    state = FrozenState(_engagement_rows(published=3, applied=[0, 1]))
    assert watermark_violations(state, store, SYNCS["engagement"]) == []


def test_a_kill_is_while_reading_until_every_account_has_published_its_run() -> None:
    engagement = SYNCS["engagement"]
    publishing = _engagement_rows(published=1, applied=[])
    publishing[0]["Status"] = "publishing"
    assert reading(FrozenState(publishing), engagement, accounts=1)
    applying = _engagement_rows(published=3, applied=[0])
    assert not reading(FrozenState(applying), engagement, accounts=1)
    assert reading(FrozenState(applying), engagement, accounts=2)  # one has not started
    assert reading(FrozenState(_rows(published=3, applied=[])), engagement, accounts=1)


def _event_row(event: EngagementEvent, *, event_id: str | None = None) -> dict[str, Any]:
    """An event row as the event store holds it (another id: the same event stored twice)."""
    key = row_key(event) if event_id is None else f"{row_key(event)[:14]}{event_id}"
    return {"PartitionKey": event.person_key, "RowKey": key, "Kind": event.kind.value,
            "At": event.at, "SourceId": event.source_id, "Title": event.title,
            "Details": event.details_json, "EventId": key[14:]}


def _summary_row(person: str, *, sends: int, opens: int, first: dt.datetime,
                 last: dt.datetime) -> dict[str, Any]:
    counts = {"send": sends, "open": opens, "click": 0, "page_view": 0, "form_response": 0}
    return {"PartitionKey": person, "RowKey": SUMMARY_ROW_KEY, "Kind": "summary",
            **{f"n_{kind}": EntityProperty(n, EdmType.INT64) for kind, n in counts.items()},
            "FirstAt": first, "LastAt": last}


SEND = EngagementEvent("ann@example.com", EventKind.SEND, SENT, "campaign:11", "Sale")
OPEN = EngagementEvent("Ann@Example.com", EventKind.OPEN, OPENED, "campaign:11", "Sale",
                       {"mail_client": "Outlook"})
ANN = SEND.person_key


def test_a_store_whose_summaries_count_its_events_has_no_violation() -> None:
    rows = [_summary_row(ANN, sends=1, opens=1, first=SENT, last=OPENED),
            _event_row(SEND), _event_row(OPEN)]
    assert summary_violations(rows) == []
    state = engagement_state(rows)
    assert state[f"summary:{ANN}"] == (1, 1, 0, 0, 0, SENT.isoformat(), OPENED.isoformat())
    assert state[f"event:{ANN}:open|{OPENED.isoformat()}|Sale|{OPEN.details_json}"] == 1


def test_an_event_stored_twice_differs_from_the_fault_free_state() -> None:
    once = [_summary_row(ANN, sends=1, opens=1, first=SENT, last=OPENED),
            _event_row(SEND), _event_row(OPEN)]
    twice = [_summary_row(ANN, sends=1, opens=2, first=SENT, last=OPENED),
             _event_row(SEND), _event_row(OPEN), _event_row(OPEN, event_id="f" * 32)]
    assert summary_violations(twice) == []  # counted in its summary too: still consistent
    reference, final = engagement_state(once), engagement_state(twice)
    assert {key for key in reference.keys() | final.keys()
            if reference.get(key) != final.get(key)} == {
        f"summary:{ANN}", f"event:{ANN}:open|{OPENED.isoformat()}|Sale|{OPEN.details_json}"}


def test_a_summary_that_counts_an_event_twice_is_reported() -> None:
    rows = [_summary_row(ANN, sends=1, opens=2, first=SENT, last=OPENED),
            _event_row(SEND), _event_row(OPEN)]
    assert summary_violations(rows) == [
        f"person {ANN[:12]}: summary (1, 2, 0, 0, 0, '{SENT.isoformat()}', "
        f"'{OPENED.isoformat()}') but the events held make (1, 1, 0, 0, 0, "
        f"'{SENT.isoformat()}', '{OPENED.isoformat()}')"]


def test_events_without_a_summary_and_a_summary_without_events_are_reported() -> None:
    bob = EngagementEvent("bob@example.com", EventKind.SEND, SENT, "campaign:11", "Sale")
    rows = [_event_row(SEND), _summary_row(bob.person_key, sends=1, opens=0, first=SENT,
                                           last=SENT)]
    problems = summary_violations(rows)
    assert len(problems) == 2
    assert any(problem.startswith(f"person {ANN[:12]}: summary None") for problem in problems)
    assert any(problem.startswith(f"person {bob.person_key[:12]}: summary (1, 0")
               and problem.endswith("make None") for problem in problems)
