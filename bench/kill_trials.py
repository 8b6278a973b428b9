"""Kill the connector at random points of a sync, restart it, and check it converges.

``python -m bench.kill_trials --trials 10 [--sync optin|suppression|engagement]
[--contacts 3000] [--accounts 3] [--activities-per-campaign N] [--rng-seed 7]``

First a fault-free run of the data set records the final state and how long the sync takes:
for the opt-in sync the ``ec_optintype`` of every contact, lead and account; for the
SuppressionLists sync (``bench.suppression_seed``'s data, ``--contacts`` suppressions) every
Email Suppression row, every Note (counted, so a Note written twice is a difference) and every
record's *Do not bulk email*, with the moments of the run itself masked (a resubscription
dotdigital grants at once is dated when the run asked for it); for the Engagement sync (the
generator's campaigns, ``--activities-per-campaign`` contacts each, read into the event store in
Azurite) every person's events (kind, time, title, details; counted, so an event stored twice is
a difference) and summary; there Sync Now is ticked on every Engagement schedule and the
ContactOptIn schedules are made manual, so nothing else runs. Then each trial syncs the same
data set on fresh emulators, Azurite and queues, SIGKILLs the connector after a random delay
(seeded RNG) and starts it again, until the sync completes. After every kill, with the connector
dead and the state frozen, it checks that no watermark is ahead of data that is durably handed
on: every run whose window the watermark covers has finished publishing, and each of its batches
is either marked applied in the state store or still on the queue (or its dead letters: the
broker's, and the ``-deadletter`` queue where the app parks batches that can never succeed). For
the Engagement sync it also checks, after every kill and at the end, that each person's summary
counts exactly the events the store holds. At the end the final state must equal the fault-free
run's. Prints a JSON summary (``kills_while_reading``: kills before every account's reader had
published its whole run) and exits 1 on any violation or divergence.

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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from bench.optin_sync import DEFAULT_COST, configure_dataverse, scaled_protection
from bench.process_stack import (
    ENGAGEMENT_QUEUE,
    OPTIN_QUEUE,
    SUPPRESSION_QUEUE,
    ProcessStack,
    StackOptions,
    dead_lettered,
    runs_complete,
    select_run_headers,
)
from bench.suppression_seed import SuppressionSeed
from bench.suppression_sync import SuppressionStack
from devhost.local_queue import DB_FILE, LocalQueueStore
from shared.adapters.servicebus.engagement_schema import ENGAGEMENT_SCHEMA
from shared.adapters.servicebus.message_codec import dead_letter_queue, decode, unreadable_batch
from shared.adapters.servicebus.suppression_schema import SUPPRESSION_SCHEMA
from shared.adapters.storage import codec
from shared.adapters.storage.event_store import DEFAULT_TABLE as EVENT_TABLE
from shared.domain.commands import BatchRef
from shared.domain.engagement import (
    EVENT_ROW_PREFIX,
    SUMMARY_ROW_KEY,
    EventKind,
    summarise,
)
from shared.domain.model import SyncType
from shared.errors import MessageFormatError

TABLES = {"contacts": "contactid", "leads": "leadid", "accounts": "accountid"}
POLL_S = 0.2
MAX_KILLS_PER_TRIAL = 5
FIRST_UP_S = 1.0  # the connector does nothing before it has imported the app


@dataclass
class Trial:
    kills: int = 0
    kills_while_reading: int = 0  # a reader had not finished publishing its run
    violations: list[str] = field(default_factory=list)
    converged: bool = False
    differences: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class SyncUnderTest:
    """What differs between the syncs the trials kill."""

    queue: str
    sync_type: SyncType
    settings: dict[str, str]
    activities_per_campaign: int | None = None  # the generator's default when None


SYNCS = {
    # One page per flush (opt-in) or two shards (suppression): the readers checkpoint often, so
    # kills land between checkpoints.
    "optin": SyncUnderTest(OPTIN_QUEUE, SyncType.CONTACT_OPT_IN, {"OPTIN_PAGES_PER_FLUSH": "1"}),
    "suppression": SyncUnderTest(SUPPRESSION_QUEUE, SyncType.SUPPRESSION_LISTS,
                                 {"SUPPRESSION_SHARDS": "2"}),
    # The Engagement reader takes its shards, and as many dotdigital pages per flush, from
    # ENGAGEMENT_SHARDS: one shard checkpoints after every page (a campaign's activity rows,
    # opens, clicks or page views; a form's responses). 30 contacts per campaign make about 300
    # events per account in 13 pages: storing them (a transaction per person per batch) is most
    # of the sync's time.
    "engagement": SyncUnderTest(ENGAGEMENT_QUEUE, SyncType.ENGAGEMENT,
                                {"ENGAGEMENT_SHARDS": "1"}, activities_per_campaign=30),
}


def _options(args: argparse.Namespace) -> StackOptions:
    sync = SYNCS[args.sync]
    activities = args.activities_per_campaign
    return StackOptions(
        contacts=args.contacts, accounts=args.accounts, seed=args.seed,
        timer_schedule="* * * * * *",
        extra_settings={**sync.settings,
                        **{f"{name}_MAX_DELIVERY_COUNT": str(args.max_delivery_count)
                           for name in ("OPTIN", "SUPPRESSION", "ENGAGEMENT")}},
        activities_per_campaign=sync.activities_per_campaign if activities is None else activities,
    )


class EngagementTrialStack(ProcessStack):
    """A ``ProcessStack`` on the generated data set whose Engagement schedules get Sync Now and
    nothing else runs (``bench.engagement_sync.EngagementStack`` seeds a backlog of its own)."""

    def prepare(self) -> None:
        # ContactOptIn runs every 15 minutes in the generated data set: made manual, it stays
        # idle. SuppressionLists is manual already; Engagement runs once on Sync Now (its interval
        # of 240 minutes puts the next run after the trial).
        self.edit_schedules({"ec_intervalminutes": 0}, SyncType.CONTACT_OPT_IN)
        self.request_sync_now(SyncType.ENGAGEMENT)

    def event_rows(self) -> list[dict[str, Any]]:
        """Every row of the event store's table (summaries and events)."""
        table = TableClient.from_connection_string(self.storage, EVENT_TABLE)
        try:
            return [dict(entity) for entity in table.list_entities()]
        except ResourceNotFoundError:
            return []  # nothing stored yet
        finally:
            table.close()


