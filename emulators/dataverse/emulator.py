"""Dataverse Web API emulator (skeleton: to be completed)."""

from __future__ import annotations

from emulators.clock import Clock
from emulators.entra import EntraEmulator
from emulators.http import Emulator


class DataverseEmulator(Emulator):
    name = "dataverse"

    def __init__(self, clock: Clock, entra: EntraEmulator) -> None:
        super().__init__(clock)
        self.entra = entra
