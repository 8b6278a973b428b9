"""One timer cycle: the connectivity check, the schedule rows, the opt-in reader per account.

The reader's time (``reader_max_s``) is shared fairly: each account in turn gets an equal part
of what is left, so one account's large backlog cannot starve the others. One account's failure
is recorded and the others go on; the caller decides how loudly to fail.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field

from shared.domain.model import EmailAccount, SyncSchedule, SyncType
from shared.domain.schedule import is_due
from shared.errors import AppError
from shared.services.optin.reader import OptInReader, ReaderProgress
from shared.services.ports import CrmSettings
from shared.services.sync.connectivity import ConnectivityReport, check_connectivity
from shared.services.sync.schedules import usable_schedules

logger = logging.getLogger(__name__)


@dataclass
class AccountCycle:
    """What the cycle did for one email account's opt-in sync."""

    account: str
    action: str  # idle | started | resumed | busy | skipped | failed
    progress: ReaderProgress | None = None
    error: str | None = None


@dataclass
class CycleSummary:
    run_id: str
    connectivity: ConnectivityReport
    optin: list[AccountCycle] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.connectivity.ok and all(item.error is None for item in self.optin)

    def summary(self) -> dict[str, object]:
        """JSON-ready, for the run journal (no addresses: ids and counts only)."""
        return {
            "ok": self.ok,
            "connectivity": self.connectivity.summary(),
            "optin": [asdict(item) for item in self.optin],
        }


def run_sync_cycle(
    crm: CrmSettings, reader: OptInReader, run_id: str, now: dt.datetime
) -> CycleSummary:
    """Run one cycle for every active email account; ``run_id`` names the opt-in runs it starts.

    With no email account configured there is nothing to do, and that is not a failure.
    """
    accounts = sorted(crm.email_accounts(), key=lambda account: account.row_id)
    existing = crm.sync_schedules()
    report = check_connectivity(accounts, existing, reader.platform)
    summary = CycleSummary(run_id, report)
    rows = reader.schedules.ensure(accounts, existing)
    schedules = usable_schedules(rows, accounts)
    reachable = {check.email_account_id for check in report.accounts if check.ok}
    started = reader.monotonic()
    for index, account in enumerate(accounts):
        remaining = reader.settings.reader_max_s - (reader.monotonic() - started)
        deadline = reader.monotonic() + max(remaining, 0.0) / (len(accounts) - index)
        schedule = schedules.get((account.row_id, SyncType.CONTACT_OPT_IN))
        if account.row_id not in reachable or schedule is None:
            summary.optin.append(AccountCycle(account.row_id, "skipped"))
            continue
        try:
            summary.optin.append(_optin_step(reader, account, schedule, run_id, now, deadline))
        except AppError as error:
            logger.error("account=%s opt-in sync failed: %s", account.row_id, error)
            summary.optin.append(AccountCycle(account.row_id, "failed", error=str(error)))
    return summary


def _optin_step(
    reader: OptInReader, account: EmailAccount, schedule: SyncSchedule, run_id: str,
    now: dt.datetime, deadline: float,
) -> AccountCycle:
    cursor = reader.open_run(account)
    action = "resumed"
    if cursor is None:
        if not is_due(schedule, now):
            return AccountCycle(account.row_id, "idle")
        # The cycle's id: state and message ids are per account, so accounts can share it.
        opened = reader.start(account, schedule, run_id, now)
        if opened is None:
            return AccountCycle(account.row_id, "busy")
        cursor, schedule = opened
        action = "started"
    progress = reader.resume(account, schedule, cursor, now, deadline=deadline)
    return AccountCycle(account.row_id, "busy" if progress.yielded else action, progress)
