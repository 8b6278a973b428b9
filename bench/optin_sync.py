"""Opt-in sync benchmark: N contacts across K dotdigital accounts, synced through the dev host.

``python -m bench.optin_sync --contacts 20000 --accounts 3 [--seed 1] [--scale 60]``

Generates the data set in a child process, starts the emulators and Azurite in their own
processes, scales Dataverse's service protection (the window and its request and execution-time
budgets divided by ``--scale``, so the per-second rates stay those of the real service while
throttling reacts within seconds) and turns the cost model on, sets Sync Now on every ContactOptIn
schedule, then runs the connector (``bench.connector_process``) until every run is complete and
the opt-in queue is empty. Prints one JSON object; bench/README.md explains every figure,
``ceiling_records_per_second`` in particular.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.process_stack import (
    OPTIN_QUEUE,
    ProcessStack,
    StackOptions,
    dead_lettered,
    runs_complete,
)
from devhost.local_queue import LocalQueueStore
from emulators.dataverse.protection import CostModel, ProtectionLimits
from shared.domain.model import SyncType

# The real service: 6,000 requests and 1,200,000 ms of execution per user per 300 s, 52 at once.
REAL_WINDOW_S = 300.0
REAL_REQUESTS = 6000
REAL_EXECUTION_MS = 1_200_000.0
CONCURRENT = 52
RESULT = re.compile(r"([\d,]+) read, ([\d,]+) (?:would change|changed), ([\d,]+) failed")
POLL_S = 0.5


def scaled_protection(scale: float) -> ProtectionLimits:
    """The real service's limits with the window and its budgets divided by ``scale``: the rates
    stay the real ones while throttling reacts within seconds."""
    return ProtectionLimits(requests=max(1, round(REAL_REQUESTS / scale)),
                            execution_ms=REAL_EXECUTION_MS / scale, concurrent=CONCURRENT,
                            window_seconds=REAL_WINDOW_S / scale)


# Milliseconds of modelled execution; bulk writes cost less per record than single ones.
DEFAULT_COST = CostModel(request_ms=10.0, per_record_read_ms=0.2, per_record_write_ms=20.0,
                         bulk_per_record_write_ms=2.0)
# Fewest records one request can carry: an In lookup and an UpdateMultiple both take 1000.
RECORDS_PER_REQUEST = 1000


def ceiling_records_per_second(limits: ProtectionLimits, cost: CostModel) -> dict[str, float]:
    """What the limits allow for the least work per changed record: one read, one bulk write.

    Each changed record costs at least ``per_record_read_ms + bulk_per_record_write_ms`` plus its
    share of two requests' ``request_ms`` (1000 records per request); execution time, request
    count and concurrency each cap the rate, and the ceiling is the lowest cap.
    """
    per_record_ms = (cost.per_record_read_ms + cost.bulk_per_record_write_ms
                     + 2 * cost.request_ms / RECORDS_PER_REQUEST)
    by_execution = limits.execution_ms / limits.window_seconds / per_record_ms
    by_requests = limits.requests / limits.window_seconds * RECORDS_PER_REQUEST / 2
    # A request of 1000 records lasts its modelled cost; `concurrent` of them can run at once.
    by_concurrency = limits.concurrent * 1000.0 / per_record_ms
    return {"execution": by_execution, "requests": by_requests, "concurrency": by_concurrency,
            "ceiling": min(by_execution, by_requests, by_concurrency)}


def results(stack: ProcessStack) -> dict[str, int]:
    totals = {"read": 0, "changed": 0, "failed": 0}
    for row in stack.schedules(SyncType.CONTACT_OPT_IN):
        found = RESULT.search(row.get("ec_lastresult") or "")
        if found:
            for name, value in zip(totals, found.groups(), strict=True):
                totals[name] += int(value.replace(",", ""))
    return totals


def cost_and_limits(args: argparse.Namespace) -> tuple[ProtectionLimits, CostModel]:
    return scaled_protection(args.scale), CostModel(
        request_ms=args.request_ms, per_record_read_ms=args.read_ms,
        per_record_write_ms=args.write_ms, bulk_per_record_write_ms=args.bulk_write_ms)


def dataverse_config(limits: ProtectionLimits, cost: CostModel) -> dict[str, dict[str, Any]]:
    """The Dataverse emulator's configuration (``POST /_emulator/config``), also printed with
    the figures it produced."""
    return {"service_protection": asdict(limits), "cost_model": asdict(cost)}


def configure_dataverse(stack: ProcessStack, limits: ProtectionLimits, cost: CostModel) -> None:
    stack.admin("dataverse", "POST", "config", dataverse_config(limits, cost))


def sync_until(stack: ProcessStack, args: argparse.Namespace, work_dir: Path,
               done: Callable[[], bool]) -> float:
    """Zero the emulators' statistics, start the connector and wait until ``done()``; returns
    the wall-clock seconds from the connector's start."""
    for system in ("dataverse", "dotdigital"):
        stack.admin(system, "DELETE", "stats")
    started = time.monotonic()
    stack.start_connector(
        memory_samples=Path(args.memory_samples).resolve() if args.memory_samples else None)
    deadline = started + args.timeout
    while not done():
        if stack.connector is not None and stack.connector.poll() is not None:
            raise SystemExit(f"the connector exited early; see {work_dir}/connector.log")
        if time.monotonic() > deadline:
            raise SystemExit(f"the sync did not complete within {args.timeout:.0f} s")
        time.sleep(POLL_S)
    return time.monotonic() - started


