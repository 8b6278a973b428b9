"""End-to-end tests: the app in the dev host, against the emulators over HTTPS and Azurite.

Each test (or module) starts its own ``LocalStack``; settings keep retries and locks short so
faults and redeliveries cost little time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devtools.local_stack import LocalStack

FAST = {
    "HTTP_TIMEOUT_SECONDS": "10",
    "RETRY_MAX_WAIT_SECONDS": "2",  # the emulators' shortest Retry-After is 1 s
    "SYNC_READER_MAX_SECONDS": "30",
}


def stack_for(dataset: Mapping[str, Any], *, queues: bool = True, **settings: str) -> LocalStack:
    """A stack on ``dataset`` with the fast settings plus ``settings``."""
    return LocalStack(dataset=dataset, settings={**FAST, **settings}, lock_duration_s=5.0,
                      queues=queues)
