"""One timer cycle: the connectivity check, the schedule rows, then each sync's reader per
account (opt-in types, then suppression lists).

The readers' time (``reader_max_s``) is shared fairly: each (account, sync) in turn gets an
equal part of what is left, so one large backlog cannot starve the others. One step's failure is
recorded and the others go on; the caller decides how loudly to fail.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from shared.config import SyncSettings
from shared.domain.model import EmailAccount, SyncSchedule, SyncType
from shared.domain.schedule import is_due
from shared.errors import AppError
from shared.services.ports import CrmSettings, EmailPlatform, PageCursor, Versioned
from shared.services.programs.mirror import ProgramsMirror, ProgramsRefresh
from shared.services.sync.connectivity import ConnectivityReport, check_connectivity
from shared.services.sync.paged_run import ReaderProgress
from shared.services.sync.schedules import ScheduleKeeper, usable_schedules
from shared.services.telemetry import run_scope

logger = logging.getLogger(__name__)

# The run journal's names of the syncs, by sync type.
JOURNAL_NAMES = {SyncType.CONTACT_OPT_IN: "optin", SyncType.SUPPRESSION_LISTS: "suppression",
                 SyncType.ENGAGEMENT: "engagement"}


class SyncReader(Protocol):
    """The timer side of one sync type (``OptInReader``, ``SuppressionReader``)."""

    @property
    def platform(self) -> EmailPlatform: ...
    @property
    def schedules(self) -> ScheduleKeeper: ...
    @property
    def settings(self) -> SyncSettings: ...
    @property
    def monotonic(self) -> Callable[[], float]: ...
    @property
    def label(self) -> str: ...
    @property
    def sync_type(self) -> SyncType: ...

    def open_run(self, account: EmailAccount) -> Versioned[PageCursor] | None: ...

    def start(
        self, account: EmailAccount, schedule: SyncSchedule, run_id: str, now: dt.datetime
    ) -> tuple[Versioned[PageCursor], SyncSchedule] | None: ...

    def resume(
        self, account: EmailAccount, schedule: SyncSchedule, cursor: Versioned[PageCursor],
        now: dt.datetime, *, deadline: float,
    ) -> ReaderProgress: ...


@dataclass
class AccountCycle:
    """What the cycle did for one email account's run of one sync."""

    account: str
    action: str  # idle | started | resumed | busy | skipped | failed
    progress: ReaderProgress | None = None
    error: str | None = None


@dataclass
class CycleSummary:
    run_id: str
    connectivity: ConnectivityReport
    syncs: dict[str, list[AccountCycle]] = field(default_factory=dict)
    programs: list[ProgramsRefresh] = field(default_factory=list)

    @property
    def optin(self) -> list[AccountCycle]:
        return self.syncs.get("optin", [])

    @property
    def suppression(self) -> list[AccountCycle]:
        return self.syncs.get("suppression", [])

    @property
    def ok(self) -> bool:
        return self.connectivity.ok and all(
            item.error is None for items in self.syncs.values() for item in items
        ) and all(item.error is None for item in self.programs)

    def summary(self) -> dict[str, object]:
        """JSON-ready, for the run journal (no addresses: ids and counts only)."""
        return {
            "ok": self.ok,
            "connectivity": self.connectivity.summary(),
            **{name: [asdict(item) for item in items] for name, items in self.syncs.items()},
            "programs": [asdict(item) for item in self.programs],
        }


def run_sync_cycle(
    crm: CrmSettings, readers: SyncReader | Sequence[SyncReader], run_id: str, now: dt.datetime,
    *, programs: ProgramsMirror | None = None,
) -> CycleSummary:
    """Run one cycle for every active email account; ``run_id`` names the runs it starts. With
    ``programs``, the reachable accounts' program mirrors are refreshed when due, last.

    With no email account configured there is nothing to do, and that is not a failure.
    """
    chosen = [readers] if not isinstance(readers, Sequence) else list(readers)
    first = chosen[0]
    accounts = sorted(crm.email_accounts(), key=lambda account: account.row_id)
    existing = crm.sync_schedules()
    report = check_connectivity(accounts, existing, first.platform)
    summary = CycleSummary(run_id, report, {JOURNAL_NAMES[r.sync_type]: [] for r in chosen})
    rows = first.schedules.ensure(accounts, existing)
    schedules = usable_schedules(rows, accounts)
    reachable = {check.email_account_id for check in report.accounts if check.ok}
    steps = [(account, reader) for account in accounts for reader in chosen]
    started = first.monotonic()
    budget = first.settings.reader_max_s
    for index, (account, reader) in enumerate(steps):
        remaining = budget - (first.monotonic() - started)
        deadline = first.monotonic() + max(remaining, 0.0) / (len(steps) - index)
        results = summary.syncs[JOURNAL_NAMES[reader.sync_type]]
        schedule = schedules.get((account.row_id, reader.sync_type))
        if account.row_id not in reachable or schedule is None:
            results.append(AccountCycle(account.row_id, "skipped"))
            continue
        # What the step logs, counts and requests is attributed to its account (and below, to
        # the run it works on: when resuming, one an earlier tick started).
        with run_scope(email_account_id=account.row_id, sync_type=reader.sync_type,
                       dry_run=reader.settings.dry_run):
            try:
                results.append(_step(reader, account, schedule, run_id, now, deadline))
            except AppError as error:
                logger.error("account=%s %s sync failed: %s", account.row_id, reader.label, error)
                results.append(AccountCycle(account.row_id, "failed", error=str(error)))
    if programs is not None:
        summary.programs = programs.refresh_all(
            [account for account in accounts if account.row_id in reachable])
    return summary


def _step(
    reader: SyncReader, account: EmailAccount, schedule: SyncSchedule, run_id: str,
    now: dt.datetime, deadline: float,
) -> AccountCycle:
    cursor = reader.open_run(account)
    action = "resumed"
    if cursor is None:
        if not is_due(schedule, now):
            return AccountCycle(account.row_id, "idle")
        # The cycle's id: state and message ids are per account and sync, so they can share it.
        with run_scope(run_id=run_id):
            opened = reader.start(account, schedule, run_id, now)
        if opened is None:
            return AccountCycle(account.row_id, "busy")
        cursor, schedule = opened
        action = "started"
    with run_scope("sync.read", run_id=cursor.value.run_id):
        progress = reader.resume(account, schedule, cursor, now, deadline=deadline)
    return AccountCycle(account.row_id, "busy" if progress.yielded else action, progress)
