"""The whole connector on one machine: emulators, Azurite and the dev host running ``function_app``.

``make run``, the end-to-end tests and the benchmarks share it::

    with LocalStack(contacts=300, settings={"SYNC_DRY_RUN": "true"}) as stack:
        stack.request_sync_now()                  # tick Sync Now, as an administrator would
        stack.run_until_complete(timeout_s=60)    # timer ticks until every run is applied
        stack.dataverse.rows("contacts")          # admin APIs: data, stats, faults, config
        stack.dead_letters()                      # the broker's and the app's, with reasons

Settings are ``local.settings.sample.json``'s values, then what this stack started (emulator
URLs, their CA, the demo accounts' secrets, Azurite, a local queue directory of its own), then
the caller's ``settings``. The dev host puts them into ``os.environ`` as the Functions host does;
the stack puts the previous environment back on exit and makes ``shared.bootstrap`` build the
app's services again, so stacks can follow one another in one process (never run two at once).

The opt-in queue gets ``OPTIN_MAX_DELIVERY_COUNT`` as its max delivery count, as the deployment
sets both from one parameter, and ``lock_duration_s`` as its lock duration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from azure.data.tables import TableServiceClient

from devhost.app_index import load_function_app
from devhost.host import DevHost, HostOptions
from devhost.host_config import HostConfig, load_host_config
from devhost.invocation import Outcome
from devhost.local_publisher import parked_dead_letters
from devhost.local_queue import QueueOptions, StoredMessage
from devhost.local_settings import parse_local_settings
from devtools.azurite import AzuriteHandle, start_azurite
from devtools.emulator_admin import EmulatorAdmin
from emulators.cluster import EmulatorCluster
from emulators.datagen import generate_dataset, secrets_for
from ops.syncs import KINDS
from shared import bootstrap
from shared.adapters.dataverse.settings_tables import schedule_from_row
from shared.adapters.storage.run_journal import TableRunJournal
from shared.adapters.storage.sync_state import TableSyncStateStore
from shared.config import load_settings
from shared.domain.model import SyncSchedule, SyncStatus, SyncType
from shared.domain.schedule import is_due
from shared.services.ports import PageCursor

logger = logging.getLogger("stack")
ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SETTINGS = ROOT / "local.settings.sample.json"
TIMER = "SyncTimer"
PRIMARY_KEYS = {"contacts": "contactid", "leads": "leadid", "accounts": "accountid"}


class StackError(RuntimeError):
    """The stack could not start, or a run did not finish in the time given."""


@dataclass
class Completion:
    """What ``run_until_complete`` did: timer ticks, and the ticks that failed (with why)."""

    ticks: int = 0
    timer_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def emulator_settings(
    described: Mapping[str, Any], storage_connection: str, queue_dir: Path
) -> dict[str, str]:
    """App settings that point the connector at running emulators (their ports file content),
    an Azurite table endpoint and a local queue directory."""
    entra = described["entra"]
    client = entra["default_client"]
    return {
        "DATAVERSE_URL": described["dataverse"]["base_url"],
        "ENTRA_AUTHORITY_HOST": entra["base_url"],
        "ENTRA_TENANT_ID": entra["tenant_id"],
        "ENTRA_CLIENT_ID": client["client_id"],
        "ENTRA_CLIENT_SECRET": client["client_secret"],
        "DOTDIGITAL_ACCOUNT_INFO_URL": described["dotdigital"]["account_info_url"],
        "OUTBOUND_CA_BUNDLE": described["ca_bundle"],
        "AzureWebJobsStorage": storage_connection,
        "STATE_STORAGE_CONNECTION": "",
        "LOCAL_QUEUE_DIR": str(queue_dir),
    }


class LocalStack:
    def __init__(
        self,
        *,
        dataset: Mapping[str, Any] | None = None,
        contacts: int = 300,
        email_accounts: int = 2,
        seed: int = 7,
        settings: Mapping[str, str] | None = None,
        settings_file: Path = SAMPLE_SETTINGS,
        run_dir: Path | None = None,
        emulator_dir: Path | None = None,
        lock_duration_s: float = 60.0,
        host_config: HostConfig | None = None,
        timers: bool = False,
        http: bool = False,
        queues: bool = True,
    ) -> None:
        """``dataset``: a cluster seed (default: ``generate_dataset(contacts, email_accounts,
        seed)``). ``run_dir``: where queues and Azurite's files go (default: a temporary
        directory, removed on exit). ``emulator_dir``: the emulators' CA (default: in run_dir).
        ``timers``/``http``: fire timers on their schedule / serve HTTP routes. ``queues``
        False: nothing is delivered until ``start_queues()`` (to see a run between its steps)."""
        self._dataset = dict(dataset) if dataset is not None else None
        self._generate = (contacts, email_accounts, seed)
        self._overrides = dict(settings or {})
        self._settings_file = settings_file
        self._run_dir = run_dir
        self._emulator_dir = emulator_dir
        self._lock_duration_s = lock_duration_s
        self._host_config = host_config
        self._timers = timers
        self._http = http
        self._queues = queues
        self._exit = contextlib.ExitStack()
        self.dataset: dict[str, Any] = {}
        self.values: dict[str, str] = {}
        self.started_at = 0.0

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit.close()

    def _start(self) -> None:
        exit_stack = self._exit
        run_dir = self._run_dir
        if run_dir is None:
            run_dir = Path(exit_stack.enter_context(tempfile.TemporaryDirectory(prefix="stack-")))
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        self.cluster = exit_stack.enter_context(
            EmulatorCluster(self._emulator_dir or run_dir / "emulators")
        )
        self.azurite: AzuriteHandle = exit_stack.enter_context(start_azurite(run_dir / "azurite"))
        if self._dataset is None:
            contacts, accounts, seed = self._generate
            self._dataset = generate_dataset(contacts=contacts, accounts=accounts, seed=seed)
        self.dataset = self._dataset
        loaded = self.cluster.seed(self.dataset)
        logger.info("emulators up, seeded: %s", json.dumps(loaded))
        raw = json.loads(self._settings_file.read_text(encoding="utf-8"))
        values = {
            **raw.get("Values", {}),
            **secrets_for(self.dataset),
            **self._started_settings(run_dir),
            **self._overrides,
        }
        self.values = values
        settings = parse_local_settings({**raw, "Values": values}, source="local stack")

        saved_environ = dict(os.environ)
        exit_stack.callback(_restore_environ, saved_environ)
        exit_stack.callback(bootstrap.reset)
        bootstrap.reset()
        self.optin_queue = values.get("OPTIN_QUEUE_NAME") or "optin-batches"
        self.suppression_queue = values.get("SUPPRESSION_QUEUE_NAME") or "suppression-batches"
        self.engagement_queue = values.get("ENGAGEMENT_QUEUE_NAME") or "engagement-batches"
        queue_options = {
            queue: QueueOptions(
                max_delivery_count=int(values.get(setting) or 10),
                lock_duration_s=self._lock_duration_s,
            )
            for queue, setting in ((self.optin_queue, "OPTIN_MAX_DELIVERY_COUNT"),
                                   (self.suppression_queue, "SUPPRESSION_MAX_DELIVERY_COUNT"),
                                   (self.engagement_queue, "ENGAGEMENT_MAX_DELIVERY_COUNT"))
        }
        self.host = DevHost(
            load_function_app("function_app", app_dir=ROOT),
            settings,
            host_config=self._host_config or load_host_config(ROOT / "host.json"),
            options=HostOptions(
                timers=self._timers,
                http=self._http,
                queues=self._queues,
                queue_options=queue_options,
            ),
            app_dir=ROOT,
        )
        self.dataverse = EmulatorAdmin(
            self.cluster.dataverse_server.base_url, self.cluster.ca_bundle
        )
        self.dotdigital = EmulatorAdmin(
            self.cluster.dotdigital_server.base_url, self.cluster.ca_bundle
        )
        exit_stack.callback(self.dataverse.close)
        exit_stack.callback(self.dotdigital.close)
        tables = TableServiceClient.from_connection_string(self.azurite.connection_string)
        self.journal = TableRunJournal(tables)
        self.state = TableSyncStateStore.from_settings(load_settings(values).state)
        exit_stack.enter_context(self.host)
        self.started_at = time.monotonic()

    def _started_settings(self, run_dir: Path) -> dict[str, str]:
        """The settings that point the app at what this stack started (ports are chosen freely)."""
        return emulator_settings(
            self.cluster.describe(), self.azurite.connection_string, run_dir / "queues"
        )

    # --- driving the app -------------------------------------------------------------------------
    def trigger_timer(self) -> Outcome:
        """Run one sync cycle now and wait for it (not for the batches it published)."""
        return self.host.trigger_timer(TIMER)

    def start_queues(self) -> None:
        """Start delivering queue messages (for a stack made with ``queues=False``)."""
        if not self._queues:
            self.host.dispatcher.start()
            self._queues = True

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        if not self.host.wait_idle(timeout_s=timeout_s):
            raise StackError(f"queues not idle after {timeout_s:g}s: {self.counters()}")

    def run_until_complete(self, timeout_s: float = 120.0) -> Completion:
        """Tick the timer until no schedule is due or running and the queues are idle.

        The reader is time-bounded, so a large backlog takes several ticks. A schedule that stays
        due (Sync Now outside its window is *not* due) or never returns to ``None`` within
        ``timeout_s`` raises ``StackError`` naming it.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        completion = Completion()
        while True:
            outcome = self.trigger_timer()
            completion.ticks += 1
            if not outcome.succeeded:
                completion.timer_failures.append(outcome.describe_error())
            self.wait_idle(max(deadline - time.monotonic(), 0.1))
            unfinished = self.unfinished_schedules()
            completion.seconds = time.monotonic() - started
            if not unfinished:
                return completion
            if time.monotonic() >= deadline:
                raise StackError(
                    f"sync not complete after {timeout_s:g}s "
                    f"({completion.ticks} ticks): {unfinished}; "
                    f"timer failures: {completion.timer_failures}"
                )

    def unfinished_schedules(self) -> list[str]:
        """Schedules that are due, running, or have a reader run to resume (why, each)."""
        now = _utcnow()
        dry_run = self.values.get("SYNC_DRY_RUN", "false").strip().lower() in ("true", "1", "yes")
        found = []
        for schedule in self.schedules():
            if schedule.sync_type not in KINDS:
                continue
            key = KINDS[schedule.sync_type].key(schedule.email_account_id, dry_run=dry_run)
            if schedule.status is not SyncStatus.NONE:
                found.append(f"{schedule.row_id}: status {schedule.status.name}")
            elif self.state.get_checkpoint(key, PageCursor) is not None:
                found.append(f"{schedule.row_id}: reader run to resume")
            elif is_due(schedule, now):
                found.append(f"{schedule.row_id}: due")
        return found

    # --- CRM data, as an administrator sees it ---------------------------------------------------
    def email_accounts(self) -> list[dict[str, Any]]:
        return self.dataverse.rows("ec_emailaccounts")

    def schedules(self, sync_type: SyncType | None = None) -> list[SyncSchedule]:
        parsed = (schedule_from_row(row) for row in self.dataverse.rows("ec_syncschedules"))
        return [
            s for s in parsed if s is not None and (sync_type is None or s.sync_type == sync_type)
        ]

    def edit_schedules(
        self,
        columns: Mapping[str, Any],
        *,
        sync_type: SyncType = SyncType.CONTACT_OPT_IN,
        email_accounts: list[str] | None = None,
    ) -> None:
        """Set ``columns`` on the schedule rows of ``sync_type`` (of every account, or those
        named by ``ec_emailaccountid``)."""
        chosen = [
            s.row_id
            for s in self.schedules(sync_type)
            if email_accounts is None or s.email_account_id in email_accounts
        ]
        self.dataverse.update_rows(
            "ec_syncschedules",
            dict.fromkeys(chosen, dict(columns)),
            primary_key="ec_syncscheduleid",
        )

    def request_sync_now(
        self,
        *,
        sync_type: SyncType = SyncType.CONTACT_OPT_IN,
        email_accounts: list[str] | None = None,
    ) -> None:
        """Tick Sync Now on the schedule rows, as an administrator does in CRM."""
        self.edit_schedules(
            {"ec_syncnow": True}, sync_type=sync_type, email_accounts=email_accounts
        )

    def values_of(self, entity_set: str) -> dict[str, int | None]:
        """``ec_optintype`` of every row of ``contacts``, ``leads`` or ``accounts``, by row id."""
        primary_key = PRIMARY_KEYS[entity_set]
        return {
            str(row[primary_key]): row.get("ec_optintype")
            for row in self.dataverse.rows(entity_set)
        }

    # --- what happened ---------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        return self.host.counters.snapshot()

    def dead_letters(self) -> list[StoredMessage]:
        """Both queues' dead letters, each with its reason: the broker's (every delivery used
        up), then those the app parked at once (failures no redelivery could heal)."""
        return [*(letter for queue in self.queues for letter in self.host.dead_letters(queue)),
                *self.parked_dead_letters()]

    def parked_dead_letters(self) -> list[StoredMessage]:
        """What the app moved to the queues' ``-deadletter`` queues, with its reasons."""
        return [letter for queue in self.queues
                for letter in parked_dead_letters(self.host.store, queue)]

    @property
    def queues(self) -> tuple[str, ...]:
        return (self.optin_queue, self.suppression_queue, self.engagement_queue)

    def seconds(self) -> float:
        return time.monotonic() - self.started_at

    def advertise(self, path: Path) -> None:
        """Write the running stack's settings to ``path`` until the stack stops, so that a tool
        in another terminal (``python -m ops``) finds it: the effective values (the emulators'
        free ports, their CA bundle, Azurite) and the queue directory. Only the owner may read
        it: it holds the emulators' and demo accounts' secrets."""
        payload = {
            "Values": self.values,
            "queue_dir": self.values.get("LOCAL_QUEUE_DIR") or str(self.run_dir / "queues"),
            "pid": os.getpid(),
            "started": _utcnow().isoformat(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        written = path.with_suffix(".tmp")
        descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(payload, file, indent=2)
        written.replace(path)  # a reader never sees half a file
        self._exit.callback(path.unlink, missing_ok=True)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _restore_environ(saved: dict[str, str]) -> None:
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)
