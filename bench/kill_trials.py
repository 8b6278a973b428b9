"""Kill the connector at random points of a sync, restart it, and check it converges.

``python -m bench.kill_trials --trials 10 [--sync optin|suppression] [--contacts 3000]
[--accounts 3] [--rng-seed 7]``

First a fault-free run of the data set records the final state and how long the sync takes:
for the opt-in sync the ``ec_optintype`` of every contact, lead and account; for the
SuppressionLists sync (``bench.suppression_seed``'s data, ``--contacts`` suppressions) every
Email Suppression row, every Note (counted, so a Note written twice is a difference) and every
record's *Do not bulk email*, with the moments of the run itself masked (a resubscription
dotdigital grants at once is dated when the run asked for it). Then each trial syncs the same
data set on fresh emulators, Azurite and queues, SIGKILLs the connector after a random delay
(seeded RNG) and starts it again, until the sync completes. After every kill, with the connector
dead and the state frozen, it checks that no watermark is ahead of data that is durably handed
on: every run whose window the watermark covers has finished publishing, and each of its batches
is either marked applied in the state store or still on the queue (or its dead letters: the
broker's, and the ``-deadletter`` queue where the app parks batches that can never succeed). At
the end the final state must equal the fault-free run's. Prints a JSON summary and exits 1 on
any violation or divergence.

The queue lock is short (``--lock-duration``) so deliveries held by a killed process come back
quickly, and the readers flush often so kills also land between their checkpoints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.optin_sync import DEFAULT_COST, Protection, runs_complete
from bench.process_stack import OPTIN_QUEUE, ProcessStack, StackOptions
from bench.suppression_seed import SuppressionSeed
from bench.suppression_sync import SUPPRESSION_QUEUE, SuppressionStack
from bench.suppression_sync import runs_complete as suppression_runs_complete
from devhost.local_queue import DB_FILE, LocalQueueStore
from shared.adapters.servicebus.message_codec import dead_letter_queue, decode, unreadable_batch
from shared.adapters.servicebus.suppression_schema import SUPPRESSION_SCHEMA
from shared.adapters.storage import codec
from shared.domain.commands import BatchRef
from shared.errors import MessageFormatError

TABLES = {"contacts": "contactid", "leads": "leadid", "accounts": "accountid"}
POLL_S = 0.2
MAX_KILLS_PER_TRIAL = 5
FIRST_UP_S = 1.0  # the connector does nothing before it has imported the app


@dataclass
class Trial:
    kills: int = 0
    violations: list[str] = field(default_factory=list)
    converged: bool = False
    differences: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class SyncUnderTest:
    """What differs between the syncs the trials kill."""

    queue: str
    sync_type: str  # the sync state's name of it
    settings: dict[str, str]


SYNCS = {
    # One page per flush (opt-in) or two shards (suppression): the readers checkpoint often, so
    # kills land between checkpoints.
    "optin": SyncUnderTest(OPTIN_QUEUE, "ContactOptIn", {"OPTIN_PAGES_PER_FLUSH": "1"}),
    "suppression": SyncUnderTest(SUPPRESSION_QUEUE, "SuppressionLists",
                                 {"SUPPRESSION_SHARDS": "2"}),
}


def _options(args: argparse.Namespace) -> StackOptions:
    sync = SYNCS[args.sync]
    return StackOptions(
        contacts=args.contacts, accounts=args.accounts, seed=args.seed,
        timer_schedule="* * * * * *",
        extra_settings={**sync.settings,
                        "OPTIN_MAX_DELIVERY_COUNT": str(args.max_delivery_count),
                        "SUPPRESSION_MAX_DELIVERY_COUNT": str(args.max_delivery_count)},
    )


@contextmanager
def _stack(args: argparse.Namespace, work_dir: Path) -> Iterator[ProcessStack]:
    if args.sync == "suppression":
        seeding = SuppressionSeed(args.contacts, 0.05, 0.01, args.seed)
        stack: ProcessStack = SuppressionStack(work_dir, _options(args), seeding)
    else:
        stack = ProcessStack(work_dir, _options(args))
    with stack:
        stack.admin("dataverse", "POST", "config", {
            "service_protection": Protection(args.scale).as_config(),
            "cost_model": DEFAULT_COST.as_config()})
        if args.sync == "optin":
            stack.request_sync_now()  # the suppression data set ticks its own Sync Now
        yield stack


def _complete(args: argparse.Namespace, stack: ProcessStack, store: LocalQueueStore) -> bool:
    if isinstance(stack, SuppressionStack):
        return suppression_runs_complete(stack, store, args.accounts)
    return runs_complete(stack, store, args.accounts)


def final_state(stack: ProcessStack, started: str) -> dict[str, Any]:
    """What the sync decided: opt-in types, or suppression rows, Note counts and flags."""
    if not isinstance(stack, SuppressionStack):
        return {f"{table}:{row[key]}": row.get("ec_optintype")
                for table, key in TABLES.items() for row in stack.rows(table)}
    found: dict[str, Any] = {}
    names = {}
    for table, key in TABLES.items():
        for row in stack.rows(table):
            names[str(row[key])] = f"{table}:{row[key]}"
            found[f"{table}:{row[key]}:dnbe"] = row.get("donotbulkemail")
    for row in stack.rows("ec_emailsuppressions"):
        names[str(row["ec_emailsuppressionid"])] = f"row:{row['ec_emailaddress']}"
        name = f"row:{row['ec_emailaddress']}:{row.get('_ec_emailaccountid_value')}"
        found[name] = tuple(sorted(
            (column, _masked(value, started)) for column, value in row.items()
            if column.startswith("ec_") and column not in _OWN_CLOCK
            and column != "ec_emailsuppressionid") + [("state", row.get("statecode"))])
    for note in stack.rows("annotations"):
        name = (f"note:{names.get(str(note.get('_objectid_value')), '?')}:"
                f"{_masked(note.get('notetext'), started)}")
        found[name] = found.get(name, 0) + 1
    return found


# Stamped with the connector's own clock: they differ between any two runs.
_OWN_CLOCK = {"ec_pushedon", "ec_resubscriptionrequestedon"}
_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def _masked(value: Any, started: str) -> Any:
    """Moments of the run itself masked: a date at or after ``started`` (ISO, UTC), and the
    minutes that statuses and Notes carry."""
    if not isinstance(value, str):
        return value
    if len(value) >= 20 and value[4] == "-" and value.endswith("Z") and value >= started:
        return "<during the run>"
    return _MINUTE.sub("<minute>", value)


class StateRows(Protocol):
    def state_rows(self) -> list[dict[str, Any]]: ...


def watermark_violations(
    state: StateRows, store: LocalQueueStore, sync: SyncUnderTest = SYNCS["optin"]
) -> list[str]:
    """Runs covered by a watermark whose batches are neither applied nor on the queue."""
    rows = state.state_rows()
    queued = set()
    for body, properties in _all_messages(store, sync.queue):
        ref = _batch_of(body, properties)
        if ref is not None:
            queued.add((ref.account, ref.run_id, ref.batch))
    partitions: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        partitions.setdefault(row["PartitionKey"], {})[row["RowKey"]] = row
    problems = []
    for partition, by_key in partitions.items():
        account, _, sync_type = partition.partition("|")
        watermark = by_key.get("watermark")
        if sync_type != sync.sync_type or watermark is None:
            continue
        covered = [(key, row) for key, row in by_key.items()
                   if key.startswith("run|") and "|batch|" not in key
                   and row["Until"] <= watermark["Value"]]
        if not any(row["Until"] == watermark["Value"] for _, row in covered):
            problems.append(f"{partition}: no run ends at the watermark {watermark['Value']}")
        for key, run in covered:
            run_id = key.removeprefix("run|")
            if run["Status"] == "publishing":
                problems.append(f"{partition} run {run_id}: watermark moved before publishing "
                                "finished")
            for batch in range(codec.read_int(run, "BatchesPublished")):
                applied = f"{key}|batch|{batch:07d}" in by_key
                if not applied and (account, run_id, batch) not in queued:
                    problems.append(f"{partition} run {run_id}: batch {batch} is behind the "
                                    "watermark but neither applied nor queued")
    return problems


def _batch_of(body: bytes, properties: dict[str, Any]) -> BatchRef | None:
    try:
        return decode(body).ref
    except MessageFormatError:  # an unreadable body still names its batch in its properties
        unreadable = (unreadable_batch(properties)
                      or unreadable_batch(properties, SUPPRESSION_SCHEMA))
        return None if unreadable is None else unreadable.ref


def _all_messages(store: LocalQueueStore, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Body and properties of every message on ``queue``, the broker's dead letters and the
    app's parked ones included (read-only)."""
    path = store.directory / DB_FILE
    queues = (queue, dead_letter_queue(queue))
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        return [(bytes(body), json.loads(properties)) for body, properties in db.execute(
            "SELECT body, properties FROM messages WHERE queue IN (?, ?)", queues)]


