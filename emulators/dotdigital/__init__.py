from emulators.dotdigital.emulator import DotdigitalEmulator

__all__ = ["DotdigitalEmulator"]
