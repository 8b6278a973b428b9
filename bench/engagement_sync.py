"""Engagement benchmark: a backlog of about N campaign and form events across K dotdigital
accounts, synced through the dev host into the event store.

``python -m bench.engagement_sync --events 100000 --accounts 3 [--seed 1] [--repeat R]``

The data set is the generator's (``--contacts`` Dynamics contacts, 200 by default: the Engagement
sync reads nothing of them), with its dotdigital campaigns and forms replaced by the benchmark's
(``bench.engagement_seed``: sends, opens, clicks, page views after clicks and form responses of
many people, over the year before today). Only the Engagement schedules get Sync Now; the other
sync types are made manual. The connector (``bench.connector_process``) runs until every
Engagement schedule is back to ``None`` with a last result and the engagement queue is empty.
Then the event store in Azurite is counted (every person's summary row, and every event row) and
checked against the run counters and the generated data, and each account's hourly call count is
asked of dotdigital (``GET /v2/account-info``, ``ApiCallsInLastHour``). Prints one JSON object;
bench/README.md explains the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient

from bench.engagement_seed import KINDS
from bench.memory_samples import peak_rss_mb
from bench.optin_sync import (
    add_stack_arguments,
    check_stack_arguments,
    configure_dataverse,
    cost_and_limits,
    emulator_stats,
    run_repeatedly,
    run_totals,
    sync_seconds,
    sync_until,
)
from bench.process_stack import (
    ENGAGEMENT_QUEUE,
    ProcessStack,
    StackOptions,
    dead_lettered,
    runs_complete,
)
from devhost.local_queue import LocalQueueStore
from shared.adapters.storage import codec
from shared.adapters.storage.event_store import DEFAULT_TABLE, TableEventStore
from shared.domain.email import match_key
from shared.domain.engagement import (
    EVENT_ROW_END,
    EVENT_ROW_PREFIX,
    SUMMARY_ROW_KEY,
    EventKind,
    person_key,
)
from shared.domain.model import SyncType
from shared.services.engagement.reader import ENGAGEMENT_DRY_SYNC_TYPE, ENGAGEMENT_SYNC_TYPE

# dotdigital's documented limit: 2,000 API calls per hour per account (a rolling hour).
HOURLY_LIMIT = 2000
READER_LOG = re.compile(r"engagement run \S+: (\d+) pages, (\d+) items, (\d+) batches published"
                        r" in ([\d.]+)s")
ENGAGEMENT_ROUTES = ("/v2/campaigns", "/v2/surveys")
TIMER_FAILURES = 5  # failed timer ticks in a row that end the benchmark


class EngagementStack(ProcessStack):
    """A ``ProcessStack`` whose generated data set gets the benchmark's engagement backlog
    (streamed into the seed file by ``bench.engagement_seed``)."""

    seed_rewriter = "bench.engagement_seed"

    def __init__(self, work_dir: Path, options: StackOptions, events: int,
                 as_of: str | None) -> None:
        super().__init__(work_dir, options)
        self.events = events
        self.as_of = as_of

    def seed_rewriter_arguments(self) -> list[str]:
        as_of = [] if self.as_of is None else ["--as-of", self.as_of]
        return ["--events", str(self.events), "--seed", str(self.options.seed), *as_of]

    def peak_memory_mb(self) -> dict[str, float | None]:
        """The emulators' process and Azurite's (its node process) peak resident sizes."""
        return {
            "emulators": _peak_mb(_tree(self._emulators.pid)) if self._emulators else None,
            "azurite": _peak_mb(_tree(self._azurite.pid)) if self._azurite else None,
        }

    def calls_in_last_hour(self) -> dict[str, int]:
        """Per email account, the calls dotdigital counts against its hourly limit (its own
        ``ApiCallsInLastHour``, less this request)."""
        secrets = json.loads((self.work_dir / "secrets.json").read_text())
        url = self.ports["dotdigital"]["account_info_url"]
        found = {}
        for row in sorted(self.rows("ec_emailaccounts"), key=lambda row: str(row["ec_name"])):
            response = requests.get(
                url, auth=(row["ec_apiusername"], secrets[row["ec_secretname"]]),
                verify=self.ports["ca_bundle"], timeout=60)
            response.raise_for_status()
            properties = {item["name"]: item["value"] for item in response.json()["properties"]}
            found[str(row["ec_name"])] = int(properties["ApiCallsInLastHour"]) - 1
        return found


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        pending.extend(int(child) for child in children)
    return found


def _peak_mb(pids: Iterable[int]) -> float | None:
    """The largest ``VmHWM`` among ``pids`` (those still running)."""
    peaks = [peak for peak in map(peak_rss_mb, pids) if peak is not None]
    return round(max(peaks), 1) if peaks else None


class TimerFailures:
    """The connector's failed sync timer ticks in a row, from its log (read on from where the
    last look stopped): a run that fails every tick would otherwise be waited for until the
    timeout."""

    def __init__(self, log: Path, limit: int = TIMER_FAILURES) -> None:
        self.log = log
        self.limit = limit
        self.offset = 0
        self.in_a_row = 0
        self.last = ""

    def check(self) -> None:
        try:
            with self.log.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # whole lines only
        self.offset += end
        for line in chunk[:end].decode("utf-8", errors="replace").splitlines():
            if "function SyncTimer failed" in line:
                self.in_a_row += 1
                self.last = line
            elif "function SyncTimer finished" in line:
                self.in_a_row = 0
        if self.in_a_row >= self.limit:
            raise SystemExit(f"the sync timer failed {self.in_a_row} times in a row, last:"
                             f" {self.last}; see {self.log}")


def event_store_counts(connection: str) -> dict[str, Any]:
    """What the event store holds: the persons' summary rows (their counts summed) and the event
    rows themselves (counted by kind), each read in full."""
    started = time.monotonic()
    table = TableClient.from_connection_string(connection, DEFAULT_TABLE)
    summed = dict.fromkeys(KINDS, 0)
    rows = dict.fromkeys(KINDS, 0)
    people = 0
    try:
        names = [f"{codec.COUNTER_PREFIX}{kind}" for kind in KINDS]
        for row in table.query_entities("RowKey eq @key", parameters={"key": SUMMARY_ROW_KEY},
                                        select=names):
            people += 1
            for kind, name in zip(KINDS, names, strict=True):
                summed[kind] += codec.read_int(row, name)
        for row in table.query_entities("RowKey ge @low and RowKey lt @high",
                                        parameters={"low": EVENT_ROW_PREFIX,
                                                    "high": EVENT_ROW_END},
                                        select=["Kind"]):
            rows[str(row["Kind"])] += 1
    except ResourceNotFoundError:
        pass  # nothing was ever written (a dry run)
    finally:
        table.close()
    return {"people": people, "summaries": summed, "rows": rows,
            "seconds": round(time.monotonic() - started, 1)}


def sample_timelines(connection: str, sample: list[dict[str, Any]]) -> dict[str, Any]:
    """The generated counts of a few people against their timeline's summary (read as the
    timeline page does: ``TableEventStore.timeline``)."""
    store = TableEventStore(TableServiceClient.from_connection_string(connection))
    mismatched = 0
    for person in sample:
        key = match_key(person["email"])
        assert isinstance(key, str)
        summary = store.timeline(person_key(key), limit=1).summary
        assert summary is not None
        held = {kind: summary.count(EventKind(kind)) for kind in KINDS}
        mismatched += held != person["counts"]
    return {"people": len(sample), "mismatched": mismatched}


def reader_log(log: str) -> dict[str, float]:
    """The readers' own accounting, summed over their invocations: pages, items, batches and
    the seconds they spent reading and publishing."""
    totals = {"pages": 0.0, "items": 0.0, "batches": 0.0, "seconds": 0.0}
    for found in READER_LOG.finditer(log):
        for name, value in zip(totals, found.groups(), strict=True):
            totals[name] += float(value)
    return {name: (round(value, 1) if name == "seconds" else int(value))
            for name, value in totals.items()}


def hourly_limit(calls: Mapping[str, int], limit: int = HOURLY_LIMIT) -> dict[str, Any]:
    """Each account's calls against dotdigital's hourly limit: the hours of a full budget the
    backlog took, and whether it stayed within one hour's."""
    highest = max(calls.values(), default=0)
    return {
        "limit_per_account_per_hour": limit,
        "requests_by_account": dict(calls),
        "hours_at_limit_by_account": {name: round(value / limit, 3)
                                      for name, value in calls.items()},
        "max_hours_at_limit": round(highest / limit, 3),
        "within_limit": highest <= limit,
    }


