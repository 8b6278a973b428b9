from emulators.dataverse.emulator import DataverseEmulator

__all__ = ["DataverseEmulator"]
