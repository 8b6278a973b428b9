"""The tool's own failures, each with the exit code it ends the command with."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # refused (a destructive or impossible change) or an error while applying
EXIT_BAD_INPUT = 2  # arguments, settings, the schema file, the URL or the credentials


class InputError(Exception):
    """What the operator gave cannot work: fix the input and run again."""

    exit_code = EXIT_BAD_INPUT


class ProvisioningFailed(Exception):
    """The environment refused or failed a request the plan needed."""

    exit_code = EXIT_FAILED
