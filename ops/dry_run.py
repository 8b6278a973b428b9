"""``dry-run ACCOUNT SYNC_TYPE``: what a sync started now would change, writing nothing."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ops.arguments import Subparsers, add_command
from ops.context import open_console
from ops.dry_sync import DryRunResult, run_dry
from ops.errors import EXIT_OK
from ops.humanize import utc_text
from ops.lookup import find_account
from ops.output import Cell, Output, Styled
from ops.syncs import add_account_and_sync_type
from shared.domain.engagement import EventKind
from shared.domain.model import SyncType
from shared.services.sync.schedules import read_changed_failed

EPILOG = """\
The app's own reader and appliers run here, in dry-run mode: the account's changes since its
watermark (less SYNC_READ_OVERLAP_SECONDS) are read from dotdigital and each batch is looked up
in Dynamics as the app would apply it, but nothing is written to Dataverse, dotdigital or the
state store (no watermark, run or cursor), and nothing is queued. The counters are the run
report's. A SuppressionLists dry run counts the CRM rows it would push and the Request
Resubscribe rows it would send, but does not push them, so it cannot read back what pushing
them would bring. An Engagement dry run counts the events it would hand to the event store;
those the store already holds are not looked up.

examples:
  python -m ops dry-run "Brand 1" ContactOptIn
  python -m ops dry-run 6f1c2b7e-0000-4000-8000-000000000001 suppressionlists --json
"""
# Column, counter: the run report's columns of each sync (``make run ONCE=1``).
COLUMNS: dict[SyncType, tuple[tuple[str, str], ...]] = {
    SyncType.CONTACT_OPT_IN: (
        ("read", "items"), ("contacts", "changed_contact"), ("leads", "changed_lead"),
        ("accounts", "changed_account"), ("invalid email", "invalid_email"),
        ("unknown opt-in", "unknown_opt_in"), ("unmatched", "unmatched"), ("failed", "failed")),
    SyncType.SUPPRESSION_LISTS: (
        ("read", "items"), ("rows created", "rows_created"), ("rows updated", "rows_updated"),
        ("rows removed", "rows_removed"), ("dnbe set", "dnbe_set"),
        ("dnbe cleared", "dnbe_cleared"), ("notes", "notes"), ("invalid", "invalid_email"),
        ("unknown reason", "unknown_reason"), ("failed", "failed")),
    SyncType.ENGAGEMENT: (
        ("read", "items"), *((str(kind), f"read_{kind}") for kind in EventKind),
        ("failed", "failed")),
}


def register(subparsers: Subparsers) -> None:
    add_account_and_sync_type(add_command(
        subparsers, "dry-run", help="what a sync would change right now, writing nothing",
        description="Run one email account's sync now, in dry-run mode, and report what "
                    "it would\nchange.",
        epilog=EPILOG, handler=run))


def run(args: argparse.Namespace) -> int:
    console = open_console(args)
    account = find_account(console.crm.accounts(), args.account).account
    sync_type: SyncType = args.sync_type
    with console.out.progress(f"dry run {account.name} · {sync_type.label}") as progress:

        def page_read(items: int) -> None:
            progress.add("pages")
            progress.add("read", items)

        result = run_dry(console.services, account, sync_type, on_page=page_read,
                         on_batch=lambda applied: progress.add("batches applied"))
    if console.out.as_json:
        console.out.json(as_json(result))
    else:
        render(console.out, result)
    return EXIT_OK


def crm_step(extra: Mapping[str, int]) -> dict[str, Any]:
    """The SuppressionLists CRM step's counts: rows to push, refused, requests by outcome."""
    return {
        "pushed": extra.get("pushed", 0),
        "push_refused": extra.get("push_not_found", 0) + extra.get("push_invalid", 0),
        "requests": {name.removeprefix("requests_").replace("_", " "): count
                     for name, count in extra.items()
                     if name.startswith("requests_") and count},
    }


def as_json(result: DryRunResult) -> dict[str, Any]:
    run = result.run
    read, changed, failed = read_changed_failed(run.counters)
    payload: dict[str, Any] = {
        "email_account": result.account.name, "email_account_id": result.account.row_id,
        "sync_type": result.sync_type.label, "dry_run": True, "written": False,
        "since": run.since, "until": run.until, "batches": run.batches_published,
        "read": read, "would_change": changed, "would_fail": failed,
        "counters": dict(run.counters), "seconds": round(result.seconds, 2),
        "dead_letters": [{"queue": note.queue, "message_id": note.message_id,
                          "reason": note.reason, "description": note.description,
                          "parked": note.parked} for note in result.dead_letters],
    }
    if result.sync_type is SyncType.SUPPRESSION_LISTS:
        payload["crm_step"] = crm_step(result.reader.extra)
    return payload


def render(out: Output, result: DryRunResult) -> None:
    run, sync_type = result.run, result.sync_type
    out.title(f"dry run: {result.account.name} · {sync_type.label} (nothing was written)")
    out.line(f"read dotdigital's changes from {utc_text(run.since)} to {utc_text(run.until)} "
             f"in {result.seconds:.1f}s", "dim")
    out.line()
    columns = COLUMNS[sync_type]
    headers = ["email account", *(name for name, _ in columns[:1]), "batches",
               *(name for name, _ in columns[1:])]
    counters = run.counters
    row: list[Cell] = [result.account.name, counters.get(columns[0][1], 0),
                       run.batches_published]
    row += [_cell(name, counters.get(counter, 0)) for name, counter in columns[1:]]
    if sync_type is SyncType.SUPPRESSION_LISTS:
        step = crm_step(result.reader.extra)
        headers += ["pushed", "push refused", "requests"]
        row += [step["pushed"], step["push_refused"],
                ", ".join(f"{name} {count}" for name, count in step["requests"].items())
                or None]
    out.table(headers, [row])
    out.line()
    _, changed, failed = read_changed_failed(counters)
    if sync_type is SyncType.ENGAGEMENT:
        out.line(f"would hand {counters.get('items', 0):,} events to the event store (those it "
                 "already holds are not looked up in a dry run)")
    else:
        out.line(f"would change: {changed:,}", "ok" if changed == 0 else "bold")
    if failed:
        out.line(f"would fail: {failed:,} items", "bad")
    for note in result.dead_letters:
        where = f"{note.queue}" if note.parked else f"{note.queue}/$deadletterqueue"
        out.line(f"would dead-letter {note.message_id} in {where}: {note.reason}: "
                 f"{note.description}", "bad")


def _cell(name: str, value: int) -> Cell:
    return Styled(f"{value:,}", "bad") if name == "failed" and value else value