def figures(totals: Mapping[str, int], stats: Mapping[str, Any], seconds: float,
            calls: Mapping[str, int], accounts: int, stored: int) -> dict[str, Any]:
    """The counts and rates of one run (bench/README.md); ``stored``: the event rows the store
    holds at the end."""
    read = totals.get("items", 0)
    dotdigital = stats["dotdigital"]["requests"]
    reads = sum(count for route, count in stats["dotdigital"].get("by_route", {}).items()
                if any(part in route for part in ENGAGEMENT_ROUTES))
    per_account = read / max(accounts, 1)
    per_request = read / max(dotdigital, 1)
    return {
        "events_read": read,
        "events_read_by_kind": {kind: totals.get(f"read_{kind}", 0) for kind in KINDS},
        "events_written": totals.get("written", 0),
        "events_already_stored": totals.get("existing", 0),
        "events_stored": stored,
        "failed": totals.get("failed", 0),
        "dotdigital_requests": dotdigital,
        "dotdigital_engagement_requests": reads,
        "dotdigital_requests_by_route": stats["dotdigital"].get("by_route", {}),
        "events_per_dotdigital_request": round(per_request, 1),
        "dotdigital_requests_per_1000_events": round(1000 * dotdigital / max(read, 1), 2),
        "dotdigital_hourly_limit": {
            **hourly_limit(calls),
            # At this many events per request, one account's hour of calls reads about this many.
            "events_per_account_per_hour_at_limit": round(HOURLY_LIMIT * per_request),
            "events_per_account": round(per_account),
        },
        "dataverse_requests": stats["dataverse"]["requests"],
        "throttled_responses": stats["dataverse"]["throttled"] + stats["dotdigital"]["throttled"],
        "events_written_per_second": round(stored / seconds, 1) if seconds > 0 else 0.0,
        "events_read_per_second": round(read / seconds, 1) if seconds > 0 else 0.0,
    }


