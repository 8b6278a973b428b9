"""SuppressionLists benchmark: N suppressions across K dotdigital accounts, synced through the dev
host.

``python -m bench.suppression_sync --suppressions 20000 --accounts 3 [--resubscribe-share 0.05]
[--request-share 0.01] [--repeat R]``

The data set is the generator's (``--contacts`` Dynamics contacts, N by default), with its
dotdigital contacts and Email Suppression rows replaced by the benchmark's (``SuppressionSeed``):

- N suppressions, dealt to the accounts in turn, reasons mixed like the generator's, dated over
  the last year; every other one is the address of a Dynamics contact, lead or account (its
  *Do not bulk email* off, so the run of an account with the option on sets it), the rest
  addresses nobody in Dynamics has (a fifth of those only on the suppression list, no contact);
- ``--resubscribe-share`` × N resubscribers: Dynamics contacts subscribed again in dotdigital
  within the day before the data set's date (``LASTSUBSCRIBED``), with the active
  ``Unsubscribed`` row of that account an earlier sync wrote (flag set where the option is on);
- ``--request-share`` × N of the matched suppressions also have their row, with Request
  Resubscribe ticked (reasons ``Suppressed``, ``Unsubscribed``, ``HardBounced`` in turn).

Only the first email account has the *Do not bulk email* option on (the generator's default);
the other sync types' schedules are made manual so that nothing but SuppressionLists runs, and
Sync Now is set on every SuppressionLists schedule in the seed. Service protection, the cost
model and the connector's process are the opt-in benchmark's (``bench.optin_sync``). Prints one
JSON object; bench/README.md explains the figures.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import Any

from bench.optin_sync import (
    SUMMARISED,
    add_stack_arguments,
    check_stack_arguments,
    configure_dataverse,
    cost_and_limits,
    dataverse_config,
    emulator_stats,
    run_repeatedly,
    run_totals,
    sync_seconds,
    sync_until,
    throughput,
)
from bench.process_stack import (
    SUPPRESSION_QUEUE,
    ProcessStack,
    StackOptions,
    dead_lettered,
    runs_complete,
)
from bench.suppression_seed import CRM_TABLES, SuppressionSeed
from devhost.local_queue import LocalQueueStore
from shared.domain.model import SyncType

CRM_STEP = re.compile(r"CRM suppressions: (\{[^}\n]*\})")
# Counters of a run that are changes (the denominator of requests per 1000 changed).
CHANGES = ("rows_created", "rows_updated", "rows_removed", "dnbe_set", "dnbe_cleared", "notes")


class SuppressionStack(ProcessStack):
    """A ``ProcessStack`` whose generated data set gets the benchmark's suppressions, rewritten by
    ``bench.suppression_seed`` in a process of its own (a large data set takes hundreds of MB)."""

    seed_rewriter = "bench.suppression_seed"

    def __init__(self, work_dir: Path, options: StackOptions, seeding: SuppressionSeed) -> None:
        super().__init__(work_dir, options)
        self.seeding = seeding

    def seed_rewriter_arguments(self) -> list[str]:
        seeding = self.seeding
        return ["--suppressions", str(seeding.suppressions),
                "--resubscribe-share", str(seeding.resubscribe_share),
                "--request-share", str(seeding.request_share), "--seed", str(seeding.seed)]


def dataverse_state(stack: ProcessStack) -> dict[str, int]:
    """What Dynamics holds at the end (read after the connector stopped): the run counters are
    those of the delivery that completed each batch, this is the outcome itself."""
    rows = stack.rows("ec_emailsuppressions")
    return {
        "active_rows": sum(1 for row in rows if row.get("statecode") == 0),
        "inactive_rows": sum(1 for row in rows if row.get("statecode") == 1),
        "notes": len(stack.rows("annotations")),
        "do_not_bulk_email": sum(1 for table in CRM_TABLES for row in stack.rows(table)
                                 if row.get("donotbulkemail") is True),
    }


def crm_step_counts(log: str) -> dict[str, int]:
    """The CRM step's counts (pushes, Request Resubscribe outcomes) as the connector logged them:
    they are not among the run's counters."""
    totals: dict[str, int] = {}
    for found in CRM_STEP.finditer(log):
        for name, value in ast.literal_eval(found.group(1)).items():
            totals[name] = totals.get(name, 0) + int(value)
    return totals


