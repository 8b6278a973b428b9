"""How much a Dataverse emulator request costs on this machine, with the cost model off.

Benchmarks of the connector count on the emulator's own overhead being small next to the
modelled costs. This prints one JSON object:

- ``simple_get_per_second``: ``GET contacts(<id>)?$select=fullname`` over one keep-alive session;
- ``email_lookup_per_second``: ``$filter=emailaddress1 eq '...'`` among ``--rows`` contacts;
- ``update_multiple_1000_seconds``: one ``UpdateMultiple`` of 1000 contacts (median of runs).

Usage: ``python -m bench.emulator_overhead [--rows 200000] [--seconds 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from emulators.cluster import EmulatorCluster
from emulators.dataverse.protection import ProtectionLimits

CONTACT = "Microsoft.Dynamics.CRM.contact"


def _session(cluster: EmulatorCluster) -> requests.Session:
    minted = requests.post(
        f"{cluster.entra_server.base_url}/_emulator/token",
        json={"audience": cluster.dataverse.base_url, "user": _first_user(cluster),
              "lifetime_seconds": 86_400},
        verify=cluster.ca_bundle, timeout=30,
    )
    minted.raise_for_status()
    session = requests.Session()
    session.headers.update({
        "Authorization": f"Bearer {minted.json()['access_token']}",
        "Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0",
    })
    return session


def _first_user(cluster: EmulatorCluster) -> str:
    return str(cluster.entra.describe()["users"][0]["oid"])


def _rate(session: requests.Session, url: str, seconds: float, ca_bundle: str) -> float:
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        # REQUESTS_CA_BUNDLE would override Session.verify: pass it on every call.
        response = session.get(url, verify=ca_bundle, timeout=30)
        response.raise_for_status()
        done += 1
    return done / (time.perf_counter() - started)


def measure(rows: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state_dir, EmulatorCluster(Path(state_dir)) as cluster:
        keys = [str(uuid.UUID(int=i + 1)) for i in range(rows)]
        started = time.perf_counter()
        cluster.seed({"dataverse": {"tables": {"contacts": [
            {"contactid": key, "firstname": "Bench", "lastname": f"Contact {i}",
             "emailaddress1": f"bench.{i}@example.com"}
            for i, key in enumerate(keys)
        ]}}})
        seed_seconds = time.perf_counter() - started
        # No limits in the way: this measures the emulator, not the modelled service.
        cluster.dataverse.protection.configure(
            ProtectionLimits(requests=10**9, execution_ms=1e12)
        )
        session = _session(cluster)
        api = cluster.dataverse.api.api_url
        ca = cluster.ca_bundle
        gets = _rate(session, f"{api}contacts({keys[rows // 2]})?$select=fullname", seconds, ca)
        email = f"BENCH.{rows - 1}%40example.com"
        lookups = _rate(
            session, f"{api}contacts?$select=fullname&$filter=emailaddress1%20eq%20'{email}'",
            seconds, ca,
        )
        durations = []
        for run in range(5):
            body = {"Targets": [
                {"@odata.type": CONTACT, "contactid": key, "donotbulkemail": run % 2 == 0}
                for key in keys[:1000]
            ]}
            started = time.perf_counter()
            response = session.post(
                f"{api}contacts/Microsoft.Dynamics.CRM.UpdateMultiple", json=body, timeout=60,
                verify=ca,
            )
            durations.append(time.perf_counter() - started)
            response.raise_for_status()
        return {
            "rows": rows,
            "seed_seconds": round(seed_seconds, 2),
            "simple_get_per_second": round(gets, 1),
            "email_lookup_per_second": round(lookups, 1),
            "update_multiple_1000_seconds": round(statistics.median(durations), 4),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="contacts to seed (>= 1000)")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each GET loop")
    args = parser.parse_args()
    print(json.dumps(measure(max(args.rows, 1000), args.seconds), indent=2))


if __name__ == "__main__":
    main()