def checks(made: Mapping[str, Any], counts: Mapping[str, Any], store: Mapping[str, Any],
           sample: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, bool]:
    """Cross-checks: generated = read; every event read was either written or found stored by
    the delivery that completed its batch; each event is stored once; the summaries count
    exactly the event rows; a sample of people's timelines hold what was generated for them. A
    dry run must have read everything and stored nothing.

    ``written`` alone may fall short of the rows: a delivery that fails after some of its
    people's transactions (a reset connection, say) is redelivered, and the redelivery counts
    the events the failed one stored as already there."""
    held = sum(store["rows"].values())
    read = counts["events_read"]
    if dry_run:
        return {
            "read_equals_generated": counts["events_read_by_kind"] == made["by_kind"],
            "nothing_written": counts["events_written"] == 0 and held == 0
            and sum(store["summaries"].values()) == 0,
        }
    return {
        "read_equals_generated": counts["events_read_by_kind"] == made["by_kind"],
        "written_or_found_equals_read":
            counts["events_written"] + counts["events_already_stored"] == read,
        "store_rows_equal_generated": store["rows"] == made["by_kind"],
        "summaries_equal_rows": store["summaries"] == store["rows"],
        "written_at_most_store_rows": counts["events_written"] <= held,
        "sample_timelines_match": sample["mismatched"] == 0,
    }


