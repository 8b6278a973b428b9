"""The emulators, Azurite and the connector, each in its own process, for benchmarks and trials.

``ProcessStack`` generates a data set (``python -m emulators.datagen`` in a child process), starts
``python -m emulators serve`` and ``python -m devtools.azurite`` with ports files, writes the
connector's local settings, and starts or kills ``python -m bench.connector_process``. Keeping
each part in its own process means the connector's peak memory is its own, and a SIGKILL of the
connector leaves the emulators' and Azurite's state as a real crash would. A benchmark with data
of its own names a module (``seed_rewriter``) that rewrites the generated seed file, again in a
process of its own: a large data set then never sits in the benchmark's process.

The emulators' admin API (``/_emulator/...``) is reached over HTTPS with their CA bundle; it is
not counted in their request statistics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from devhost.local_queue import LocalQueueStore
from devtools.local_stack import emulator_settings
from shared.adapters.servicebus.message_codec import dead_letter_queue
from shared.adapters.storage.sync_state import DEFAULT_TABLE
from shared.domain.model import SyncStatus, SyncType

ROOT = Path(__file__).resolve().parents[1]
# The queue names of local.settings.sample.json, which the stack's settings keep.
OPTIN_QUEUE = "optin-batches"
SUPPRESSION_QUEUE = "suppression-batches"
ENGAGEMENT_QUEUE = "engagement-batches"
START_TIMEOUT_S = 180.0
# glibc allocator settings, set before the process starts (the deployed Function App sets them
# as app settings; see the README's deployment steps). With ten session threads glibc gives
# each its own arena and the resident size creeps up with the length of a run: two arenas keep
# it flat. A fixed mmap threshold keeps blocks of 64 KiB and more (response bodies, large lists)
# out of the heap, so freeing them returns the memory instead of leaving holes in the heap.
CONNECTOR_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536"}


class StackError(RuntimeError):
    """A part of the stack did not start, or answered the admin API with an error."""


@dataclass(frozen=True, slots=True)
class StackOptions:
    contacts: int
    accounts: int
    seed: int
    timer_schedule: str = "*/2 * * * * *"  # NCRONTAB with seconds: runs start within 2 s
    reader_max_s: int = 500  # below host.json's functionTimeout, so one tick reads a whole run
    extra_settings: Mapping[str, str] = field(default_factory=dict)
    activities_per_campaign: int | None = None  # the generator's default when None


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if path.exists():
            loaded: dict[str, Any] = json.loads(path.read_text())
            return loaded
        if process.poll() is not None:
            raise StackError(f"{what} exited with status {process.returncode} before starting")
        time.sleep(0.1)
    raise StackError(f"{what} did not write {path.name} within {START_TIMEOUT_S:.0f} s")


def _stop(process: subprocess.Popen[bytes] | None, timeout_s: float = 30.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def select_run_headers(rows: Iterable[dict[str, Any]],
                       sync_type: str | None = None) -> list[dict[str, Any]]:
    """The run headers among sync state rows (not their batch markers), of every sync or of the
    one whose state name is ``sync_type``."""
    return [row for row in rows
            if row["RowKey"].startswith("run|") and "|batch|" not in row["RowKey"]
            and (sync_type is None or row["PartitionKey"].endswith(f"|{sync_type}"))]


def runs_complete(stack: ProcessStack, store: LocalQueueStore, sync_type: SyncType, queue: str,
                  accounts: int) -> bool:
    """Every account's schedule of ``sync_type`` is back to None with a last result (its run
    completed: every batch applied) and ``queue`` has nothing left to deliver."""
    done = [row for row in stack.schedules(sync_type)
            if row.get("ec_status") == SyncStatus.NONE and not row.get("ec_syncnow")
            and row.get("ec_lastsync") and row.get("ec_lastresult")]
    return len(done) >= accounts and store.counts(queue).active == 0


def dead_lettered(store: LocalQueueStore, queue: str) -> int:
    """Messages of ``queue`` given up on: the broker's dead letters (deliveries exhausted) and
    those the app parked in the ``-deadletter`` queue (failures no redelivery could heal)."""
    return store.counts(queue).dead_lettered + store.counts(dead_letter_queue(queue)).active


class ProcessStack:
    """One data set on fresh emulators and Azurite; the connector is started and stopped apart."""

    # ``python -m MODULE --file SEED --made OUT`` rewrites the generated seed file in place and
    # writes what it made to OUT (read into ``made``); None keeps the generator's data set.
    seed_rewriter: str | None = None

    def __init__(self, work_dir: Path, options: StackOptions) -> None:
        self.work_dir = work_dir
        self.options = options
        self.queue_dir = work_dir / "queues"
        self.settings_path = work_dir / "local.settings.json"
        self.connector_report = work_dir / "connector.json"
        self._connector_ready = work_dir / "connector.ready"
        self._emulators: subprocess.Popen[bytes] | None = None
        self._azurite: subprocess.Popen[bytes] | None = None
        self.connector: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, Any] = {}
        self.storage = ""
        self.made: dict[str, Any] = {}
        self._http = requests.Session()

    # --- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> ProcessStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        seed_file, secrets_file = self.work_dir / "seed.json", self.work_dir / "secrets.json"
        opts = self.options
        activities = ([] if opts.activities_per_campaign is None
                      else ["--activities-per-campaign", str(opts.activities_per_campaign)])
        self._run([sys.executable, "-m", "emulators.datagen", "--contacts", str(opts.contacts),
                   "--accounts", str(opts.accounts), "--seed", str(opts.seed), *activities,
                   "--out", str(seed_file), "--secrets-out", str(secrets_file)])
        if self.seed_rewriter is not None:
            made = self.work_dir / "made.json"
            self._run([sys.executable, "-m", self.seed_rewriter, "--file", str(seed_file),
                       "--made", str(made), *self.seed_rewriter_arguments()])
            self.made = json.loads(made.read_text(encoding="utf-8"))
        emulator_ports = self.work_dir / "emulators.json"
        azurite_ports = self.work_dir / "azurite.json"
        for stale in (emulator_ports, azurite_ports):
            stale.unlink(missing_ok=True)  # a file left by an earlier run is no sign of life
        self._emulators = self._spawn(
            [sys.executable, "-m", "emulators", "serve", "--seed", str(seed_file),
             "--ports-file", str(emulator_ports),
             "--state-dir", str(self.work_dir / "emulator-state")],
            "emulators.log")
        self._azurite = self._spawn(
            [sys.executable, "-m", "devtools.azurite", "--ports-file", str(azurite_ports)],
            "azurite.log")
        self.ports = _wait_for_file(emulator_ports, self._emulators, "the emulators")
        azurite = _wait_for_file(azurite_ports, self._azurite, "Azurite")
        self.storage = str(azurite["connection_string"])
        self._write_settings(json.loads(secrets_file.read_text()))
        seed_file.unlink()  # large, and everything in it is now in the emulators

    def seed_rewriter_arguments(self) -> list[str]:
        """The ``seed_rewriter``'s options besides ``--file`` and ``--made``."""
        return []

    def stop(self) -> None:
        _stop(self.connector)
        _stop(self._azurite)
        _stop(self._emulators)

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
        if done.returncode != 0:
            raise StackError(f"{command[2]} failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def _spawn(
        self, command: list[str], log_name: str, environment: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.work_dir / log_name).open("ab") as log:
            return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    env=None if environment is None else dict(environment))

    def _write_settings(self, secrets: Mapping[str, str]) -> None:
        sample = json.loads((ROOT / "local.settings.sample.json").read_text())
        values = {
            **sample["Values"], **secrets,
            **emulator_settings(self.ports, self.storage, self.queue_dir),
            "SYNC_TIMER_SCHEDULE": self.options.timer_schedule,
            "SYNC_READER_MAX_SECONDS": str(self.options.reader_max_s),
            **self.options.extra_settings,
        }
        self.settings_path.write_text(json.dumps({**sample, "Values": values}, indent=2))

    # --- the connector ----------------------------------------------------------------------------
    def start_connector(
        self, *, lock_duration_s: float | None = None, memory_samples: Path | None = None
    ) -> subprocess.Popen[bytes]:
        if self.connector is not None and self.connector.poll() is None:
            raise StackError("the connector is already running")
        self.connector_report.unlink(missing_ok=True)
        self._connector_ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", "bench.connector_process",
                   "--settings", str(self.settings_path), "--report", str(self.connector_report),
                   "--ready", str(self._connector_ready)]
        if lock_duration_s is not None:
            command += ["--lock-duration", str(lock_duration_s)]
        if memory_samples is not None:
            command += ["--memory-samples", str(memory_samples)]
        self.connector = self._spawn(command, "connector.log",
                                     environment={**os.environ, **CONNECTOR_ENVIRONMENT})
        return self.connector

    def stop_connector(self) -> dict[str, Any]:
        """SIGTERM, wait, and return what the connector reported about itself at exit."""
        # A SIGTERM before its handlers are installed would end it without a report.
        deadline = time.monotonic() + START_TIMEOUT_S
        while (self.connector is not None and self.connector.poll() is None
               and not self._connector_ready.exists() and time.monotonic() < deadline):
            time.sleep(0.02)
        _stop(self.connector, timeout_s=120.0)
        if not self.connector_report.exists():
            code = None if self.connector is None else self.connector.returncode
            raise StackError(f"the connector exited (status {code}) without its report;"
                             f" see {self.work_dir / 'connector.log'}")
        report: dict[str, Any] = json.loads(self.connector_report.read_text())
        return report

    def kill_connector(self) -> None:
        if self.connector is not None and self.connector.poll() is None:
            os.kill(self.connector.pid, signal.SIGKILL)
            self.connector.wait()

    # --- admin API --------------------------------------------------------------------------------
    def admin(self, system: str, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.ports[system]['base_url']}/_emulator/{path}"
        response = self._http.request(method, url, json=body, verify=self.ports["ca_bundle"],
                                      timeout=120)
        if response.status_code >= 400:
            raise StackError(f"{method} {path} on {system}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def rows(self, table: str) -> list[dict[str, Any]]:
        state = self.admin("dataverse", "GET", f"state?table={table}")
        tables = state.get("tables", state)
        rows: list[dict[str, Any]] = tables.get(table, [])
        return rows

    def schedules(self, sync_type: SyncType) -> list[dict[str, Any]]:
        """The ``ec_syncschedules`` rows of one sync type."""
        return [row for row in self.rows("ec_syncschedules")
                if row.get("ec_synctype") == sync_type]

    def state_rows(self) -> list[dict[str, Any]]:
        """Every row of the sync state table (watermarks, cursors, run headers, batch markers)."""
        table = TableClient.from_connection_string(self.storage, DEFAULT_TABLE)
        try:
            return [dict(entity) for entity in table.list_entities()]
        except ResourceNotFoundError:
            return []  # killed before the connector's first state write created the table
        finally:
            table.close()

    def run_headers(self, sync_type: str | None = None) -> list[dict[str, Any]]:
        """The runs' header rows, of every sync or of the one named ``sync_type`` in the state
        store (``SyncType.label``)."""
        return select_run_headers(self.state_rows(), sync_type)

    def request_sync_now(self, sync_type: SyncType = SyncType.CONTACT_OPT_IN) -> int:
        """Sync Now on every schedule of ``sync_type`` (ContactOptIn by default), as a CRM user
        would set it (a user token)."""
        return self.edit_schedules({"ec_syncnow": True}, sync_type)

    def edit_schedules(self, values: Mapping[str, Any], sync_type: SyncType) -> int:
        """Write ``values`` on every schedule of ``sync_type`` through the Web API, as a CRM user
        (a user token); returns how many rows were written."""
        dataverse = self.ports["dataverse"]
        user = self.ports["entra"]["users"][0]["oid"]
        minted = self.admin("entra", "POST", "token", {
            "audience": dataverse["base_url"], "user": user, "lifetime_seconds": 3600})
        headers = {"Authorization": f"Bearer {minted['access_token']}",
                   "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
        schedules = self.schedules(sync_type)
        for row in schedules:
            response = self._http.patch(
                f"{dataverse['api_url']}ec_syncschedules({row['ec_syncscheduleid']})",
                json=dict(values), headers={**headers, "If-Match": "*"},
                verify=self.ports["ca_bundle"], timeout=60)
            if response.status_code >= 400:
                raise StackError(f"editing a schedule: {response.status_code} {response.text}")
        return len(schedules)
