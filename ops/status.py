"""``status``: is the connector healthy, which account is behind, what needs attention."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from ops.arguments import Subparsers, add_command
from ops.connectivity import check_accounts
from ops.context import Console, open_console
from ops.errors import EXIT_ATTENTION, EXIT_OK, UsageError
from ops.health import (
    AccountHealth,
    Health,
    QueueHealth,
    SyncHealth,
    attention_of,
    status_label,
    sync_health,
)
from ops.humanize import duration, relative, seconds_taken, took, utc_text, window
from ops.lookup import describe
from ops.output import Cell, Styled
from ops.syncs import SyncKind
from shared.domain.model import SyncStatus
from shared.errors import AppError
from shared.services.ports import RunStatus
from shared.services.sync.schedules import read_changed_failed

EPILOG = """\
exit codes:
  0  healthy: nothing needs attention
  1  something needs attention (listed under "needs attention"): a run in progress for longer
     than --stuck-minutes, a schedule left in progress with no run open, an overdue interval
     schedule, a schedule the app ignores, dead-lettered or parked messages, an email account
     failing its connectivity check (dotdigital account-info with its API user and password)
  2  bad input or settings

examples:
  python -m ops status                      # the running local stack (make run)
  python -m ops status --settings prod.json --stuck-minutes 60
  python -m ops status --json | jq '.attention'