@contextmanager
def _stack(args: argparse.Namespace, work_dir: Path) -> Iterator[ProcessStack]:
    if args.sync == "suppression":
        seeding = SuppressionSeed(args.contacts, 0.05, 0.01, args.seed)
        stack: ProcessStack = SuppressionStack(work_dir, _options(args), seeding)
    elif args.sync == "engagement":
        stack = EngagementTrialStack(work_dir, _options(args))
    else:
        stack = ProcessStack(work_dir, _options(args))
    with stack:
        configure_dataverse(stack, scaled_protection(args.scale), DEFAULT_COST)
        if isinstance(stack, EngagementTrialStack):
            stack.prepare()
        elif args.sync == "optin":
            # Engagement runs every 240 minutes in the generated data set: made manual, it does
            # not compete for the machine (the suppression data set has only its own schedules
            # active, and ticks its own Sync Now).
            stack.edit_schedules({"ec_intervalminutes": 0}, SyncType.ENGAGEMENT)
            stack.request_sync_now()
        yield stack


def final_state(stack: ProcessStack, started: str) -> dict[str, Any]:
    """What the sync decided: opt-in types; suppression rows, Note counts and flags; or the
    event store's events and summaries."""
    if isinstance(stack, EngagementTrialStack):
        return engagement_state(stack.event_rows())
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


