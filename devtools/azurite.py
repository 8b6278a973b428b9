"""Start Azurite's Table service on a free port, for tests and local scripts.

Flags, and why:

- ``--inMemoryPersistence``: test and demo state is throw-away, and nothing is written to disk, so
  parallel runs never share a database file. (``--location`` is refused together with it, so the
  process just runs in ``workdir``, which also receives its debug log when asked for.)
- ``--skipApiVersionCheck``: ``azure-data-tables`` may send a newer ``x-ms-version`` than the pinned
  Azurite knows; the Table API has not changed in ways we use.
- no ``--loose``: loose mode silently ignores headers Azurite does not implement. We would rather
  see an error than have, say, a conditional header dropped and a concurrency test pass by luck.
- ``--disableTelemetry``: tests make no outbound calls.

Azurite cannot be asked for port 0 (it would not report the port it got), so a free port is chosen
by binding to port 0 first; if another process takes it before Azurite binds, Azurite exits with
``EADDRINUSE`` and we try another port.

CLI for scripts (``make run``)::

    python -m devtools.azurite --ports-file .run/azurite.json

writes ``{"table_port": ..., "table_endpoint": ..., "connection_string": ...}`` once Azurite is
accepting connections and keeps it running until interrupted (SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_NAME = "devstoreaccount1"
# The well-known development account key every Azure Storage emulator accepts; not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_HOST = "127.0.0.1"
_PORT_ATTEMPTS = 5


class AzuriteError(RuntimeError):
    """Azurite is not installed, exited, or did not start accepting connections in time."""


@dataclass
class AzuriteHandle:
    """A running Azurite Table service; ``stop()`` ends it (idempotent)."""

    table_port: int
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path

    @property
    def table_endpoint(self) -> str:
        return f"http://{_HOST}:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint={self.table_endpoint};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> AzuriteHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def azurite_table_binary(root: Path = REPO_ROOT) -> Path:
    binary = root / "node_modules" / ".bin" / "azurite-table"
    if not binary.exists():
        raise AzuriteError(f"{binary} not found: run `npm ci` in the repository root first")
    return binary


def start_azurite(
    workdir: Path, *, repo_root: Path = REPO_ROOT, startup_timeout_s: float = 30.0
) -> AzuriteHandle:
    """Start ``azurite-table`` on a free loopback port and return once it accepts connections."""
    binary = azurite_table_binary(repo_root)
    workdir.mkdir(parents=True, exist_ok=True)
    last_error = "no attempt made"
    for _ in range(_PORT_ATTEMPTS):
        port = _free_port()
        log_path = workdir / f"azurite-table-{port}.log"
        handle = _launch(binary, workdir, port, log_path)
        outcome = _wait_until_accepting(handle, startup_timeout_s)
        if outcome is None:
            return handle
        handle.stop()
        last_error = outcome
        if "EADDRINUSE" not in outcome:  # anything but a lost port race is final
            break
    raise AzuriteError(f"Azurite did not start: {last_error}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _launch(binary: Path, workdir: Path, port: int, log_path: Path) -> AzuriteHandle:
    command = [
        str(binary), "--tableHost", _HOST, "--tablePort", str(port), "--inMemoryPersistence",
        "--skipApiVersionCheck", "--disableTelemetry", "--silent",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    return AzuriteHandle(table_port=port, process=process, log_path=log_path)


def _wait_until_accepting(handle: AzuriteHandle, timeout_s: float) -> str | None:
    """None once the port accepts connections; otherwise why it never will."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            return f"exited with {handle.process.returncode}: {_tail(handle.log_path)}"
        try:
            with socket.create_connection((_HOST, handle.table_port), timeout=0.5):
                return None
        except OSError:
            time.sleep(0.05)
    return f"not accepting connections after {timeout_s:g}s: {_tail(handle.log_path)}"


def _tail(path: Path, limit: int = 500) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Azurite's Table service on a free port.")
    parser.add_argument("--ports-file", type=Path, required=True,
                        help="JSON file to write the port and connection string to")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="directory for Azurite's log (default: a temporary directory)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="azurite-"))
    handle = start_azurite(workdir)
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        args.ports_file.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename so a reader polling for the file never sees half of it.
        partial = args.ports_file.with_suffix(args.ports_file.suffix + ".partial")
        partial.write_text(json.dumps({
            "table_port": handle.table_port,
            "table_endpoint": handle.table_endpoint,
            "connection_string": handle.connection_string,
            "pid": os.getpid(),
        }, indent=2))
        partial.replace(args.ports_file)
        print(f"Azurite tables at {handle.table_endpoint}", flush=True)
        while not stopping and handle.process.poll() is None:
            time.sleep(0.2)
        if handle.process.poll() is not None and not stopping:
            print(f"Azurite exited: {_tail(handle.log_path)}", file=sys.stderr)
            return 1
        return 0
    finally:
        handle.stop()
        args.ports_file.unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
