"""``runs``: recent runs with their counters; ``runs show RUN_ID``: every batch's outcome."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ops.arguments import Subparsers, add_command
from ops.context import Console, open_console
from ops.crm import AccountRow
from ops.errors import EXIT_OK, UsageError
from ops.history import BatchRecord, RunRecord
from ops.humanize import relative, seconds_taken, took, utc_text
from ops.lookup import find_account
from ops.output import Cell, Styled
from ops.syncs import KINDS, sync_type_arg
from shared.services.ports import RunStatus
from shared.services.sync.cycle import JOURNAL_NAMES
from shared.services.sync.schedules import read_changed_failed

EPILOG = """\
A run is one sync of one email account: the reader publishes its batches, the appliers apply
them. Its id is that of the sync cycle (timer tick) that started it, so one id can name the
runs of several accounts and sync types; `runs show` lists them all.

examples:
  python -m ops runs                                   # the 20 latest runs
  python -m ops runs --account "Brand 1" --sync-type suppressionlists --limit 5
  python -m ops runs show 20250301T101500-1a2b3c4d
  python -m ops runs show 20250301T101500-1a2b3c4d --json
"""
SHOW_EPILOG = """\
Each batch is applied (its counters), failed (given up: its items counted as failed and the
message dead-lettered; see `python -m ops dead-letters`), or waiting (published, still on its
queue).

examples:
  python -m ops runs show 20250301T101500-1a2b3c4d
  python -m ops runs show 20250301T101500-1a2b3c4d --account "Brand 2" --json