"""


def register(subparsers: Subparsers) -> None:
    parser = add_command(
        subparsers, "status", help="health of every account's syncs and of the queues",
        description="Per email account and sync type: the schedule, the last run and the "
                    "watermark's age;\nper queue: messages waiting and dead-lettered; and what "
                    "needs attention.",
        epilog=EPILOG, handler=run)
    parser.add_argument("--stuck-minutes", type=float, default=30.0, metavar="N",
                        help="a run in progress longer than this is stuck (default 30)")
    parser.add_argument("--no-connectivity", action="store_true",
                        help="skip the dotdigital account-info call per account")


def run(args: argparse.Namespace) -> int:
    if not args.stuck_minutes > 0:  # also refuses nan, which no comparison would ever match
        raise UsageError("--stuck-minutes must be more than 0")
    console = open_console(args)
    health = gather(console, stuck=dt.timedelta(minutes=args.stuck_minutes),
                    connectivity=not args.no_connectivity)
    if console.out.as_json:
        console.out.json(as_json(health, console))
    else:
        render(health, console)
    return EXIT_ATTENTION if health.attention else EXIT_OK


def gather(console: Console, *, stuck: dt.timedelta, connectivity: bool) -> Health:
    now = dt.datetime.now(dt.UTC)
    every = console.crm.accounts()
    rows = [row for row in every if row.active]
    schedules = console.crm.schedules()
    runs = console.history.runs()
    state = console.services.sync_state
    checks = {}
    if connectivity and rows:
        with console.out.progress("connectivity") as progress:
            for check in check_accounts(
                    [row.account for row in rows], console.settings, console.environ,
                    each=lambda check: progress.add("failed" if check.error else "ok")):
                checks[check.email_account_id] = check
    accounts = []
    for row in rows:
        account_id = row.account.row_id

        def watermark(kind: SyncKind, account_id: str = account_id) -> dt.datetime | None:
            found = state.get_watermark(kind.key(account_id))
            return None if found is None else found.value

        accounts.append(AccountHealth(row, checks.get(account_id),
                                      sync_health(account_id, schedules, runs, watermark)))
    health = Health(now, stuck, accounts, _queues(console),
                    deactivated=[row for row in every if not row.active])
    health.attention = attention_of(health)
    return health


def _queues(console: Console) -> list[QueueHealth]:
    found = []
    for queue in console.queue_names():
        try:
            waiting, dead = console.queues.counts(queue)
            parked, _ = console.queues.counts(console.parked_queue(queue))
        except AppError as error:
            found.append(QueueHealth(queue, error=str(error)))
            continue
        found.append(QueueHealth(queue, waiting, dead, parked))
    return found


# --- text --------------------------------------------------------------------------------------
def render(health: Health, console: Console) -> None:
    out, now = console.out, health.checked_at
    out.title(f"connector status at {utc_text(now)}")
    out.line(f"settings: {console.source.description}", "dim")
    if console.settings.sync.dry_run:
        out.line("SYNC_DRY_RUN is on: the app reports what it would change and writes nothing",
                 "warn")
    out.line()
    out.title("email accounts")
    if not health.accounts:
        out.line("no active email account is configured in CRM", "warn")
    out.table(["name", "id", "dotdigital", "connectivity"], [
        [a.row.account.name, a.row.account.row_id,
         a.check.dotdigital_account_id if a.check else a.row.account.dotdigital_account_id,
         _check_cell(a)] for a in health.accounts])
    if health.deactivated:
        out.line("deactivated in CRM (not synced): "
                 + ", ".join(describe(row) for row in health.deactivated), "dim")
    out.line()
    out.title("schedules")
    out.table(["account", "sync", "schedule", "window", "status", "sync now", "next sync",
               "last sync", "last result"],
              [[a.row.account.name, s.kind.label, *_schedule_cells(s, now)]
               for a in health.accounts for s in a.syncs])
    out.line()
    out.title("runs")
    out.table(["account", "sync", "last run", "state", "started", "took", "batches", "read",
               "changed", "failed", "watermark age"],
              [[a.row.account.name, s.kind.label, *_run_cells(s, now)]
               for a in health.accounts for s in a.syncs])
    out.line()
    out.title(f"queues ({console.queues.where})")
    out.table(["queue", "waiting", "dead-lettered", "parked (-deadletter)"],
              [[q.queue, Styled(q.error, "bad"), None, None] if q.error is not None else
               [q.queue, q.waiting, _count(q.dead_lettered), _count(q.parked)]
               for q in health.queues])
    out.line()
    if health.attention:
        out.title("needs attention")
        for item in health.attention:
            out.line(f"  {item.subject}: {item.message}", "bad")
        out.line()
        count = len(health.attention)
        out.line(f"result: {count} thing{'s' if count != 1 else ''} need"
                 f"{'s' if count == 1 else ''} attention", "bad")
    else:
        out.line("result: OK", "ok")


def _check_cell(account: AccountHealth) -> Cell:
    if account.check is None:
        return Styled("not checked", "dim")
    if account.check.error is not None:
        return Styled(f"FAILED: {account.check.error}", "bad")
    return Styled("ok", "ok")


def _count(value: int | None) -> Cell:
    return Styled(f"{value:,}", "bad") if value else value


def _schedule_cells(sync: SyncHealth, now: dt.datetime) -> list[Cell]:
    row = sync.schedule
    if row is None:
        return [Styled("no row yet (the sync timer creates it)", "dim"), None, None, None,
                None, None, None]
    schedule = row.schedule
    every = (f"every {schedule.interval_minutes} min" if schedule.interval_minutes
             else "manual")
    if not row.active:
        every += " (deactivated)"
    status = status_label(schedule.status)
    return [every, window(schedule.window_start, schedule.window_end),
            Styled(status, "warn") if schedule.status is not SyncStatus.NONE else status,
            schedule.sync_now, relative(schedule.next_sync, now),
            relative(schedule.last_sync, now), schedule.last_result]


def _run_cells(sync: SyncHealth, now: dt.datetime) -> list[Cell]:
    age = None if sync.watermark is None else duration((now - sync.watermark).total_seconds())
    run = sync.last_run
    if run is None:
        return [None, None, None, None, None, None, None, None, age]
    state = run.state
    read, changed, failed = read_changed_failed(state.counters)
    label = state.status.value + (" (dry run)" if run.dry_run else "")
    return [run.run_id,
            Styled(label, "ok" if state.status is RunStatus.COMPLETED else "warn"),
            relative(state.started_at, now), took(state, now),
            f"{state.batches_applied}/{state.batches_published}", read, changed,
            Styled(f"{failed:,}", "bad") if failed else failed, age]


# --- JSON --------------------------------------------------------------------------------------
def as_json(health: Health, console: Console) -> dict[str, Any]:
    now = health.checked_at
    return {
        "ok": not health.attention,
        "checked_at": now,
        "settings": console.source.description,
        "dry_run": console.settings.sync.dry_run,
        "stuck_minutes": health.stuck.total_seconds() / 60,
        "accounts": [{
            "name": a.row.account.name, "id": a.row.account.row_id,
            "dotdigital_account_id": a.row.account.dotdigital_account_id,
            "connectivity": None if a.check is None else {
                "ok": a.check.ok, "error": a.check.error, "api_endpoint": a.check.api_endpoint},
            "syncs": [_sync_json(s, now) for s in a.syncs],
        } for a in health.accounts],
        "deactivated_accounts": [{"name": row.account.name, "id": row.account.row_id}
                                 for row in health.deactivated],
        "queues": [{"queue": q.queue, "waiting": q.waiting, "dead_lettered": q.dead_lettered,
                    "parked": q.parked, "error": q.error} for q in health.queues],
        "attention": [{"kind": item.kind, "subject": item.subject, "message": item.message}
                      for item in health.attention],
    }


def _sync_json(sync: SyncHealth, now: dt.datetime) -> dict[str, Any]:
    row = sync.schedule
    schedule = None
    if row is not None:
        s = row.schedule
        schedule = {"id": s.row_id, "name": row.name, "active": row.active,
                    "interval_minutes": s.interval_minutes, "window_start": s.window_start,
                    "window_end": s.window_end, "status": status_label(s.status),
                    "sync_now": s.sync_now, "next_sync": s.next_sync, "last_sync": s.last_sync,
                    "last_result": s.last_result}
    run = sync.last_run
    last_run = None
    if run is not None:
        state = run.state
        last_run = {"run_id": run.run_id, "dry_run": run.dry_run, "status": state.status.value,
                    "started_at": state.started_at, "completed_at": state.completed_at,
                    "seconds": seconds_taken(state, now),
                    "batches_published": state.batches_published,
                    "batches_applied": state.batches_applied, "counters": dict(state.counters)}
    return {
        "sync_type": sync.kind.label, "schedule": schedule, "last_run": last_run,
        "watermark": sync.watermark,
        "watermark_age_seconds": None if sync.watermark is None
        else (now - sync.watermark).total_seconds(),
    }
