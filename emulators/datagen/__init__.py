"""Deterministic, realistic data sets for the emulators: ``generate_dataset``, ``secrets_for``."""

from emulators.datagen.dataset import generate_dataset, secrets_for

__all__ = ["generate_dataset", "secrets_for"]