"""


def register(subparsers: Subparsers) -> None:
    parser = add_command(
        subparsers, "runs", help="recent runs and their counters; `runs show RUN_ID` for its "
                                 "batches",
        description="Recent runs of every email account and sync type, newest first, with "
                    "their\ncounters and status.",
        epilog=EPILOG, handler=list_runs)
    _filters(parser)
    parser.add_argument("--limit", type=int, default=20, metavar="N",
                        help="how many runs (default 20)")
    nested = parser.add_subparsers(dest="runs_command", metavar="show")
    show = add_command(
        nested, "show", help="one run: every batch's outcome",
        description="One run (of every account and sync type its cycle started, unless "
                    "filtered):\nwindow, status, counters, and every batch's outcome.",
        epilog=SHOW_EPILOG, handler=show_run)
    show.add_argument("run_id", metavar="RUN_ID")
    # No defaults on show's copies: they would overwrite a filter given before ``show``.
    _filters(show, default=argparse.SUPPRESS)


def _filters(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument("--account", metavar="ACCOUNT", default=default,
                        help="email account name or id (default: every account)")
    parser.add_argument("--sync-type", type=sync_type_arg, metavar="TYPE", default=default,
                        help="ContactOptIn, SuppressionLists or Engagement (default: all)")


def list_runs(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    console = open_console(args)
    accounts = console.crm.accounts()
    names = _names(accounts)
    account_ids = None
    if args.account:
        account_ids = [find_account(accounts, args.account).account.row_id]
    kinds = None if args.sync_type is None else [KINDS[args.sync_type]]
    found = console.history.runs(accounts=account_ids, kinds=kinds)[:args.limit]
    now = dt.datetime.now(dt.UTC)
    out = console.out
    if out.as_json:
        out.json([_run_json(record, names, now) for record in found])
        return EXIT_OK
    if not found:
        out.line("no runs recorded" + (" for this filter" if account_ids or kinds else ""))
        return EXIT_OK
    out.table(["run", "account", "sync", "state", "started", "took", "batches", "read",
               "changed", "failed"],
              [[r.run_id, names.get(r.account_id, r.account_id), r.kind.label, _state(r),
                utc_text(r.state.started_at), took(r.state, now),
                f"{r.state.batches_applied}/{r.state.batches_published}",
                *_read_changed_failed(r.state.counters)] for r in found])
    return EXIT_OK


def show_run(args: argparse.Namespace) -> int:
    console = open_console(args)
    found = console.history.find(args.run_id)
    accounts = console.crm.accounts()
    if args.account:
        wanted = find_account(accounts, args.account).account.row_id
        found = [item for item in found if item[0].account_id == wanted]
    if args.sync_type is not None:
        found = [item for item in found if item[0].kind.sync_type == args.sync_type]
    if not found:
        raise UsageError(f"no run {args.run_id} is recorded"
                         + (" for this account and sync type" if args.account or args.sync_type
                            else "")
                         + ": `python -m ops runs` lists the recent ones (completed runs are "
                         "purged after STATE_RETENTION_DAYS)")
    names = _names(accounts)
    cycle = console.history.cycle(args.run_id)
    now = dt.datetime.now(dt.UTC)
    out = console.out
    if out.as_json:
        out.json([{**_run_json(record, names, now),
                   "reader": _reader_step(cycle, record),
                   "batches": [{"batch": b.number, "outcome": b.outcome,
                                "applied_at": b.applied_at, "counters": dict(b.counters)}
                               for b in batches]}
                  for record, batches in found])
        return EXIT_OK
    for index, (record, batches) in enumerate(found):
        if index:
            out.line()
        _render_run(console, record, batches, names, _reader_step(cycle, record), now)
    return EXIT_OK


def _render_run(
    console: Console, record: RunRecord, batches: list[BatchRecord], names: Mapping[str, str],
    reader: Mapping[str, Any] | None, now: dt.datetime,
) -> None:
    out, state = console.out, record.state
    outcomes = [batch.outcome for batch in batches]
    out.title(f"run {record.run_id} · {names.get(record.account_id, record.account_id)} · "
              f"{record.kind.label}{' (dry run)' if record.dry_run else ''}")
    out.pairs([
        ("state", state.status.value + (" (dry run)" if record.dry_run else "")),
        ("window", f"{utc_text(state.since)} to {utc_text(state.until)}"),
        ("started", f"{utc_text(state.started_at)} ({relative(state.started_at, now)})"),
        ("took", took(state, now)),
        ("batches", f"{state.batches_published:,} published: {outcomes.count('applied'):,} "
                    f"applied, {outcomes.count('failed'):,} failed, "
                    f"{outcomes.count('waiting'):,} waiting"),
        ("counters", ", ".join(f"{name} {value:,}" for name, value in state.counters.items())
         or "none yet"),
        ("reader", _reader_text(reader)),
    ])
    if batches:
        out.line()
        out.table(["batch", "outcome", "applied at", "read", "changed", "failed"], [
            [batch.number, Styled(batch.outcome, {"applied": "ok", "failed": "bad"}
                                  .get(batch.outcome, "warn")),
             utc_text(batch.applied_at), *_read_changed_failed(batch.counters)]
            for batch in batches])


def _names(accounts: Sequence[AccountRow]) -> dict[str, str]:
    return {row.account.row_id: row.account.name for row in accounts}


def _state(record: RunRecord) -> Cell:
    text = record.state.status.value + (" (dry run)" if record.dry_run else "")
    return Styled(text, "ok" if record.state.status is RunStatus.COMPLETED else "warn")


def _read_changed_failed(counters: Mapping[str, int]) -> list[Cell]:
    read, changed, failed = read_changed_failed(counters)
    return [read, changed, Styled(f"{failed:,}", "bad") if failed else failed]


def _reader_step(cycle: Mapping[str, Any] | None, record: RunRecord) -> dict[str, Any] | None:
    """What the sync cycle that started the run did for it, as the run journal recorded."""
    if cycle is None:
        return None
    steps = cycle.get(JOURNAL_NAMES[record.kind.sync_type])
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and step.get("account") == record.account_id:
            return step
    return None


def _reader_text(step: Mapping[str, Any] | None) -> str:
    if step is None:
        return "not in the run journal"
    progress = step.get("progress") or {}
    text = (f"{step.get('action')} by its sync cycle: {progress.get('pages', 0):,} pages, "
            f"{progress.get('contacts', 0):,} items, {progress.get('batches', 0):,} batches"
            + (" (read to the end)" if progress.get("finished") else " (resumed by later ticks)"))
    return text + (f"; error: {step['error']}" if step.get("error") else "")


def _run_json(record: RunRecord, names: Mapping[str, str], now: dt.datetime) -> dict[str, Any]:
    state = record.state
    read, changed, failed = read_changed_failed(state.counters)
    return {
        "run_id": record.run_id, "email_account_id": record.account_id,
        "email_account": names.get(record.account_id), "sync_type": record.kind.label,
        "dry_run": record.dry_run, "status": state.status.value, "since": state.since,
        "until": state.until, "started_at": state.started_at, "completed_at": state.completed_at,
        "seconds": seconds_taken(state, now),
        "batches_published": state.batches_published, "batches_applied": state.batches_applied,
        "read": read, "changed": changed, "failed": failed, "counters": dict(state.counters),
    }
