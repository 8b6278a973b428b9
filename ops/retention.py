"""``retention [--apply]``: what the configured retention would remove now, and with
``--apply`` removing it with the very services the daily ``PurgeOldState`` timer runs.

The runs to remove are chosen by the state store's own purge (``TableRuns.purge_runs``) run on
rows that record deletions instead of making them, so the report cannot drift from what the
purge does; the run journal and the event store purge by row key ranges, counted here with the
same bounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient

from ops.arguments import Subparsers, add_command
from ops.context import Console, open_console
from ops.errors import EXIT_OK
from ops.humanize import utc_text
from ops.output import Progress
from shared.adapters.storage.errors import table_error
from shared.adapters.storage.event_store import DEFAULT_TABLE as EVENT_TABLE
from shared.adapters.storage.rows import TableRows
from shared.adapters.storage.run_journal import TABLE_NAME as JOURNAL_TABLE
from shared.adapters.storage.runs import TableRuns
from shared.adapters.storage.sync_state import DEFAULT_TABLE as STATE_TABLE
from shared.domain.engagement import EVENT_ROW_END, first_row_key_before
from shared.services.sync.retention import purge_old_state

EPILOG = """\
STATE_RETENTION_DAYS (default 30): completed runs with their batch rows, and run journal rows;
watermarks, cursors and runs still open are never removed. ENGAGEMENT_RETENTION_DAYS (default
730): engagement events in the event store (the timeline).

examples:
  python -m ops retention              # report only: nothing is removed
  python -m ops retention --apply      # remove it now, as the daily PurgeOldState timer would
  python -m ops retention --json
"""


def register(subparsers: Subparsers) -> None:
    parser = add_command(
        subparsers, "retention", help="what the retention would remove; --apply removes it",
        description="What the configured retention would remove now (runs, run journal "
                    "rows,\nengagement events); with --apply, remove it.",
        epilog=EPILOG, handler=run)
    parser.add_argument("--apply", action="store_true", help="remove it (default: report only)")


@dataclass(frozen=True)
class Plan:
    cutoff: dt.datetime
    events_cutoff: dt.datetime
    runs: int
    run_rows: int
    journal_rows: int
    events: int


def run(args: argparse.Namespace) -> int:
    console = open_console(args)
    now = dt.datetime.now(dt.UTC)
    with console.out.progress("counting") as progress:
        plan = measure(console, now, progress)
    removed: Mapping[str, object] | None = None
    if args.apply:
        sync = console.settings.sync
        services = console.services
        with console.out.progress("removing"):
            removed = purge_old_state(
                services.sync_state, services.run_journal, now=now,
                retention_days=sync.retention_days, events=services.event_store,
                events_retention_days=sync.engagement_retention_days)
    _report(console, plan, removed)
    return EXIT_OK


def measure(console: Console, now: dt.datetime, progress: Progress) -> Plan:
    sync = console.settings.sync
    cutoff = now - dt.timedelta(days=sync.retention_days)
    events_cutoff = now - dt.timedelta(days=sync.engagement_retention_days)
    counting = CountingRows(console.tables.get_table_client(STATE_TABLE))
    runs = TableRuns(counting).purge_runs(cutoff)
    progress.add("runs", runs)
    # The journal's rule: run ids begin with their start time, so older runs sort lower.
    journal = _count(console.tables.get_table_client(JOURNAL_TABLE), "RowKey lt @bound",
                     {"bound": f"{cutoff:%Y%m%dT%H%M%S}"}, progress, "journal rows")
    events = 0
    low = first_row_key_before(events_cutoff)
    if low < EVENT_ROW_END:
        events = _count(console.tables.get_table_client(EVENT_TABLE),
                        "RowKey ge @low and RowKey lt @high",
                        {"low": low, "high": EVENT_ROW_END}, progress, "events")
    return Plan(cutoff, events_cutoff, runs, counting.deleted, journal, events)


class CountingRows(TableRows):
    """Rows that count what a purge would delete and delete nothing; any other write is
    refused, so a report can never change the store."""

    def __init__(self, table: TableClient) -> None:
        super().__init__(table)
        self.deleted = 0

    def delete_rows(self, partition: str, rows: Sequence[str]) -> None:
        self.deleted += len(rows)

    def create(self, entity: Mapping[str, Any]) -> str:
        raise RuntimeError("a retention report writes nothing")

    def replace(self, entity: Mapping[str, Any], etag: str) -> str:
        raise RuntimeError("a retention report writes nothing")

    def delete(self, partition: str, row: str, etag: str) -> None:
        raise RuntimeError("a retention report writes nothing")


def _count(
    table: TableClient, filter: str, parameters: Mapping[str, Any], progress: Progress,
    what: str,
) -> int:
    count = 0
    try:
        for _ in table.query_entities(filter, parameters=dict(parameters),
                                      select=["PartitionKey", "RowKey"]):
            count += 1
            progress.add(what)
    except ResourceNotFoundError:
        return 0  # no table: nothing to remove
    except AzureError as error:
        raise table_error(error, f"count {what}") from error
    return count


def _report(console: Console, plan: Plan, removed: Mapping[str, object] | None) -> None:
    sync = console.settings.sync
    out = console.out
    if out.as_json:
        out.json({
            "applied": removed is not None,
            "state_retention_days": sync.retention_days,
            "engagement_retention_days": sync.engagement_retention_days,
            "cutoff": plan.cutoff, "events_cutoff": plan.events_cutoff,
            "would_remove": {"runs": plan.runs, "run_rows": plan.run_rows,
                             "journal_rows": plan.journal_rows, "events": plan.events},
            "removed": None if removed is None else {
                "runs": removed.get("runs"), "journal_rows": removed.get("summaries"),
                "events": removed.get("events")},
        })
        return
    out.title(f"retention: STATE_RETENTION_DAYS {sync.retention_days:g}, "
              f"ENGAGEMENT_RETENTION_DAYS {sync.engagement_retention_days:g}")
    headers = ["what", "older than", "would remove"]
    rows: list[list[Any]] = [
        ["completed runs", utc_text(plan.cutoff), plan.runs],
        ["  their header and batch rows", utc_text(plan.cutoff), plan.run_rows],
        ["run journal rows", utc_text(plan.cutoff), plan.journal_rows],
        ["engagement events", utc_text(plan.events_cutoff), plan.events],
    ]
    if removed is not None:
        headers.append("removed")
        for row, value in zip(rows, (removed.get("runs"), None, removed.get("summaries"),
                                     removed.get("events")), strict=True):
            row.append(value)
    out.table(headers, rows)
    out.line()
    if removed is None:
        out.line("nothing removed: run again with --apply to remove it", "dim")
    else:
        out.line("removed", "ok")
