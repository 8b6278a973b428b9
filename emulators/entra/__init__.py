from emulators.entra.emulator import EntraEmulator
from emulators.entra.errors import InvalidToken

__all__ = ["EntraEmulator", "InvalidToken"]
