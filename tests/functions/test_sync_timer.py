"""The SyncTimer function called with a real TimerRequest and fake services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from shared import bootstrap
from shared.adapters.servicebus.message_codec import JsonMessageCodec, decode
from shared.config import load_settings
from shared.domain.model import SyncSchedule, SyncStatus, SyncType
from shared.entrypoints import sync_timers
from shared.errors import AuthFailed, System
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import PageCursor
from tests.fakes.crm import FakeCrmSettings, an_account
from tests.fakes.crm_programs import InMemoryCrmPrograms
from tests.fakes.crm_records import FakeCrmRecords
from tests.fakes.email_platform import FakeEmailPlatform
from tests.fakes.event_store import InMemoryEventStore
from tests.fakes.publisher import FakeBatchPublisher
from tests.fakes.state import InMemorySyncStateStore
from tests.fakes.suppression_store import InMemoryCrmSuppressions

ENVIRON = {
    "DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
    "ENTRA_TENANT_ID": "tenant",
    "ENTRA_CLIENT_ID": "client",
    "ENTRA_CLIENT_SECRET": "s3cret",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "OPTIN_QUEUE_NAME": "optin-test",
}

# The ribbon API's parts: queue and timer functions never reach them.
NOT_USED: Any = None


class FakeRunJournal:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, Mapping[str, object]]] = []

    def record(self, run_id: str, kind: str, summary: Mapping[str, object]) -> None:
        self.records.append((run_id, kind, summary))

    def runs(self, kind: str) -> list[dict[str, object]]:
        return [dict(s) for _, k, s in self.records if k == kind]


def fake_services(crm: FakeCrmSettings, platform: FakeEmailPlatform) -> bootstrap.Services:
    return bootstrap.Services(
        settings=load_settings(ENVIRON), crm_settings=crm, crm_records=FakeCrmRecords(),
        crm_suppressions=InMemoryCrmSuppressions(),
        email_platform=platform,
        run_journal=FakeRunJournal(), sync_state=InMemorySyncStateStore(),
        publisher=FakeBatchPublisher(), codec=JsonMessageCodec(),
        crm_programs=InMemoryCrmPrograms(), user_tokens=NOT_USED, records_as_user=NOT_USED,
        enrolments=NOT_USED,
        engagement_source=NOT_USED, event_store=InMemoryEventStore(),
    )


def timer_function() -> Callable[[func.TimerRequest], None]:
    function: Any = sync_timers.sync_timer.build().get_user_function()
    return function  # type: ignore[no-any-return]


def two_accounts() -> tuple[FakeCrmSettings, FakeEmailPlatform]:
    accounts = [an_account("acc-1"), an_account("acc-2")]
    crm = FakeCrmSettings(accounts, [SyncSchedule(
        row_id="optin-1", email_account_id="acc-1", sync_type=SyncType.CONTACT_OPT_IN,
        sync_now=True)])
    platform = FakeEmailPlatform()
    for n in range(1500):
        platform.add("acc-1", f"p{n}@example.com", "Double", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    platform.add("acc-2", "q@example.com", "Single", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    return crm, platform


def test_a_tick_runs_the_cycle_and_publishes_the_due_accounts_batches() -> None:
    crm, platform = two_accounts()
    services = fake_services(crm, platform)
    with bootstrap.override(services):
        timer_function()(TimerRequest(past_due=False))

    published = services.publisher.messages("optin-test")  # type: ignore[attr-defined]
    batches = [decode(m.body) for m in published]
    assert {b.ref.account for b in batches} == {"acc-1"}  # acc-2 is manual without Sync Now
    assert sum(len(b.items) for b in batches) == 1500
    assert all(m.session_id and m.session_id.startswith("optin-") for m in published)
    assert crm.schedule_of("acc-1", SyncType.CONTACT_OPT_IN).status is SyncStatus.IN_PROGRESS
    # The rows each account lacked; none for sync types this version does not run
    assert [(r.email_account_id, r.sync_type) for r in crm.created] == [
        ("acc-1", SyncType.SUPPRESSION_LISTS), ("acc-1", SyncType.ENGAGEMENT),
        ("acc-2", SyncType.CONTACT_OPT_IN), ("acc-2", SyncType.SUPPRESSION_LISTS),
        ("acc-2", SyncType.ENGAGEMENT)]
    journal = services.run_journal
    # One summary per tick: the connectivity check is part of it.
    assert [kind for _, kind, _ in journal.records] == ["sync-cycle"]  # type: ignore[attr-defined]
    cycle = journal.runs("sync-cycle")[0]
    assert cycle["ok"] is True
    connectivity: Any = cycle["connectivity"]
    assert connectivity["ok"] is True
    assert [(a["email_account_id"], a["email_account"]) for a in connectivity["accounts"]] == [
        ("acc-1", "Account acc-1"), ("acc-2", "Account acc-2")]
    assert [(a["account"], a["action"]) for a in cycle["optin"]] == [  # type: ignore[attr-defined]
        ("acc-1", "started"), ("acc-2", "idle")]
    # New SuppressionLists rows are manual: nothing due yet.
    assert [a["action"] for a in cycle["suppression"]] == ["idle", "idle"]  # type: ignore[attr-defined]
    assert [a["action"] for a in cycle["engagement"]] == ["idle", "idle"]  # type: ignore[attr-defined]
    assert "@" not in repr(journal.records)  # ids and counts only


def test_a_tick_with_an_unreachable_account_fails_after_serving_the_others() -> None:
    crm, platform = two_accounts()
    platform.fail_describe["acc-2"] = AuthFailed(System.DOTDIGITAL, "401", status=401)
    services = fake_services(crm, platform)
    with bootstrap.override(services), pytest.raises(RuntimeError, match="sync cycle"):
        timer_function()(TimerRequest(past_due=True))
    assert services.publisher.messages("optin-test")  # type: ignore[attr-defined]
    state = services.sync_state
    assert state.get_checkpoint(optin_sync_key("acc-1", dry_run=False), PageCursor) is None
    assert state.get_watermark(optin_sync_key("acc-1", dry_run=False)) is not None


def test_a_tick_with_no_email_account_succeeds_and_records_why_it_did_nothing() -> None:
    crm = FakeCrmSettings([])
    services = fake_services(crm, FakeEmailPlatform())
    with bootstrap.override(services):
        timer_function()(TimerRequest(past_due=False))  # no raise: nothing to fail
    [cycle] = services.run_journal.runs("sync-cycle")
    assert cycle["ok"] is True and cycle["optin"] == []
    assert cycle["connectivity"] == {
        "ok": True, "accounts": [], "note": "no active email account is configured in CRM"}
    assert crm.created == []
    assert services.publisher.messages("optin-test") == []  # type: ignore[attr-defined]


def test_a_failed_tick_still_records_its_connectivity_in_the_cycle_summary() -> None:
    crm, platform = two_accounts()
    platform.fail_describe["acc-2"] = AuthFailed(System.DOTDIGITAL, "401", status=401)
    services = fake_services(crm, platform)
    with bootstrap.override(services), pytest.raises(RuntimeError):
        timer_function()(TimerRequest(past_due=False))
    [cycle] = services.run_journal.runs("sync-cycle")
    connectivity: Any = cycle["connectivity"]
    assert cycle["ok"] is False and connectivity["ok"] is False
    [failed] = [a for a in connectivity["accounts"] if a["error"]]
    assert failed["email_account_id"] == "acc-2" and "401" in failed["error"]