def _wait_complete(args: argparse.Namespace, stack: ProcessStack, store: LocalQueueStore,
                   timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _complete(args, stack, store):
            return True
        time.sleep(POLL_S)
    return False


def reference_run(args: argparse.Namespace, work_dir: Path) -> tuple[dict[str, Any], float]:
    with _stack(args, work_dir) as stack:
        store = LocalQueueStore(stack.queue_dir)
        started, begun = time.monotonic(), _now_iso()
        stack.start_connector(lock_duration_s=args.lock_duration)
        if not _wait_complete(args, stack, store, args.timeout):
            raise SystemExit("the fault-free run did not complete")
        seconds = time.monotonic() - started
        stack.stop_connector()
        return final_state(stack, begun), seconds


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_trial(args: argparse.Namespace, work_dir: Path, rng: random.Random,
              reference: dict[str, Any], sync_seconds: float) -> Trial:
    trial = Trial()
    started = time.monotonic()
    sync = SYNCS[args.sync]
    with _stack(args, work_dir) as stack:
        begun = _now_iso()
        store = LocalQueueStore(stack.queue_dir)
        while True:
            stack.start_connector(lock_duration_s=args.lock_duration)
            if trial.kills >= MAX_KILLS_PER_TRIAL:
                break
            # Within the fault-free sync's time: a restarted connector has less left to do, so
            # later kills may come after it finished, which ends the trial.
            delay = rng.uniform(FIRST_UP_S, max(FIRST_UP_S + 0.5, 0.9 * sync_seconds))
            if _wait_complete(args, stack, store, delay):
                break
            stack.kill_connector()
            trial.kills += 1
            trial.violations += watermark_violations(stack, store, sync)
        if not _wait_complete(args, stack, store, args.timeout):
            trial.violations.append("the sync did not complete after the last restart")
        stack.stop_connector()
        trial.violations += watermark_violations(stack, store, sync)
        if (store.counts(sync.queue).dead_lettered
                + store.counts(dead_letter_queue(sync.queue)).active):
            trial.violations.append("batches were dead-lettered")
        final = final_state(stack, begun)
    trial.differences = sum(1 for key in reference.keys() | final.keys()
                            if reference.get(key) != final.get(key))
    trial.converged = trial.differences == 0 and not trial.violations
    trial.seconds = round(time.monotonic() - started, 1)
    return trial


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kill_trials", description=__doc__)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--sync", choices=sorted(SYNCS), default="optin")
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1, help="data set seed")
    parser.add_argument("--rng-seed", type=int, default=7, help="seed of the kill points")
    parser.add_argument("--scale", type=float, default=60.0)
    parser.add_argument("--lock-duration", type=float, default=2.0, help="seconds")
    parser.add_argument("--max-delivery-count", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per sync")
    parser.add_argument("--keep", help="work directory to keep (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.contacts < 50 or args.lock_duration <= 0:
        parser.error("--trials >= 1, --contacts >= 50 and --lock-duration > 0 are required")
    started = time.monotonic()
    rng = random.Random(args.rng_seed)
    with tempfile.TemporaryDirectory(prefix="kill-trials-") as temporary:
        root = Path(args.keep or temporary)
        reference, sync_seconds = reference_run(args, root / "reference")
        trials = [run_trial(args, root / f"trial-{index}", rng, reference, sync_seconds)
                  for index in range(args.trials)]
    summary = {
        "trials": len(trials),
        "kills": sum(t.kills for t in trials),
        "all_converged": all(t.converged for t in trials),
        "seconds": round(time.monotonic() - started, 1),
        "records": len(reference),
        "fault_free_sync_seconds": round(sync_seconds, 1),
        "per_trial": [{"kills": t.kills, "converged": t.converged, "differences": t.differences,
                       "violations": t.violations[:5], "seconds": t.seconds} for t in trials],
    }
    print(json.dumps(summary, indent=2))
    return 0 if summary["all_converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
