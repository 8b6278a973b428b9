"""What the services report to monitoring, and the dimensions of the work in hand.

The entrypoints and services open a scope (``run_scope``) for a timer tick, each account's run
step and each queue delivery. Everything logged, counted or traced inside it carries that work's
dimensions: run id, email account id, sync type, queue and dry run. They are ids and fixed names
only, never an address, a person's name or a token, so they can leave the app as they are; keep
it so when adding one.

Which ``Telemetry`` a process uses is decided once, by the composition root (``install``); until
then, and whenever Application Insights is not configured, it is one that does nothing, so the
services never know whether monitoring is on.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, fields
from typing import Protocol

from shared.domain.commands import BatchRef
from shared.domain.model import SyncType


@dataclass(frozen=True, slots=True)
class Dimensions:
    """Whose work this is; a field left None is not known here."""

    run_id: str | None = None
    email_account_id: str | None = None  # the CRM row id of the email account, not its name
    sync_type: str | None = None  # ``SyncType.label``: ContactOptIn, SuppressionLists, ...
    queue: str | None = None
    dry_run: bool | None = None

    def attributes(self) -> dict[str, str]:
        """The known dimensions as strings, for log records, metrics and spans."""
        found: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None:
                found[item.name] = str(value).lower() if isinstance(value, bool) else value
        return found


class Telemetry(Protocol):
    """Where the services' measurements go (Application Insights, or nowhere)."""

    def span(self, name: str, dimensions: Dimensions) -> AbstractContextManager[object]:
        """A span around a piece of work (the cycle, a run step, a delivery)."""
        ...

    def records(self, dimensions: Dimensions, *, read: int, changed: int, failed: int) -> None:
        """A batch's items were counted in its run (once per batch, redeliveries apart)."""
        ...

    def run_completed(self, dimensions: Dimensions, *, duration_s: float) -> None:
        """A run's last batch was counted: from its start to now."""
        ...

    def dead_lettered(self, dimensions: Dimensions, *, reason: str) -> None:
        """A message went (or is about to go) to the dead letters; ``reason`` is an error class."""
        ...

    def requests(self, dimensions: Dimensions, *, system: str, sent: int, throttled: int) -> None:
        """Requests sent to ``system`` (dataverse, dotdigital) and how many were refused (429)."""
        ...


class NoTelemetry:
    """Monitoring off: every call returns at once."""

    def span(self, name: str, dimensions: Dimensions) -> AbstractContextManager[object]:
        return nullcontext()

    def records(self, dimensions: Dimensions, *, read: int, changed: int, failed: int) -> None:
        return None

    def run_completed(self, dimensions: Dimensions, *, duration_s: float) -> None:
        return None

    def dead_lettered(self, dimensions: Dimensions, *, reason: str) -> None:
        return None

    def requests(self, dimensions: Dimensions, *, system: str, sent: int, throttled: int) -> None:
        return None


_installed: Telemetry = NoTelemetry()
_OUTSIDE = Dimensions()  # frozen: safe to share as the default
# Each thread sees its own value, and every scope restores the one before it on exit, so
# invocations running side by side never see each other's dimensions.
_current: contextvars.ContextVar[Dimensions] = contextvars.ContextVar(
    "connector_dimensions", default=_OUTSIDE)


def install(chosen: Telemetry | None) -> None:
    """The process's telemetry from now on (None: nothing again)."""
    global _installed
    _installed = chosen if chosen is not None else NoTelemetry()


def telemetry() -> Telemetry:
    return _installed


def current() -> Dimensions:
    """The dimensions of the innermost open scope (all None outside any)."""
    return _current.get()


@contextmanager
def run_scope(
    span: str | None = None, *, run_id: str | None = None, email_account_id: str | None = None,
    sync_type: SyncType | None = None, queue: str | None = None, dry_run: bool | None = None,
) -> Iterator[Dimensions]:
    """Within the block, the enclosing scope's dimensions with the ones given here; with
    ``span``, the block is also traced under that name."""
    outer = current()
    dimensions = Dimensions(
        run_id=outer.run_id if run_id is None else run_id,
        email_account_id=outer.email_account_id if email_account_id is None else email_account_id,
        sync_type=outer.sync_type if sync_type is None else sync_type.label,
        queue=outer.queue if queue is None else queue,
        dry_run=outer.dry_run if dry_run is None else dry_run,
    )
    token = _current.set(dimensions)
    try:
        with _installed.span(span, dimensions) if span else nullcontext():
            yield dimensions
    finally:
        _current.reset(token)


def batch_scope(
    ref: BatchRef | None, sync_type: SyncType, span: str | None = None, *, queue: str | None = None
) -> AbstractContextManager[Dimensions]:
    """The scope of one batch (``ref`` None: a message too broken to name its batch)."""
    if ref is None:
        return run_scope(span, sync_type=sync_type, queue=queue)
    return run_scope(span, run_id=ref.run_id, email_account_id=ref.account, sync_type=sync_type,
                     queue=queue, dry_run=ref.dry_run)


def count_requests(system: str, *, sent: int = 0, throttled: int = 0) -> None:
    """Requests made to ``system`` on behalf of the work in hand (the adapters' counters)."""
    _installed.requests(current(), system=system, sent=sent, throttled=throttled)
