"""``python -m emulators serve``: ports file, seed, state directory, persistence, clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def _serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    ports_file = tmp_path / "ports.json"
    ports_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators",
            "serve",
            "--ports-file",
            str(ports_file),
            "--state-dir",
            str(tmp_path / "state"),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for _ in range(300):
        if ports_file.exists():
            return process, json.loads(ports_file.read_text())
        if process.poll() is not None:
            raise AssertionError(process.stdout.read() if process.stdout else "exited")
        time.sleep(0.05)
    process.kill()
    raise AssertionError("no ports file")


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


def test_serve_writes_ports_loads_seed_and_stops_on_interrupt(tmp_path: Path) -> None:
    seed = {
        "dotdigital": {
            "accounts": [
                {
                    "id": 3001,
                    "apiUser": "apiuser-cli@apiconnector.com",
                    "password": "Passw0rd!cli",
                    "region": "r3",
                    "name": "CLI",
                }
            ]
        }
    }
    (tmp_path / "seed.json").write_text(json.dumps(seed))
    process, ports = _serve(tmp_path, "--seed", str(tmp_path / "seed.json"))
    try:
        ca_bundle = str(ports["ca_bundle"])
        assert Path(ca_bundle).exists() and ca_bundle.startswith(str(tmp_path / "state"))
        dotdigital = ports["dotdigital"]
        assert isinstance(dotdigital, dict)
        info = requests.get(
            str(dotdigital["account_info_url"]),
            auth=("apiuser-cli@apiconnector.com", "Passw0rd!cli"),
            verify=ca_bundle,
            timeout=10,
        )
        assert info.status_code == 200
        endpoint = {p["name"]: p["value"] for p in info.json()["properties"]}["ApiEndpoint"]
        assert endpoint.endswith("/r3/")
        for system in ("entra", "dataverse"):
            described = ports[system]
            assert isinstance(described, dict)
            stats = requests.get(
                f"{described['base_url']}/_emulator/stats", verify=ca_bundle, timeout=10
            )
            assert stats.status_code == 200
    finally:
        output = _stop(process)
    assert "emulators stopped" in output


def test_the_ca_is_kept_and_data_persists_across_restarts(tmp_path: Path) -> None:
    process, ports = _serve(tmp_path, "--persist")
    ca_first = Path(str(ports["ca_bundle"])).read_text()
    dataverse = ports["dataverse"]
    assert isinstance(dataverse, dict)
    seeded = requests.post(
        f"{dataverse['base_url']}/_emulator/seed",
        json={
            "tables": {
                "contacts": [
                    {
                        "contactid": "00000000-0000-0000-0000-00000000c0de",
                        "lastname": "Kept",
                        "emailaddress1": "kept@example.com",
                    }
                ]
            }
        },
        verify=str(ports["ca_bundle"]),
        timeout=10,
    )
    assert seeded.status_code == 200
    _stop(process)
    process, ports = _serve(tmp_path, "--persist")
    try:
        assert Path(str(ports["ca_bundle"])).read_text() == ca_first
        dataverse = ports["dataverse"]
        assert isinstance(dataverse, dict)
        state = requests.get(
            f"{dataverse['base_url']}/_emulator/state",
            params={"table": "contacts"},
            verify=str(ports["ca_bundle"]),
            timeout=10,
        ).json()
        assert "kept@example.com" in json.dumps(state)
    finally:
        _stop(process)


def test_a_bad_port_argument_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulators",
            "serve",
            "--port",
            "nosuch=1",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "--port expects SYSTEM=PORT" in result.stderr + result.stdout
