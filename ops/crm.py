"""The connector's CRM tables as an administrator sees them, deactivated rows included.

The app reads only active email accounts (``CrmSettings``); the console also needs the
deactivated ones and each schedule row's state, to say *why* it will not act on one rather
than "unknown". Reads only: Sync Now is written through the app's own ``CrmSettings``.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.settings_tables import (
    EMAIL_ACCOUNT_COLUMNS,
    SCHEDULE_COLUMNS,
    email_account_from_row,
    schedule_from_row,
)
from shared.domain.model import EmailAccount, SyncSchedule

_ACTIVE = 0  # statecode of an active row in every ec_ table


@dataclass(frozen=True)
class AccountRow:
    account: EmailAccount
    active: bool


@dataclass(frozen=True)
class ScheduleRow:
    schedule: SyncSchedule
    name: str
    active: bool


class CrmDirectory:
    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def accounts(self) -> list[AccountRow]:
        """Every email account row, active or not, by name."""
        rows = self._client.iter_rows("ec_emailaccounts",
                                      select=(*EMAIL_ACCOUNT_COLUMNS, "statecode"))
        found = [AccountRow(email_account_from_row(row), row.get("statecode") == _ACTIVE)
                 for row in rows]
        return sorted(found, key=lambda row: (row.account.name.casefold(), row.account.row_id))

    def schedules(self) -> list[ScheduleRow]:
        """Every schedule row of a sync type this version knows, active or not."""
        found = []
        for row in self._client.iter_rows("ec_syncschedules",
                                          select=(*SCHEDULE_COLUMNS, "ec_name", "statecode")):
            schedule = schedule_from_row(row)
            if schedule is not None:
                found.append(ScheduleRow(schedule, str(row.get("ec_name") or ""),
                                         row.get("statecode") == _ACTIVE))
        return found
