"""In-memory ``CrmSettings``: email accounts and schedule rows, with a log of every write."""

from __future__ import annotations

import itertools
from dataclasses import replace

from shared.adapters.dataverse.settings_tables import schedule_name
from shared.domain.model import EmailAccount, ScheduleUpdate, SyncSchedule, SyncType
from shared.errors import NotFound, System


def an_account(row_id: str = "acc-1", name: str | None = None) -> EmailAccount:
    return EmailAccount(
        row_id=row_id, name=name or f"Account {row_id}", dotdigital_account_id="1001",
        api_user=f"apiuser-{row_id}@apiconnector.com", secret_name=f"DD_SECRET_{row_id}",
    )


class FakeCrmSettings:
    def __init__(
        self, accounts: list[EmailAccount] | None = None,
        schedules: list[SyncSchedule] | None = None,
    ) -> None:
        self.accounts = list(accounts or [])
        self.schedules: dict[str, SyncSchedule] = {s.row_id: s for s in schedules or []}
        self.writes: list[tuple[str, ScheduleUpdate]] = []
        self.created: list[SyncSchedule] = []
        self.names: dict[str, str] = {}  # ec_name of the rows created, as the adapter names them
        self._ids = itertools.count(1)

    def email_accounts(self) -> list[EmailAccount]:
        return list(self.accounts)

    def sync_schedules(self) -> list[SyncSchedule]:
        return list(self.schedules.values())

    def create_schedule(self, account: EmailAccount, sync_type: SyncType) -> SyncSchedule:
        row = SyncSchedule(
            row_id=f"sched-{next(self._ids)}", email_account_id=account.row_id,
            sync_type=sync_type,
        )
        self.names[row.row_id] = schedule_name(account, sync_type)
        self.schedules[row.row_id] = row
        self.created.append(row)
        return row

    def update_schedule(self, row_id: str, update: ScheduleUpdate) -> None:
        current = self.schedules.get(row_id)
        if current is None:
            raise NotFound(System.DATAVERSE, f"schedule {row_id} does not exist")
        changes = {name: getattr(update, name) for name in
                   ("status", "last_sync", "next_sync", "sync_now", "last_result")
                   if getattr(update, name) is not None}
        if update.clear_next_sync:
            changes["next_sync"] = None
        self.schedules[row_id] = replace(current, **changes)
        self.writes.append((row_id, update))

    def schedule_of(self, account_id: str, sync_type: SyncType) -> SyncSchedule:
        (row,) = [s for s in self.schedules.values()
                  if s.email_account_id == account_id and s.sync_type == sync_type]
        return row
