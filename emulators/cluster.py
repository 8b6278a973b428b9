"""Start the three emulators together, as pytest fixtures and the CLI do.

Entra ID starts first: Dataverse checks bearer tokens against it in-process (signature, audience,
expiry), the way the real service trusts the real Entra ID. All three share one clock and one CA.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

from emulators.clock import Clock
from emulators.dataverse import DataverseEmulator
from emulators.dotdigital import DotdigitalEmulator
from emulators.entra import EntraEmulator
from emulators.http import EmulatorServer
from emulators.tls import ensure_tls

SYSTEMS = ("entra", "dataverse", "dotdigital")


class EmulatorCluster:
    def __init__(
        self,
        state_dir: Path,
        *,
        ports: dict[str, int] | None = None,
        fault_seed: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        ports = ports or {}
        unknown = set(ports) - set(SYSTEMS)
        if unknown:
            raise ValueError(f"unknown systems in ports: {sorted(unknown)}")
        self.state_dir = Path(state_dir)
        self.clock = Clock()
        self.tls = ensure_tls(self.state_dir)
        self.entra = EntraEmulator(self.clock)
        self.entra_server = EmulatorServer(
            self.entra, self.tls, host=host, port=ports.get("entra", 0), fault_seed=fault_seed
        )
        self.dataverse = DataverseEmulator(self.clock, self.entra)
        self.dataverse_server = EmulatorServer(
            self.dataverse,
            self.tls,
            host=host,
            port=ports.get("dataverse", 0),
            fault_seed=fault_seed,
        )
        self.dotdigital = DotdigitalEmulator(self.clock)
        self.dotdigital_server = EmulatorServer(
            self.dotdigital,
            self.tls,
            host=host,
            port=ports.get("dotdigital", 0),
            fault_seed=fault_seed,
        )
        self._started = False

    @property
    def servers(self) -> dict[str, EmulatorServer]:
        return {
            "entra": self.entra_server,
            "dataverse": self.dataverse_server,
            "dotdigital": self.dotdigital_server,
        }

    @property
    def ca_bundle(self) -> str:
        return str(self.tls.ca_bundle)

    def start(self) -> EmulatorCluster:
        for server in self.servers.values():
            server.start()
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            for server in self.servers.values():
                server.stop()
            self._started = False

    def seed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Seed several systems at once: ``{"entra": ..., "dataverse": ..., "dotdigital": ...}``."""
        unknown = set(payload) - set(SYSTEMS)
        if unknown:
            raise ValueError(f"unknown systems in seed: {sorted(unknown)}")
        loaded: dict[str, Any] = {}
        for name, server in self.servers.items():
            if name in payload:
                with server.emulator.lock:
                    loaded[name] = server.emulator.seed(payload[name])
        return loaded

    def export_state(self) -> dict[str, Any]:
        exported: dict[str, Any] = {}
        for name, server in self.servers.items():
            with server.emulator.lock:
                exported[name] = server.emulator.export_state()
        return exported

    def reset(self) -> None:
        for server in self.servers.values():
            with server.emulator.lock:
                server.emulator.reset()
            server.stats.reset()
            server.faults.clear()
        self.clock.configure({"offset_seconds": 0})

    def describe(self) -> dict[str, Any]:
        """What the ports file holds: base URLs of each system and the CA bundle to trust."""
        return {
            "ca_bundle": self.ca_bundle,
            "entra": self.entra.describe(),
            "dataverse": self.dataverse.describe(),
            "dotdigital": self.dotdigital.describe(),
        }

    def write_ports_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.describe(), indent=2))
        tmp.replace(path)  # readers never see half a file

    def __enter__(self) -> EmulatorCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
