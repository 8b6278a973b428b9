"""The run journal on Azurite: summaries round-trip, oldest first, replaced by run id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from azure.data.tables import TableServiceClient

from devtools.azurite import AzuriteHandle
from shared.adapters.storage.run_journal import TableRunJournal


def test_runs_round_trip_oldest_first_and_replace_by_id(azurite: AzuriteHandle) -> None:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    journal = TableRunJournal(service, table_name=f"runs{uuid.uuid4().hex[:12]}")
    journal.record("20260101T000002-b", "connectivity", {"ok": False, "accounts": []})
    journal.record("20260101T000001-a", "connectivity", {"ok": True, "accounts": ["A"]})
    journal.record("20260101T000002-b", "connectivity", {"ok": True, "accounts": ["B"]})
    journal.record("20260101T000003-c", "other", {"ok": True})
    assert journal.runs("connectivity") == [
        {"run_id": "20260101T000001-a", "ok": True, "accounts": ["A"]},
        {"run_id": "20260101T000002-b", "ok": True, "accounts": ["B"]},
    ]
    assert journal.runs("missing") == []


def test_retention_removes_summaries_of_runs_started_before_the_cutoff(
    azurite: AzuriteHandle,
) -> None:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    journal = TableRunJournal(service, table_name=f"runs{uuid.uuid4().hex[:12]}")
    journal.record("20260101T000001-a", "sync-cycle", {"ok": True})
    journal.record("20260101T235959-b", "other", {"ok": True})
    journal.record("20260102T000000-c", "sync-cycle", {"ok": True})
    assert journal.purge(datetime(2026, 1, 2, tzinfo=UTC)) == 2
    assert journal.runs("sync-cycle") == [{"run_id": "20260102T000000-c", "ok": True}]
    assert journal.runs("other") == []
    assert journal.purge(datetime(2026, 1, 2, tzinfo=UTC)) == 0
