"""Command line: ``python -m emulators serve [--ports-file F] [--seed FILE] [--state-dir DIR]``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from emulators.cluster import SYSTEMS, EmulatorCluster

PERSISTED_STATE_FILE = "emulator-state.json"


def _parse_ports(values: list[str]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for value in values:
        name, _, port = value.partition("=")
        if name not in SYSTEMS or not port.isdigit():
            raise SystemExit(f"--port expects SYSTEM=PORT with SYSTEM one of {', '.join(SYSTEMS)}")
        ports[name] = int(port)
    return ports


def serve(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    cluster = EmulatorCluster(state_dir, ports=_parse_ports(args.port), fault_seed=args.fault_seed)
    persisted = state_dir / PERSISTED_STATE_FILE
    if args.persist and persisted.exists():
        cluster.seed(json.loads(persisted.read_text()))
    if args.seed:
        loaded = cluster.seed(json.loads(Path(args.seed).read_text()))
        print(f"seeded: {json.dumps(loaded)}", flush=True)
    cluster.start()
    if args.ports_file:
        cluster.write_ports_file(Path(args.ports_file))
    print(json.dumps(cluster.describe(), indent=2), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    if args.persist:
        persisted.write_text(json.dumps(cluster.export_state()))
    cluster.stop()
    print("emulators stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="start Entra ID, Dataverse and dotdigital emulators")
    run.add_argument("--ports-file", help="write base URLs and the CA bundle path here (JSON)")
    run.add_argument("--seed", help="JSON file: {entra: ..., dataverse: ..., dotdigital: ...}")
    run.add_argument(
        "--state-dir", default=".emulators", help="keeps the local CA (default .emulators)"
    )
    run.add_argument(
        "--persist",
        action="store_true",
        help="save data in --state-dir on exit and load it on start",
    )
    run.add_argument(
        "--port", action="append", default=[], metavar="SYSTEM=PORT", help="fixed port for a system"
    )
    run.add_argument(
        "--fault-seed", type=int, default=0, help="seed of the fault injectors' random source"
    )
    args = parser.parse_args(argv)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