def sync_seconds(runs: list[dict[str, Any]]) -> float:
    """The sync's own time: first run started to last run completed (state store clocks); the
    connector's start-up and the wait for its first timer tick are not throughput."""
    return float((max(run["CompletedAt"] for run in runs)
                  - min(run["StartedAt"] for run in runs)).total_seconds())


def run_totals(runs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """The ``n_<counter>`` totals of the completed runs, summed over the accounts."""
    totals: dict[str, int] = {}
    for run in runs:
        for name, stored in run.items():
            value = getattr(stored, "value", stored)  # Int64 counters come as EntityProperty
            if name.startswith("n_") and isinstance(value, int) and not isinstance(value, bool):
                totals[name[2:]] = totals.get(name[2:], 0) + value
    return totals


def emulator_stats(stack: ProcessStack) -> dict[str, Any]:
    return {system: stack.admin(system, "GET", "stats") for system in ("dataverse", "dotdigital")}


def throughput(changed: int, seconds: float, limits: ProtectionLimits,
               cost: CostModel) -> dict[str, Any]:
    """Records per second against the ceiling the limits allow (bench/README.md)."""
    ceiling = ceiling_records_per_second(limits, cost)
    rate = changed / seconds
    return {
        "records_per_second": round(rate, 1),
        "ceiling_records_per_second": round(ceiling["ceiling"], 1),
        "ceiling_by_limit": {k: round(v, 1) for k, v in ceiling.items() if k != "ceiling"},
        "efficiency": round(rate / ceiling["ceiling"], 3),
        # The window starts full: over `seconds` the limits allow one window's budget more than
        # the steady rate, which matters when a run lasts only a few windows.
        "efficiency_counting_initial_window": round(
            rate / (ceiling["ceiling"] * (1 + limits.window_seconds / seconds)), 3),
    }


def run_benchmark(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    limits, cost = cost_and_limits(args)
    options = StackOptions(contacts=args.contacts, accounts=args.accounts, seed=args.seed,
                           timer_schedule=args.timer_schedule,
                           extra_settings=dict(item.split("=", 1) for item in args.set))
    with ProcessStack(work_dir, options) as stack:
        configure_dataverse(stack, limits, cost)
        # The generated data set runs Engagement every 240 minutes: made manual, only the
        # opt-in sync runs and is measured.
        stack.edit_schedules({"ec_intervalminutes": 0}, SyncType.ENGAGEMENT)
        stack.request_sync_now()
        store = LocalQueueStore(stack.queue_dir)
        wall_seconds = sync_until(stack, args, work_dir, lambda: runs_complete(
            stack, store, SyncType.CONTACT_OPT_IN, OPTIN_QUEUE, args.accounts))
        seconds = sync_seconds(stack.run_headers(SyncType.CONTACT_OPT_IN.label))
        stats = emulator_stats(stack)
        totals = results(stack)
        connector = stack.stop_connector()
        dead = dead_lettered(store, OPTIN_QUEUE)
    changed = totals["changed"]
    return {
        "contacts": args.contacts,
        "accounts": args.accounts,
        "seed": args.seed,
        "contacts_read": totals["read"],
        "changed_records": changed,
        "failed_records": totals["failed"],
        "dead_lettered": dead,
        "dotdigital_requests": stats["dotdigital"]["requests"],
        "dotdigital_requests_per_1000_read": round(
            1000 * stats["dotdigital"]["requests"] / max(totals["read"], 1), 2),
        "dataverse_requests": stats["dataverse"]["requests"],
        "dataverse_requests_per_1000_changed": round(
            1000 * stats["dataverse"]["requests"] / max(changed, 1), 2),
        "dataverse_requests_by_route": stats["dataverse"]["by_route"],
        "seconds": round(seconds, 1),
        "wall_seconds": round(wall_seconds, 1),
        "dataverse_busy_seconds": stats["dataverse"]["busy_seconds"],
        **throughput(changed, seconds, limits, cost),
        "throttled_responses": stats["dataverse"]["throttled"] + stats["dotdigital"]["throttled"],
        "peak_rss_mb": connector["peak_rss_mb"],
        "function_invocations": connector["functions"].get("invocations"),
        "function_failures": connector["functions"].get("failures"),
        **dataverse_config(limits, cost),
    }


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every end-to-end benchmark on ``ProcessStack`` takes."""
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=60.0,
                        help="service protection window and budgets divided by this")
    parser.add_argument("--request-ms", type=float, default=DEFAULT_COST.request_ms)
    parser.add_argument("--read-ms", type=float, default=DEFAULT_COST.per_record_read_ms)
    parser.add_argument("--write-ms", type=float, default=DEFAULT_COST.per_record_write_ms)
    parser.add_argument("--bulk-write-ms", type=float,
                        default=DEFAULT_COST.bulk_per_record_write_ms)
    parser.add_argument("--timer-schedule", default="*/5 * * * * *")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds")
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                        help="an app setting for the connector (repeatable)")
    parser.add_argument("--keep", help="work directory to keep (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run N times on fresh stacks and print every run and a summary"
                        " (the efficiency of one run spreads by about ±0.05 on a 2-core machine)")
    parser.add_argument("--memory-samples", metavar="FILE",
                        help="the connector appends its memory every 0.5 s to FILE (JSON lines)")


def check_stack_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.accounts < 1 or args.scale <= 0 or args.repeat < 1:
        parser.error("--accounts must be >= 1, --scale > 0, --repeat >= 1")
    if args.repeat > 1 and args.keep:
        parser.error("--keep keeps one run's work directory: use it without --repeat")
    if any("=" not in item for item in args.set):
        parser.error("--set expects SETTING=VALUE")


def run_repeatedly(
    args: argparse.Namespace, run: Callable[[argparse.Namespace, Path], dict[str, Any]],
    prefix: str, summarised: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Run ``--repeat`` times (each on fresh stacks) and print one run's figures, or every run's
    and their summary."""
    runs = []
    for _ in range(args.repeat):
        if args.keep:
            runs.append(run(args, Path(args.keep)))
        else:
            with tempfile.TemporaryDirectory(prefix=prefix) as work:
                runs.append(run(args, Path(work)))
    summary = summarise(runs, summarised or SUMMARISED)
    print(json.dumps(runs[0] if len(runs) == 1 else {"runs": runs, "summary": summary},
                     indent=2))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.optin_sync", description=__doc__)
    parser.add_argument("--contacts", type=int, default=20_000, help="Dynamics contacts (N)")
    parser.add_argument("--accounts", type=int, default=3, help="dotdigital accounts (K)")
    add_stack_arguments(parser)
    args = parser.parse_args(argv)
    if args.contacts < 50:
        parser.error("--contacts must be >= 50")
    check_stack_arguments(parser, args)
    runs = run_repeatedly(args, run_benchmark, "optin-bench-")
    clean = all(run["failed_records"] == 0 and run["dead_lettered"] == 0 for run in runs)
    return 0 if clean else 1


SUMMARISED = ("efficiency", "dataverse_requests_per_1000_changed", "dotdigital_requests",
              "peak_rss_mb", "throttled_responses", "seconds")


def summarise(
    runs: list[dict[str, Any]], names: tuple[str, ...] = SUMMARISED
) -> dict[str, dict[str, float]]:
    """Median, lowest and highest of the figures that vary from run to run."""
    summary = {}
    for name in names:
        values = sorted(float(run[name]) for run in runs)
        middle = len(values) // 2
        median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
        summary[name] = {"median": round(median, 3), "min": values[0], "max": values[-1]}
    return summary


if __name__ == "__main__":
    sys.exit(main())