def figures(totals: dict[str, int], stats: dict[str, Any]) -> dict[str, Any]:
    """The counts and requests per 1000 changed of one run (bench/README.md)."""
    changed = sum(totals.get(name, 0) for name in CHANGES)
    dataverse = stats["dataverse"]["requests"]
    return {
        "suppressions_read": totals.get("items", 0),
        "rows_created": totals.get("rows_created", 0),
        "rows_updated": totals.get("rows_updated", 0),
        "rows_removed": totals.get("rows_removed", 0),
        "dnbe_set": totals.get("dnbe_set", 0),
        "dnbe_cleared": totals.get("dnbe_cleared", 0),
        "notes": totals.get("notes", 0),
        "resubscribed_without_row": totals.get("resubscribed_without_row", 0),
        "changed": changed,
        "requests_by_outcome": {name.removeprefix("requests_"): value
                                for name, value in sorted(totals.items())
                                if name.startswith("requests_")},
        "pushed": totals.get("pushed", 0),
        "failed_records": totals.get("failed", 0),
        "dotdigital_requests": stats["dotdigital"]["requests"],
        "dataverse_requests": dataverse,
        "dataverse_requests_per_1000_changed": round(1000 * dataverse / max(changed, 1), 2),
        "dataverse_requests_by_route": stats["dataverse"]["by_route"],
        "throttled_responses": stats["dataverse"]["throttled"] + stats["dotdigital"]["throttled"],
    }


def run_benchmark(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    limits, cost = cost_and_limits(args)
    options = StackOptions(contacts=args.contacts or args.suppressions, accounts=args.accounts,
                           seed=args.seed, timer_schedule=args.timer_schedule,
                           extra_settings=dict(item.split("=", 1) for item in args.set))
    seeding = SuppressionSeed(args.suppressions, args.resubscribe_share, args.request_share,
                              args.seed)
    stack = SuppressionStack(work_dir, options, seeding)
    with stack:
        configure_dataverse(stack, limits, cost)
        store = LocalQueueStore(stack.queue_dir)
        wall_seconds = sync_until(stack, args, work_dir, lambda: runs_complete(
            stack, store, SyncType.SUPPRESSION_LISTS, SUPPRESSION_QUEUE, args.accounts))
        runs = stack.run_headers(SyncType.SUPPRESSION_LISTS.label)
        seconds = sync_seconds(runs)
        stats = emulator_stats(stack)
        connector = stack.stop_connector()
        crm = dataverse_state(stack)
        dead = dead_lettered(store, SUPPRESSION_QUEUE)
    log = (work_dir / "connector.log").read_text(encoding="utf-8", errors="replace")
    counts = figures({**run_totals(runs), **crm_step_counts(log)}, stats)
    return {
        "suppressions": args.suppressions,
        "accounts": args.accounts,
        "contacts": options.contacts,
        "seed": args.seed,
        "generated": stack.made,
        **counts,
        "dead_lettered": dead,
        "dataverse_state": crm,
        "seconds": round(seconds, 1),
        "wall_seconds": round(wall_seconds, 1),
        "dataverse_busy_seconds": stats["dataverse"]["busy_seconds"],
        **throughput(counts["changed"], seconds, limits, cost),
        "peak_rss_mb": connector["peak_rss_mb"],
        "function_invocations": connector["functions"].get("invocations"),
        "function_failures": connector["functions"].get("failures"),
        **dataverse_config(limits, cost),
    }


SUPPRESSION_SUMMARISED = SUMMARISED + ("changed",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.suppression_sync",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suppressions", type=int, default=20_000, help="N")
    parser.add_argument("--accounts", type=int, default=3, help="dotdigital accounts (K)")
    parser.add_argument("--contacts", type=int, default=0,
                        help="Dynamics contacts (default N, at least 50)")
    parser.add_argument("--resubscribe-share", type=float, default=0.05)
    parser.add_argument("--request-share", type=float, default=0.01)
    add_stack_arguments(parser)
    args = parser.parse_args(argv)
    args.contacts = max(args.contacts or args.suppressions, 50)
    if args.suppressions < 1 or not 0 <= args.resubscribe_share <= 1 \
            or not 0 <= args.request_share <= 0.5:
        parser.error("--suppressions must be >= 1, --resubscribe-share in [0, 1],"
                     " --request-share in [0, 0.5]")
    check_stack_arguments(parser, args)
    runs = run_repeatedly(args, run_benchmark, "suppression-bench-", SUPPRESSION_SUMMARISED)
    clean = all(run["failed_records"] == 0 and run["dead_lettered"] == 0 for run in runs)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
