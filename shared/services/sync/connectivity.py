"""The connectivity check: can the connector read its CRM settings and reach every account?

This is the first cycle ``make run ONCE=1`` runs: for each email account, the schedule rows
found in Dataverse and what dotdigital's account-info says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from shared.domain.model import EmailAccount, SyncSchedule
from shared.errors import AppError
from shared.services.ports import EmailPlatform


@dataclass(frozen=True, slots=True)
class AccountCheck:
    email_account_id: str
    email_account: str
    dotdigital_account_id: str
    schedules: list[str] = field(default_factory=list)
    api_endpoint: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ConnectivityReport:
    accounts: list[AccountCheck]

    @property
    def ok(self) -> bool:
        # No email account yet (a fresh install) is a quiet state, not a failure every minute.
        return all(check.ok for check in self.accounts)

    def summary(self) -> dict[str, object]:
        summary: dict[str, object] = {
            "ok": self.ok, "accounts": [asdict(check) for check in self.accounts]
        }
        if not self.accounts:
            summary["note"] = "no active email account is configured in CRM"
        return summary


def check_connectivity(
    accounts: Sequence[EmailAccount], schedules: Sequence[SyncSchedule], platform: EmailPlatform
) -> ConnectivityReport:
    """Check every email account; one account's failure is reported, not fatal for the others.

    The caller reads the accounts and schedule rows once per cycle and passes them in.
    """
    checks: list[AccountCheck] = []
    for account in sorted(accounts, key=lambda a: a.name):
        labels = sorted(
            f"{s.sync_type.label}: "
            + (f"every {s.interval_minutes} min" if s.interval_minutes else "manual")
            for s in schedules
            if s.email_account_id == account.row_id
        )
        try:
            described = platform.describe_account(account)
        except AppError as error:
            checks.append(AccountCheck(account.row_id, account.name,
                                       account.dotdigital_account_id, labels, error=str(error)))
            continue
        checks.append(
            AccountCheck(
                account.row_id,
                account.name,
                str(described.account_id),
                labels,
                api_endpoint=described.api_endpoint,
            )
        )
    return ConnectivityReport(checks)
