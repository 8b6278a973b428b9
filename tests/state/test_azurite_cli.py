"""``python -m devtools.azurite`` as scripts use it: ports file while running, gone after."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from devtools.azurite import AzuriteError, start_azurite

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for(path: Path, process: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not path.exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        assert time.monotonic() < deadline, "Azurite's ports file never appeared"
        time.sleep(0.05)


def test_the_cli_writes_a_ports_file_serves_tables_and_cleans_up(tmp_path: Path) -> None:
    ports_file = tmp_path / "run" / "azurite.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.azurite", "--ports-file", str(ports_file),
         "--workdir", str(tmp_path / "work")],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_for(ports_file, process)
        info = json.loads(ports_file.read_text())
        service = TableServiceClient.from_connection_string(info["connection_string"])
        service.create_table("clicheck")
        assert "clicheck" in {t.name for t in service.list_tables()}
        assert info["table_endpoint"].endswith(f":{info['table_port']}/devstoreaccount1")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        if process.stderr:
            process.stderr.close()
    assert not ports_file.exists()


def test_a_missing_installation_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(AzuriteError, match="npm ci"):
        start_azurite(tmp_path / "work", repo_root=tmp_path)
