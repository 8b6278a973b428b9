"""``sync-now ACCOUNT SYNC_TYPE``: tick Sync Now on a schedule row, as an administrator would in
CRM. The sync timer's next tick starts the run (inside the schedule's window: Sync Now does not
bypass it). Written through the app's own ``CrmSettings``, as the app registration."""

from __future__ import annotations

import argparse
import datetime as dt

from ops.arguments import Subparsers, add_command
from ops.context import open_console
from ops.crm import ScheduleRow
from ops.errors import EXIT_OK, UsageError
from ops.health import status_label
from ops.humanize import relative, utc_text, window
from ops.lookup import describe, find_account
from ops.syncs import add_account_and_sync_type
from shared.domain.model import ScheduleUpdate, SyncStatus, SyncType
from shared.domain.schedule import in_window, next_window_opening, schedule_problem

EPILOG = """\
Refused, with nothing changed (exit 2), when the account or its schedule row is missing or
deactivated, the app cannot follow the row, or a run is already in progress.

examples:
  python -m ops sync-now "Brand 1" ContactOptIn
  python -m ops sync-now 6f1c2b7e-0000-4000-8000-000000000001 suppressionlists --json
"""


def register(subparsers: Subparsers) -> None:
    add_account_and_sync_type(add_command(
        subparsers, "sync-now", help="tick Sync Now on a schedule, as an administrator would in "
                                     "CRM",
        description="Tick Sync Now on the email account's schedule of SYNC_TYPE; the sync "
                    "timer's\nnext tick starts the run.",
        epilog=EPILOG, handler=run))


def run(args: argparse.Namespace) -> int:
    console = open_console(args)
    account = find_account(console.crm.accounts(), args.account)
    row = _schedule(console.crm.schedules(), account.account.row_id, args.sync_type,
                    describe(account))
    schedule = row.schedule
    now = dt.datetime.now(dt.UTC)
    already = schedule.sync_now
    if not already:
        console.services.crm_settings.update_schedule(schedule.row_id,
                                                      ScheduleUpdate(sync_now=True))
    starts = now if in_window(schedule, now) else next_window_opening(schedule, now)
    out = console.out
    if out.as_json:
        out.json({"schedule_id": schedule.row_id, "schedule": row.name, "sync_now": True,
                  "already_ticked": already, "starts": "next tick" if starts == now else starts})
        return EXIT_OK
    verb = "was already ticked" if already else "ticked"
    out.line(f"Sync Now {verb} on '{row.name}'.", "ok")
    if starts == now:
        out.line("The sync timer's next tick starts the run; follow it with "
                 "`python -m ops status` or `python -m ops runs`.")
    else:
        out.line(f"Outside its window ({window(schedule.window_start, schedule.window_end)}): "
                 f"it starts when the window opens, {utc_text(starts)} "
                 f"({relative(starts, now)}).", "warn")
    return EXIT_OK


def _schedule(
    rows: list[ScheduleRow], account_id: str, sync_type: SyncType, account: str
) -> ScheduleRow:
    """The row the app follows for this account and sync type, if Sync Now can be ticked on
    it; else a ``UsageError`` saying why not."""
    mine = sorted((row for row in rows if row.schedule.email_account_id == account_id
                   and row.schedule.sync_type == sync_type), key=lambda r: r.schedule.row_id)
    label = sync_type.label
    if not mine:
        raise UsageError(f"{account} has no {label} schedule row yet: the sync timer creates "
                         "it (manual) on its next tick; try again after it")
    usable = [row for row in mine if schedule_problem(row.schedule) is None]
    if not usable:
        raise UsageError(f"the app cannot follow the {label} schedule '{mine[0].name}' of "
                         f"{account}: {schedule_problem(mine[0].schedule)}; fix the row in CRM")
    row = usable[0]
    if not row.active:
        raise UsageError(f"the {label} schedule '{row.name}' of {account} is deactivated in "
                         "CRM: activate it first")
    if row.schedule.status is not SyncStatus.NONE:
        raise UsageError(f"'{row.name}' is already in progress "
                         f"({status_label(row.schedule.status)}): a new run starts only once "
                         "this one is applied; see `python -m ops status`")
    return row
