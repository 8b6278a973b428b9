"""The kill trials' watermark check finds a watermark ahead of what is applied or queued."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from azure.data.tables import EdmType, EntityProperty

from bench.kill_trials import watermark_violations
from bench.process_stack import OPTIN_QUEUE
from devhost.local_publisher import LocalQueuePublisher
from devhost.local_queue import LocalQueueStore, QueueOptions
from shared.adapters.servicebus.message_codec import encode
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
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
