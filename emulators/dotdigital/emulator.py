"""dotdigital API emulator (skeleton: to be completed)."""

from __future__ import annotations

from emulators.http import Emulator


class DotdigitalEmulator(Emulator):
    name = "dotdigital"
