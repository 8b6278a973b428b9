"""Reads the connector's own Dataverse tables (email accounts, schedules) into domain values."""

from __future__ import annotations

import logging
from typing import Any

from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.values import read_datetime, read_text, write_datetime
from shared.domain.model import (
    EmailAccount,
    ScheduleUpdate,
    SyncSchedule,
    SyncStatus,
    SyncType,
)

EMAIL_ACCOUNT_COLUMNS = (
    "ec_emailaccountid",
    "ec_name",
    "ec_accountid",
    "ec_isdefault",
    "ec_apiusername",
    "ec_secretname",
    "ec_updatedonotbulkemail",
    "ec_preferredlocale",
    "ec_resubscribereturnurl",
)
logger = logging.getLogger(__name__)

SCHEDULE_COLUMNS = (
    "ec_syncscheduleid",
    "statecode",
    "_ec_emailaccountid_value",
    "ec_synctype",
    "ec_intervalminutes",
    "ec_windowstart",
    "ec_windowend",
    "ec_lastsync",
    "ec_nextsync",
    "ec_status",
    "ec_syncnow",
    "ec_lastresult",
)


def email_account_from_row(row: dict[str, Any]) -> EmailAccount:
    return EmailAccount(
        row_id=str(row["ec_emailaccountid"]),
        name=str(row.get("ec_name") or ""),
        dotdigital_account_id=str(row.get("ec_accountid") or ""),
        api_user=str(row.get("ec_apiusername") or ""),
        secret_name=str(row.get("ec_secretname") or ""),
        is_default=bool(row.get("ec_isdefault")),
        update_do_not_bulk_email=bool(row.get("ec_updatedonotbulkemail")),
        preferred_locale=read_text(row.get("ec_preferredlocale")),
        resubscribe_return_url=read_text(row.get("ec_resubscribereturnurl")),
    )


def schedule_from_row(row: dict[str, Any]) -> SyncSchedule | None:
    """The schedule, or None when its sync type is not one this version knows."""
    try:
        sync_type = SyncType(int(row["ec_synctype"]))
    except (KeyError, TypeError, ValueError):
        return None
    status_value = row.get("ec_status")
    return SyncSchedule(
        row_id=str(row["ec_syncscheduleid"]),
        email_account_id=str(row.get("_ec_emailaccountid_value") or ""),
        sync_type=sync_type,
        interval_minutes=int(row.get("ec_intervalminutes") or 0),
        window_start=row.get("ec_windowstart"),
        window_end=row.get("ec_windowend"),
        last_sync=read_datetime(row.get("ec_lastsync")),
        next_sync=read_datetime(row.get("ec_nextsync")),
        status=SyncStatus(int(status_value)) if status_value is not None else SyncStatus.NONE,
        sync_now=bool(row.get("ec_syncnow")),
        last_result=row.get("ec_lastresult"),
        active=row.get("statecode") in (0, None),
    )


def schedule_name(account: EmailAccount, sync_type: SyncType) -> str:
    """What an administrator sees in the list: ``Brand 1 · ContactOptIn`` (the column holds 100)."""
    label = sync_type.label
    name = account.name.strip() or account.row_id
    return f"{name[: 100 - len(label) - 3]} · {label}"


def schedule_columns(update: ScheduleUpdate) -> dict[str, Any]:
    """The Web API body for ``update``: only the columns it sets."""
    columns: dict[str, Any] = {}
    if update.status is not None:
        columns["ec_status"] = int(update.status)
    if update.last_sync is not None:
        columns["ec_lastsync"] = write_datetime(update.last_sync)
    if update.next_sync is not None:
        columns["ec_nextsync"] = write_datetime(update.next_sync)
    if update.clear_next_sync:
        columns["ec_nextsync"] = None
    if update.sync_now is not None:
        columns["ec_syncnow"] = update.sync_now
    if update.last_result is not None:
        columns["ec_lastresult"] = update.last_result[:4000]
    return columns


class DataverseCrmSettings:
    """``CrmSettings`` over the Web API."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def email_accounts(self) -> list[EmailAccount]:
        # A deactivated account (statecode 1, Inactive) is one an administrator switched off.
        rows = self._client.iter_rows(
            "ec_emailaccounts", select=EMAIL_ACCOUNT_COLUMNS, filter="statecode eq 0"
        )
        return [email_account_from_row(row) for row in rows]

    def sync_schedules(self) -> list[SyncSchedule]:
        schedules: list[SyncSchedule] = []
        for row in self._client.iter_rows("ec_syncschedules", select=SCHEDULE_COLUMNS):
            schedule = schedule_from_row(row)
            if schedule is None:
                # An administrator's row this version cannot follow must not stop the others.
                logger.warning("schedule %s ignored: unknown sync type %r",
                               row.get("ec_syncscheduleid"), row.get("ec_synctype"))
                continue
            schedules.append(schedule)
        return schedules

    def create_schedule(self, account: EmailAccount, sync_type: SyncType) -> SyncSchedule:
        email_account_id = account.row_id
        row_id = self._client.create(
            "ec_syncschedules",
            {
                "ec_name": schedule_name(account, sync_type),
                "ec_emailaccountid@odata.bind": f"/ec_emailaccounts({email_account_id})",
                "ec_synctype": int(sync_type),
                "ec_intervalminutes": 0,
                "ec_status": int(SyncStatus.NONE),
                "ec_syncnow": False,
            },
        )
        return SyncSchedule(row_id=row_id, email_account_id=email_account_id, sync_type=sync_type)

    def update_schedule(self, row_id: str, update: ScheduleUpdate) -> None:
        columns = schedule_columns(update)
        if columns:
            self._client.update("ec_syncschedules", row_id, columns)
