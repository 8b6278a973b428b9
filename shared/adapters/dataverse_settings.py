"""Reads the connector's own Dataverse tables (email accounts, schedules) into domain values."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.adapters.dataverse import DataverseClient
from shared.domain.model import EmailAccount, SyncSchedule, SyncStatus, SyncType

EMAIL_ACCOUNT_COLUMNS = (
    "ec_emailaccountid",
    "ec_name",
    "ec_accountid",
    "ec_isdefault",
    "ec_apiusername",
    "ec_secretname",
    "ec_updatedonotbulkemail",
)
SCHEDULE_COLUMNS = (
    "ec_syncscheduleid",
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


def _datetime(value: Any) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def email_account_from_row(row: dict[str, Any]) -> EmailAccount:
    return EmailAccount(
        row_id=str(row["ec_emailaccountid"]),
        name=str(row.get("ec_name") or ""),
        dotdigital_account_id=str(row.get("ec_accountid") or ""),
        api_user=str(row.get("ec_apiusername") or ""),
        secret_name=str(row.get("ec_secretname") or ""),
        is_default=bool(row.get("ec_isdefault")),
        update_do_not_bulk_email=bool(row.get("ec_updatedonotbulkemail")),
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
        last_sync=_datetime(row.get("ec_lastsync")),
        next_sync=_datetime(row.get("ec_nextsync")),
        status=SyncStatus(int(status_value)) if status_value is not None else SyncStatus.NONE,
        sync_now=bool(row.get("ec_syncnow")),
        last_result=row.get("ec_lastresult"),
    )


class DataverseCrmSettings:
    """``CrmSettings`` over the Web API."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def email_accounts(self) -> list[EmailAccount]:
        rows = self._client.iter_rows("ec_emailaccounts", select=EMAIL_ACCOUNT_COLUMNS)
        return [email_account_from_row(row) for row in rows]

    def sync_schedules(self) -> list[SyncSchedule]:
        rows = self._client.iter_rows("ec_syncschedules", select=SCHEDULE_COLUMNS)
        return [schedule for row in rows if (schedule := schedule_from_row(row)) is not None]
