"""Entra ID emulator (skeleton: to be completed)."""

from __future__ import annotations

from emulators.http import Emulator


class EntraEmulator(Emulator):
    name = "entra"