def run_benchmark(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    limits, cost = cost_and_limits(args)
    settings = dict(item.split("=", 1) for item in args.set)
    if args.dry_run:
        settings["SYNC_DRY_RUN"] = "true"
    options = StackOptions(contacts=args.contacts, accounts=args.accounts, seed=args.seed,
                           timer_schedule=args.timer_schedule, extra_settings=settings)
    stack = EngagementStack(work_dir, options, args.events, args.as_of)
    with stack:
        configure_dataverse(stack, limits, cost)
        store = LocalQueueStore(stack.queue_dir)
        failures = TimerFailures(work_dir / "connector.log")

        def done() -> bool:
            failures.check()
            return runs_complete(stack, store, SyncType.ENGAGEMENT, ENGAGEMENT_QUEUE,
                                 args.accounts)

        wall_seconds = sync_until(stack, args, work_dir, done)
        # A dry run keeps its runs apart in the state store, under a name of their own.
        runs = stack.run_headers(ENGAGEMENT_DRY_SYNC_TYPE if args.dry_run
                                 else ENGAGEMENT_SYNC_TYPE)
        seconds = sync_seconds(runs)
        stats = emulator_stats(stack)
        connector = stack.stop_connector()
        calls = stack.calls_in_last_hour()
        dead = dead_lettered(store, ENGAGEMENT_QUEUE)
        held = event_store_counts(stack.storage)
        sample = sample_timelines(stack.storage, [] if args.dry_run
                                  else stack.made.get("sample", []))
        memory = stack.peak_memory_mb()
    log = (work_dir / "connector.log").read_text(encoding="utf-8", errors="replace")
    counts = figures(run_totals(runs), stats, seconds, calls, args.accounts,
                     sum(held["rows"].values()))
    generated = {name: value for name, value in stack.made.items() if name != "sample"}
    verified = checks(stack.made, counts, held, sample, dry_run=args.dry_run)
    return {
        "events": args.events,
        "dry_run": args.dry_run,
        "accounts": args.accounts,
        "seed": args.seed,
        "generated": generated,
        **counts,
        "dead_lettered": dead,
        "event_store": held,
        "sample_timelines": sample,
        "checks": verified,
        "runs": len(runs),
        "batches": sum(codec.read_int(run, "BatchesPublished") for run in runs),
        "reader": reader_log(log),
        "seconds": round(seconds, 1),
        "wall_seconds": round(wall_seconds, 1),
        "dotdigital_busy_seconds": stats["dotdigital"]["busy_seconds"],
        "peak_rss_mb": connector["peak_rss_mb"],
        "emulators_peak_rss_mb": memory["emulators"],
        "azurite_peak_rss_mb": memory["azurite"],
        "function_invocations": connector["functions"].get("invocations"),
        "function_failures": connector["functions"].get("failures"),
    }


ENGAGEMENT_SUMMARISED = ("events_written_per_second", "dotdigital_requests_per_1000_events",
                         "dotdigital_requests", "peak_rss_mb", "throttled_responses", "seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engagement_sync", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="N")
    parser.add_argument("--accounts", type=int, default=3, help="dotdigital accounts (K)")
    parser.add_argument("--contacts", type=int, default=200,
                        help="Dynamics contacts of the generated data set (at least 50)")
    parser.add_argument("--as-of", help="the backlog ends before this date, YYYY-MM-DD"
                        " (default: today, UTC)")
    parser.add_argument("--dry-run", action="store_true",
                        help="SYNC_DRY_RUN: read, queue and account every event, store none (the"
                        " read side of a backlog too large to write in reasonable time)")
    add_stack_arguments(parser)
    args = parser.parse_args(argv)
    if args.events < args.accounts or args.contacts < 50:
        parser.error("--events must be >= --accounts, --contacts >= 50")
    check_stack_arguments(parser, args)
    runs = run_repeatedly(args, run_benchmark, "engagement-bench-", ENGAGEMENT_SUMMARISED)
    clean = all(run["failed"] == 0 and run["dead_lettered"] == 0 and all(run["checks"].values())
                for run in runs)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
