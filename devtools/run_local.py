"""``make run``: the connector on the local emulators, Azurite and the dev host.

Starts the emulators (seeded with a demo organisation), Azurite and the dev host running this
repo's ``function_app.py``, and shows what the app does until interrupted. With ``--once`` it
runs one cycle of every sync for every email account, waits until the queues are empty, prints
a summary table, writes it to ``.run/report.json`` and exits non-zero when anything failed or
was dead-lettered.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from azure.data.tables import TableServiceClient

from devhost.app_index import load_function_app
from devhost.host import DevHost, HostOptions
from devhost.host_config import load_host_config
from devhost.local_settings import parse_local_settings
from devtools.azurite import start_azurite
from emulators.cluster import EmulatorCluster
from emulators.datagen import generate_dataset, secrets_for
from shared.adapters.table_runs import TableRunJournal

logger = logging.getLogger("run")
ROOT = Path(__file__).resolve().parents[1]
TIMER = "SyncTimer"


def emulator_settings(cluster: EmulatorCluster, storage: str, run_dir: Path) -> dict[str, str]:
    """The settings that point the app at what this run started (ports are chosen freely)."""
    described = cluster.describe()
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
        "AzureWebJobsStorage": storage,
        "LOCAL_QUEUE_DIR": str(run_dir / "queues"),
    }


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def build_report(
    host: DevHost, cluster: EmulatorCluster, journal: TableRunJournal, seconds: float
) -> dict[str, Any]:
    runs = journal.runs("connectivity")
    latest = runs[-1] if runs else {"ok": False, "accounts": []}
    counters = host.counters.snapshot()
    requests = {name: server.stats.snapshot() for name, server in cluster.servers.items()}
    return {
        "ok": bool(latest.get("ok"))
        and counters["failures"] == 0
        and counters["dead_lettered"] == 0,
        "seconds": round(seconds, 2),
        "connectivity": latest,
        "functions": counters,
        "requests": {
            name: {"requests": s["requests"], "throttled": s["throttled"]}
            for name, s in requests.items()
        },
    }


def print_report(report: dict[str, Any]) -> None:
    accounts = report["connectivity"].get("accounts", [])
    print()
    print(
        _table(
            ["email account", "dotdigital id", "region endpoint", "schedules", "status"],
            [
                [
                    str(a["email_account"]),
                    str(a["dotdigital_account_id"]),
                    str(a.get("api_endpoint") or "-"),
                    "; ".join(a["schedules"]) or "none",
                    "ok" if not a.get("error") else f"FAILED: {a['error']}",
                ]
                for a in accounts
            ],
        )
    )
    functions = report["functions"]
    print()
    print(
        _table(
            [
                "invocations",
                "failures",
                "dead-lettered",
                "dataverse requests",
                "dotdigital requests",
                "throttled",
                "seconds",
            ],
            [
                [
                    str(functions["invocations"]),
                    str(functions["failures"]),
                    str(functions["dead_lettered"]),
                    str(report["requests"]["dataverse"]["requests"]),
                    str(report["requests"]["dotdigital"]["requests"]),
                    str(sum(r["throttled"] for r in report["requests"].values())),
                    str(report["seconds"]),
                ]
            ],
        )
    )
    print()
    print("result:", "OK" if report["ok"] else "FAILED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.run_local", description=__doc__)
    parser.add_argument("--settings", default="local.settings.json")
    parser.add_argument("--once", action="store_true", help="one cycle, a report, then exit")
    parser.add_argument("--contacts", type=int, default=3000, help="demo contacts per account")
    parser.add_argument("--run-dir", default=".run")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)-10s %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("azure", "urllib3", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    run_dir = ROOT / args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    raw = json.loads((ROOT / args.settings).read_text())
    started = time.monotonic()
    with (
        EmulatorCluster(ROOT / ".emulators") as cluster,
        start_azurite(run_dir / "azurite") as azurite,
    ):
        dataset = generate_dataset(contacts=args.contacts, accounts=2, seed=7)
        loaded = cluster.seed(dataset)
        logger.info("emulators up, demo organisation seeded: %s", json.dumps(loaded))
        values = {**raw.get("Values", {}), **secrets_for(dataset)}
        values.update(emulator_settings(cluster, azurite.connection_string, run_dir))
        settings = parse_local_settings({**raw, "Values": values}, source=args.settings)
        host = DevHost(
            load_function_app("function_app", app_dir=ROOT),
            settings,
            host_config=load_host_config(ROOT / "host.json"),
            options=HostOptions(timers=not args.once, http=not args.once),
            app_dir=ROOT,
        )
        journal = TableRunJournal(
            TableServiceClient.from_connection_string(azurite.connection_string)
        )
        with host:
            logger.info("triggering %s now (then on its schedule)", TIMER)
            host.trigger_timer(TIMER)
            host.wait_idle(timeout_s=600)
            if args.once:
                report = build_report(host, cluster, journal, time.monotonic() - started)
                (run_dir / "report.json").write_text(json.dumps(report, indent=2))
                print_report(report)
                return 0 if report["ok"] else 1
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            logger.info("running until Ctrl-C")
            stop.wait()
            logger.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