def engagement_state(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Each person's events, by kind, time, title and details, with how often each is stored,
    and each person's summary (counts by kind, first and last time)."""
    found: dict[str, Any] = {}
    for row in rows:
        person, key = str(row["PartitionKey"]), str(row["RowKey"])
        if key == SUMMARY_ROW_KEY:
            found[f"summary:{person}"] = _stored_summary(row)
        elif key.startswith(EVENT_ROW_PREFIX):
            name = (f"event:{person}:{row.get('Kind')}|{_moment(row.get('At'))}|"
                    f"{row.get('Title')}|{row.get('Details')}")
            found[name] = found.get(name, 0) + 1
    return found


def summary_violations(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Persons whose summary does not count exactly the events the store holds for them."""
    summaries: dict[str, tuple[Any, ...]] = {}
    events: dict[str, list[_Counted]] = {}
    for row in rows:
        person, key = str(row["PartitionKey"]), str(row["RowKey"])
        if key == SUMMARY_ROW_KEY:
            summaries[person] = _stored_summary(row)
        elif key.startswith(EVENT_ROW_PREFIX):
            events.setdefault(person, []).append(
                _Counted(EventKind(str(row["Kind"])), codec.plain_utc(row["At"])))
    problems = []
    for person in sorted(summaries.keys() | events.keys()):
        held = summarise(events.get(person, ()))
        expected = (None if held.total == 0 else
                    (*(held.count(kind) for kind in EventKind), _moment(held.first_at),
                     _moment(held.last_at)))
        if summaries.get(person) != expected:
            problems.append(f"person {person[:12]}: summary {summaries.get(person)} but the "
                            f"events held make {expected}")
    return problems


@dataclass(frozen=True)
class _Counted:
    kind: EventKind
    at: dt.datetime


def _stored_summary(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Counts by kind (``EventKind`` order), then first and last time."""
    return (*(codec.read_int(row, f"{codec.COUNTER_PREFIX}{kind.value}") for kind in EventKind),
            _moment(row.get("FirstAt")), _moment(row.get("LastAt")))


def _moment(value: Any) -> str | None:
    return codec.plain_utc(value).isoformat() if isinstance(value, dt.datetime) else None


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
        if sync_type != sync.sync_type.label or watermark is None:
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


def reading(state: StateRows, sync: SyncUnderTest, accounts: int) -> bool:
    """Whether some account's reader had not yet published its whole run (or not started it)."""
    runs = select_run_headers(state.state_rows(), sync.sync_type.label)
    started = {row["PartitionKey"] for row in runs}
    return len(started) < accounts or any(row.get("Status") == "publishing" for row in runs)


def _batch_of(body: bytes, properties: dict[str, Any]) -> BatchRef | None:
    try:
        return decode(body).ref
    except MessageFormatError:  # an unreadable body still names its batch in its properties
        unreadable = (unreadable_batch(properties)
                      or unreadable_batch(properties, SUPPRESSION_SCHEMA)
                      or unreadable_batch(properties, ENGAGEMENT_SCHEMA))
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
    sync = SYNCS[args.sync]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if runs_complete(stack, store, sync.sync_type, sync.queue, args.accounts):
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
        problems = _store_violations(stack)
        if problems:
            raise SystemExit(f"the fault-free run's event store is inconsistent: {problems[:5]}")
        return final_state(stack, begun), seconds


def _store_violations(stack: ProcessStack) -> list[str]:
    """The Engagement sync's summaries against the events held (nothing for the other syncs)."""
    return summary_violations(stack.event_rows()) if isinstance(stack, EngagementTrialStack) else []


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
            trial.kills_while_reading += reading(stack, sync, args.accounts)
            trial.violations += watermark_violations(stack, store, sync)
            trial.violations += _store_violations(stack)
        if not _wait_complete(args, stack, store, args.timeout):
            trial.violations.append("the sync did not complete after the last restart")
        stack.stop_connector()
        trial.violations += watermark_violations(stack, store, sync)
        trial.violations += _store_violations(stack)
        if dead_lettered(store, sync.queue):
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
    parser.add_argument("--activities-per-campaign", type=int, default=None,
                        help="contacts each generated campaign was sent to (default: 30 for"
                        " --sync engagement, else the generator's)")
    parser.add_argument("--rng-seed", type=int, default=7, help="seed of the kill points")
    parser.add_argument("--scale", type=float, default=60.0)
    parser.add_argument("--lock-duration", type=float, default=2.0, help="seconds")
    parser.add_argument("--max-delivery-count", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per sync")
    parser.add_argument("--keep", help="work directory to keep (default: a temporary one)")
    args = parser.parse_args(argv)
    if (args.trials < 1 or args.contacts < 50 or args.lock_duration <= 0
            or (args.activities_per_campaign or 0) < 0):
        parser.error("--trials >= 1, --contacts >= 50, --lock-duration > 0 and"
                     " --activities-per-campaign >= 0 are required")
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
        "kills_while_reading": sum(t.kills_while_reading for t in trials),
        "all_converged": all(t.converged for t in trials),
        "seconds": round(time.monotonic() - started, 1),
        "records": len(reference),
        "fault_free_sync_seconds": round(sync_seconds, 1),
        "per_trial": [{"kills": t.kills, "while_reading": t.kills_while_reading,
                       "converged": t.converged, "differences": t.differences,
                       "violations": t.violations[:5], "seconds": t.seconds} for t in trials],
    }
    print(json.dumps(summary, indent=2))
    return 0 if summary["all_converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
