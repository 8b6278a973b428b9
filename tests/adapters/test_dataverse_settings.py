"""CRM settings over the Dataverse emulator: active email accounts, schedule rows created (named
after their account) and updated as specified."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest

from emulators.cluster import EmulatorCluster
from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.settings_tables import DataverseCrmSettings
from shared.adapters.http.policy import RetryPolicy
from shared.config import DataverseSettings, HttpSettings
from shared.domain.model import ScheduleUpdate, SyncStatus, SyncType
from tests.adapters.conftest import admin


@pytest.fixture
def crm(
    dataverse_settings: DataverseSettings, http: HttpSettings, app_token: Callable[[], str],
    fast_policy: RetryPolicy,
) -> DataverseCrmSettings:
    return DataverseCrmSettings(
        DataverseClient(dataverse_settings, http, app_token, policy=fast_policy)
    )


def test_schedule_rows_are_created_manual_and_updated_column_by_column(
    cluster: EmulatorCluster, crm: DataverseCrmSettings
) -> None:
    account_id = str(uuid.uuid4())
    admin(
        cluster,
        "dataverse",
        "POST",
        "seed",
        {
            "tables": {
                "ec_emailaccounts": [
                    {
                        "ec_emailaccountid": account_id,
                        "ec_name": "Brand",
                        "ec_accountid": 1001,
                        "ec_apiusername": "apiuser-x@apiconnector.com",
                        "ec_secretname": "DD_SECRET",
                    }
                ]
            }
        },
    )
    (account,) = crm.email_accounts()
    created = crm.create_schedule(account, SyncType.CONTACT_OPT_IN)
    (read,) = crm.sync_schedules()
    assert (read.row_id, read.email_account_id, read.sync_type) == (
        created.row_id,
        account_id,
        SyncType.CONTACT_OPT_IN,
    )
    assert (read.interval_minutes, read.status, read.sync_now) == (0, SyncStatus.NONE, False)
    (row,) = admin(cluster, "dataverse", "GET", "state?table=ec_syncschedules")["tables"][
        "ec_syncschedules"]
    assert row["ec_name"] == "Brand · ContactOptIn"  # what an administrator sees in the list

    planned = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)
    crm.update_schedule(read.row_id, ScheduleUpdate(next_sync=planned, sync_now=True))
    crm.update_schedule(read.row_id, ScheduleUpdate(status=SyncStatus.ADDED_TO_QUEUE))
    (read,) = crm.sync_schedules()
    assert (read.next_sync, read.sync_now, read.status) == (
        planned,
        True,
        SyncStatus.ADDED_TO_QUEUE,
    )
    crm.update_schedule(
        read.row_id, ScheduleUpdate(clear_next_sync=True, last_result="1 read, 1 changed, 0 failed")
    )
    (read,) = crm.sync_schedules()
    assert read.next_sync is None
    assert read.last_result == "1 read, 1 changed, 0 failed"
    assert read.status is SyncStatus.ADDED_TO_QUEUE


def test_only_active_email_accounts_are_read_when_an_administrator_deactivated_one(
    cluster: EmulatorCluster, crm: DataverseCrmSettings
) -> None:
    active, inactive = str(uuid.uuid4()), str(uuid.uuid4())
    rows = [
        {"ec_emailaccountid": row_id, "ec_name": name, "ec_accountid": number,
         "ec_apiusername": f"apiuser-{number}@apiconnector.com", "ec_secretname": "DD_SECRET",
         **({"statecode": 1, "statuscode": 2} if name == "Old brand" else {})}
        for row_id, name, number in ((active, "Brand", 1001), (inactive, "Old brand", 1002))
    ]
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"ec_emailaccounts": rows}})
    assert [account.row_id for account in crm.email_accounts()] == [active]


def test_resubscribe_options_are_read_and_blank_ones_are_none(
    cluster: EmulatorCluster, crm: DataverseCrmSettings
) -> None:
    configured, blank = str(uuid.uuid4()), str(uuid.uuid4())
    rows = [
        {"ec_emailaccountid": configured, "ec_name": "Brand", "ec_preferredlocale": "en-GB",
         "ec_resubscribereturnurl": " https://example.com/welcome-back "},
        {"ec_emailaccountid": blank, "ec_name": "Other", "ec_preferredlocale": "  ",
         "ec_resubscribereturnurl": ""},
    ]
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"ec_emailaccounts": rows}})
    options = {a.row_id: (a.preferred_locale, a.resubscribe_return_url)
               for a in crm.email_accounts()}
    assert options == {configured: ("en-GB", "https://example.com/welcome-back"),
                       blank: (None, None)}
