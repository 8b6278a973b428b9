"""A fresh install, and the schedule rows the app creates, through the dev host and Dataverse."""

from __future__ import annotations

from tests.e2e.conftest import stack_for
from tests.e2e.org import Org


def test_a_fresh_install_with_no_email_account_ticks_without_failure() -> None:
    with stack_for(Org(email_accounts=0).dataset()) as stack:
        for _ in range(3):
            outcome = stack.trigger_timer()
            assert outcome.succeeded, outcome.describe_error()
        assert stack.schedules() == []
        [*_, last] = stack.journal.runs("sync-cycle")
        assert last["ok"] is True
        assert last["connectivity"] == {
            "ok": True, "accounts": [], "note": "no active email account is configured in CRM"}


def test_rows_are_created_named_for_active_accounts_and_implemented_syncs_only() -> None:
    org = Org(email_accounts=2)
    inactive = org.tables["ec_emailaccounts"][1]
    inactive.update({"statecode": 1, "statuscode": 2})
    with stack_for(org.dataset()) as stack:
        assert stack.trigger_timer().succeeded
        rows = stack.dataverse.rows("ec_syncschedules")
        assert sorted((row["ec_name"], row["_ec_emailaccountid_value"]) for row in rows) == [
            ("Brand 1 · ContactOptIn", org.ids[0]), ("Brand 1 · Engagement", org.ids[0]),
            ("Brand 1 · SuppressionLists", org.ids[0])]
        [*_, last] = stack.journal.runs("sync-cycle")
        assert [check["email_account"] for check in last["connectivity"]["accounts"]] == [
            "Brand 1"]
