from emulators.entra.emulator import EntraEmulator

__all__ = ["EntraEmulator"]
