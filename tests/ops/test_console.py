"""The operator console (``python -m ops``) against a local stack, in-process: what each command
prints and exits with, that a dry run writes nothing and counts what the real sync then changes,
and that bad input changes nothing (exit 2)."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableServiceClient

from devtools.local_stack import LocalStack
from emulators.datagen.crm_rows import secret_name
from ops.cli import build_parser
from ops.crm import AccountRow, ScheduleRow
from ops.errors import UsageError
from ops.health import AccountHealth, Health, QueueHealth, SyncHealth, attention_of
from ops.history import RunRecord
from ops.keyvault import resolve_references, secret_url
from ops.output import Output, Styled
from ops.queues import ServiceBusQueueAdmin
from ops.settings_source import find_settings, read_settings_file
from ops.syncs import KINDS
from shared.adapters.servicebus.message_codec import OutboundMessage, dead_letter_queue
from shared.adapters.storage.event_store import TableEventStore
from shared.adapters.storage.run_journal import TableRunJournal
from shared.adapters.storage.sync_state import TableSyncStateStore
from shared.config import QueueSettings, load_settings
from shared.domain.engagement import EngagementEvent, EventKind
from shared.domain.model import EmailAccount, SyncSchedule, SyncStatus, SyncType
from shared.errors import AuthFailed, NotFound
from shared.services.engagement.reader import engagement_sync_key
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import RunState, RunStatus, SyncKey
from shared.services.suppression.reader import suppression_sync_key
from tests.e2e.conftest import crm_snapshot
from tests.ops.conftest import Console, OpsStack

BRAND_1, BRAND_2, BRAND_3, BRAND_4 = range(4)
LABELS = {SyncType.CONTACT_OPT_IN: "ContactOptIn", SyncType.SUPPRESSION_LISTS: "SuppressionLists",
          SyncType.ENGAGEMENT: "Engagement"}
DD_WRITE_ROUTES = ("suppress-contacts", "resubscribe", "unsubscribe")


# --- helpers ---------------------------------------------------------------------------------
def schedule_of(stack: LocalStack, account_id: str, sync_type: SyncType) -> SyncSchedule:
    found = [s for s in stack.schedules(sync_type) if s.email_account_id == account_id]
    assert len(found) == 1, found
    return found[0]


def tables(stack: LocalStack) -> TableServiceClient:
    return TableServiceClient.from_connection_string(stack.azurite.connection_string)


def state_rows(stack: LocalStack, account_id: str) -> list[tuple[str, str]]:
    """Every sync state row of an account (watermarks, cursors, runs, dry or not)."""
    table = tables(stack).get_table_client("syncstate")
    rows = table.query_entities("PartitionKey ge @low and PartitionKey lt @high",
                                parameters={"low": f"{account_id}|", "high": f"{account_id}}}"})
    return sorted((str(row["PartitionKey"]), str(row["RowKey"])) for row in rows)


def store_with_clock(stack: LocalStack, at: dt.datetime) -> TableSyncStateStore:
    """The state store as a process whose clock says ``at`` (to make old or stuck runs)."""
    return TableSyncStateStore.from_settings(load_settings(stack.values).state,
                                             clock=lambda: at)


def admin_view(stack: LocalStack) -> dict[str, Any]:
    """What a console command could write in Dataverse, schedules included."""
    schedules = [{k: v for k, v in row.items() if k not in ("modifiedon", "@odata.etag")}
                 for row in stack.dataverse.rows("ec_syncschedules")]
    return {**crm_snapshot(stack), "ec_syncschedules": schedules}


def as_json(output: str) -> Any:
    return json.loads(output)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- status ----------------------------------------------------------------------------------
def test_status_of_a_healthy_connector_names_every_account_and_exits_0(
    ops_stack: OpsStack, console: Console
) -> None:
    code, out, err = console("status")
    assert code == 0, out + err
    for index in (BRAND_1, BRAND_2, BRAND_3):
        assert f"Brand {index + 1}" in out and ops_stack.account_id(index) in out
    # Deactivated: shown apart, never judged (the connector does not sync it).
    assert (f"deactivated in CRM (not synced): Brand 4 ({ops_stack.account_id(BRAND_4)})"
            in out)
    assert "Brand 4" not in out.split("schedules", 1)[1]
    for text in ("email accounts", "schedules", "runs", "ContactOptIn", "SuppressionLists",
                 "optin-batches", "suppression-batches", "engagement-batches", "result: OK"):
        assert text in out
    assert "\x1b[" not in out  # no colour when stdout is not a terminal
    assert "connectivity: 3 ok" in err

    code, out, _ = console("status", "--json")
    assert code == 0
    status = as_json(out)
    assert status["ok"] is True and status["attention"] == []
    assert [a["name"] for a in status["accounts"]] == ["Brand 1", "Brand 2", "Brand 3"]
    assert [a["name"] for a in status["deactivated_accounts"]] == ["Brand 4"]
    assert all(a["connectivity"]["ok"] for a in status["accounts"])
    assert {s["sync_type"] for s in status["accounts"][0]["syncs"]} == set(LABELS.values())
    assert {q["queue"]: (q["waiting"], q["dead_lettered"], q["parked"])
            for q in status["queues"]} == {q: (0, 0, 0) for q in ops_stack.stack.queues}


def test_a_run_in_progress_too_long_is_stuck_named_and_exits_1(
    ops_stack: OpsStack, console: Console
) -> None:
    stack, brand_3 = ops_stack.stack, ops_stack.account_id(BRAND_3)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2, minutes=5)
    key, run_id = optin_sync_key(brand_3, dry_run=False), "20200101T000000-stuck001"
    store_with_clock(stack, started).start_run(key, run_id, since=started, until=started)
    try:
        code, out, _ = console("status", "--no-connectivity")
        assert code == 1, out
        attention = out.split("needs attention", 1)[1]
        assert f"Brand 3 · ContactOptIn: run {run_id} publishing for 2h 05m" in attention
        assert "result: 1 thing needs attention" in out

        code, out, _ = console("status", "--no-connectivity", "--stuck-minutes", "180")
        assert code == 0, out
    finally:
        tables(stack).get_table_client("syncstate").delete_entity(
            f"{brand_3}|ContactOptIn", f"run|{run_id}")


def test_a_schedule_left_in_progress_without_a_run_needs_attention_and_refuses_sync_now(
    ops_stack: OpsStack, console: Console
) -> None:
    stack, brand_3 = ops_stack.stack, ops_stack.account_id(BRAND_3)
    stack.edit_schedules({"ec_status": int(SyncStatus.IN_PROGRESS)},
                         sync_type=SyncType.SUPPRESSION_LISTS, email_accounts=[brand_3])
    try:
        code, out, _ = console("status", "--no-connectivity", "--json")
        assert code == 1
        found = [(a["kind"], a["subject"]) for a in as_json(out)["attention"]]
        assert found == [("stuck_schedule", "Brand 3 · SuppressionLists")]

        before = admin_view(stack)
        code, out, err = console("sync-now", "Brand 3", "SuppressionLists")
        assert code == 2 and out == ""
        assert "already in progress (Synchronising In Progress)" in err
        assert admin_view(stack) == before
    finally:
        stack.edit_schedules({"ec_status": int(SyncStatus.NONE)},
                             sync_type=SyncType.SUPPRESSION_LISTS, email_accounts=[brand_3])


def test_an_account_with_a_wrong_password_fails_its_check_by_name_and_exits_1(
    ops_stack: OpsStack, console: Console, tmp_path: Path
) -> None:
    values = {**ops_stack.stack.values, secret_name(2002): "not-the-password"}
    settings = tmp_path / "wrong-password.json"
    settings.write_text(json.dumps({"Values": values}), encoding="utf-8")

    code, out, err = console("status", "--settings", str(settings))
    assert code == 1, out + err
    attention = out.split("needs attention", 1)[1]
    assert f"Brand 2 ({ops_stack.account_id(BRAND_2)}): connectivity check failed" in attention
    assert "Brand 1" not in attention and "Brand 3" not in attention
    assert "not-the-password" not in out + err
    assert f"settings: settings file {settings}" in out

    code, out, _ = console("status", "--settings", str(settings), "--json")
    assert [(a["kind"], a["subject"].split(" (")[0]) for a in as_json(out)["attention"]] == [
        ("connectivity", "Brand 2")]


def test_dead_letters_in_a_queue_need_attention(ops_stack: OpsStack, console: Console) -> None:
    store = ops_stack.stack.host.store
    parked = dead_letter_queue(ops_stack.stack.optin_queue)
    store.send(parked, [OutboundMessage("parked-by-test", b"{}")])
    try:
        code, out, _ = console("status", "--no-connectivity")
        assert code == 1
        assert ("optin-batches: 0 dead-lettered by the broker, 1 parked by the app: see "
                "`python -m ops dead-letters`") in out
    finally:
        for message in store.receive(parked, 10).messages:
            store.complete(message)
    assert console("status", "--no-connectivity")[0] == 0


# --- sync-now, runs ----------------------------------------------------------------------------
def test_sync_now_ticks_the_flag_and_the_next_tick_runs_it_then_runs_lists_it(
    ops_stack: OpsStack, console: Console
) -> None:
    stack, brand_2 = ops_stack.stack, ops_stack.account_id(BRAND_2)
    code, out, err = console("sync-now", "brand 2", "contactoptin")  # names in any case
    assert code == 0, out + err
    assert "Sync Now ticked on 'Brand 2: ContactOptIn'" in out
    assert schedule_of(stack, brand_2, SyncType.CONTACT_OPT_IN).sync_now

    code, out, _ = console("sync-now", brand_2, "ContactOptIn", "--json")
    assert code == 0
    assert as_json(out)["already_ticked"] is True and as_json(out)["starts"] == "next tick"

    completion = stack.run_until_complete(timeout_s=60)
    assert not completion.timer_failures, completion.timer_failures
    schedule = schedule_of(stack, brand_2, SyncType.CONTACT_OPT_IN)
    assert not schedule.sync_now and schedule.last_sync is not None
    assert schedule.last_result == "3 read, 3 changed, 0 failed"

    code, out, _ = console("runs", "--account", "Brand 2", "--sync-type", "ContactOptIn",
                           "--json")
    assert code == 0
    runs = as_json(out)
    assert len(runs) == 1
    run = runs[0]
    assert (run["email_account"], run["sync_type"], run["status"]) == (
        "Brand 2", "ContactOptIn", "completed")
    assert (run["read"], run["changed"], run["failed"]) == (3, 3, 0)
    assert run["batches_published"] == run["batches_applied"] > 0

    code, out, _ = console("runs")
    assert code == 0 and run["run_id"] in out and "Brand 2" in out

    code, out, _ = console("runs", "show", run["run_id"], "--account", "Brand 2",
                           "--sync-type", "ContactOptIn", "--json")
    assert code == 0
    [shown] = as_json(out)
    assert [b["outcome"] for b in shown["batches"]] == ["applied"] * run["batches_published"]
    assert sum(b["counters"]["items"] for b in shown["batches"]) == 3
    assert shown["reader"]["action"] == "started"

    code, out, _ = console("runs", "show", run["run_id"])
    assert code == 0
    assert f"run {run['run_id']} · Brand 2 · ContactOptIn" in out
    assert f"{run['batches_published']} published: {run['batches_published']} applied" in out
    assert "started by its sync cycle" in out


def test_sync_now_refuses_what_the_connector_would_not_run_and_changes_nothing(
    ops_stack: OpsStack, console: Console
) -> None:
    before = admin_view(ops_stack.stack)
    for args, message in (
        (("Brand 4", "ContactOptIn"), "is deactivated in CRM: the connector does not sync it"),
        (("Brand 3", "Engagement"), "the Engagement schedule 'Brand 3 · Engagement' of "
                                    "Brand 3"),
        (("Brand 9", "ContactOptIn"), "unknown email account 'Brand 9'; known: Brand 1 ("),
    ):
        code, out, err = console("sync-now", *args)
        assert (code, out) == (2, ""), (args, out, err)
        assert message in err, err
    assert admin_view(ops_stack.stack) == before


# --- dry-run ------------------------------------------------------------------------------------
def test_dry_run_writes_nothing_and_counts_what_the_real_sync_then_changes(
    ops_stack: OpsStack, console: Console
) -> None:
    stack, brand_1 = ops_stack.stack, ops_stack.account_id(BRAND_1)
    before, rows_before = admin_view(stack), state_rows(stack, brand_1)
    stack.dotdigital.clear_stats()
    dry: dict[SyncType, dict[str, Any]] = {}
    for sync_type, label in LABELS.items():
        code, out, err = console("dry-run", "Brand 1", label.lower(), "--json")
        assert code == 0, out + err
        dry[sync_type] = as_json(out)
        assert f"dry run Brand 1 · {label}:" in err  # the progress line
    assert admin_view(stack) == before
    assert state_rows(stack, brand_1) == rows_before  # no watermark, run or cursor
    for key in (optin_sync_key, suppression_sync_key, engagement_sync_key):
        assert stack.state.get_watermark(key(brand_1, dry_run=False)) is None
    assert all(stack.host.store.counts(queue).active == 0 for queue in stack.queues)
    routes = stack.dotdigital.stats()["by_route"]
    assert not [name for name in routes if any(w in name for w in DD_WRITE_ROUTES)], routes

    optin = dry[SyncType.CONTACT_OPT_IN]
    assert optin["written"] is False and optin["dry_run"] is True
    # ann (contact, Single -> Double), bob (contact, none -> Single), cat (lead, Unknown ->
    # VerifiedDouble); dan's account is Double already; eve is nowhere in CRM.
    assert {name: optin["counters"][name] for name in (
        "items", "changed_contact", "changed_lead", "changed_account", "unmatched")} == {
        "items": 7, "changed_contact": 2, "changed_lead": 1, "changed_account": 0,
        "unmatched": 1}
    assert dry[SyncType.SUPPRESSION_LISTS]["counters"]["rows_created"] == 2
    assert dry[SyncType.ENGAGEMENT]["counters"]["items"] == 4

    for sync_type in LABELS:
        stack.request_sync_now(sync_type=sync_type, email_accounts=[brand_1])
    completion = stack.run_until_complete(timeout_s=90)
    assert not completion.timer_failures, completion.timer_failures
    for sync_type, label in LABELS.items():
        code, out, _ = console("runs", "--account", brand_1, "--sync-type", label, "--json")
        [real] = as_json(out)
        assert real["status"] == "completed" and real["dry_run"] is False
        counted = dry[sync_type]["counters"]
        if sync_type is SyncType.ENGAGEMENT:
            # A dry run hands events to no store; the real one stores the new ones (all, here).
            stored = ("written", "existing")
            assert {k: v for k, v in real["counters"].items() if k not in stored} == {
                k: v for k, v in counted.items() if k not in stored}
            assert real["counters"]["written"] == counted["items"]
        else:
            assert real["counters"] == counted, label
            assert real["changed"] == dry[sync_type]["would_change"] > 0

    code, out, _ = console("dry-run", "Brand 1", "ContactOptIn")
    assert code == 0
    assert "dry run: Brand 1 · ContactOptIn (nothing was written)" in out
    assert "would change: 0" in out  # the real sync applied it all


# --- retention ----------------------------------------------------------------------------------
def test_retention_reports_what_it_would_remove_then_removes_it(
    ops_stack: OpsStack, console: Console
) -> None:
    stack, brand_3 = ops_stack.stack, ops_stack.account_id(BRAND_3)
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=40)
    key, run_id = suppression_sync_key(brand_3, dry_run=False), f"{old:%Y%m%dT%H%M%S}-old00001"
    old_store = store_with_clock(stack, old)
    old_store.start_run(key, run_id, since=old, until=old)
    old_store.record_published(key, run_id, batches=0, done=True)  # completed 40 days ago
    TableRunJournal(tables(stack)).record(run_id, "sync-cycle", {"ok": True})
    TableEventStore(tables(stack)).write([EngagementEvent(
        "old@example.com", EventKind.SEND, now - dt.timedelta(days=800), "campaign-1", "Old")])

    code, out, _ = console("retention", "--json")
    assert code == 0
    report = as_json(out)
    assert report["applied"] is False and report["removed"] is None
    assert report["would_remove"] == {"runs": 1, "run_rows": 1, "journal_rows": 1, "events": 1}
    assert stack.state.get_run(key, run_id) is not None  # a report removes nothing

    code, out, _ = console("retention")
    assert code == 0 and "nothing removed: run again with --apply" in out

    code, out, _ = console("retention", "--apply", "--json")
    assert code == 0
    assert as_json(out)["removed"] == {"runs": 1, "journal_rows": 1, "events": 1}
    assert stack.state.get_run(key, run_id) is None

    code, out, _ = console("retention", "--json")
    assert as_json(out)["would_remove"] == {"runs": 0, "run_rows": 0, "journal_rows": 0,
                                            "events": 0}


# --- bad input ---------------------------------------------------------------------------------
def test_bad_input_exits_2_with_a_clear_message_and_changes_nothing(
    ops_stack: OpsStack, console: Console, tmp_path: Path
) -> None:
    stack = ops_stack.stack
    before, state_before = admin_view(stack), state_rows(stack, ops_stack.account_id(BRAND_1))
    not_json = tmp_path / "broken.json"
    not_json.write_text("{", encoding="utf-8")
    missing_setting = tmp_path / "missing.json"
    missing_setting.write_text(json.dumps({"Values": {
        k: v for k, v in stack.values.items() if k != "DATAVERSE_URL"}}), encoding="utf-8")
    for args, message in (
        (("dry-run", "Nobody", "ContactOptIn"), "error: unknown email account 'Nobody'"),
        (("dry-run", "Brand 1", "Contacts"), "unknown sync type 'Contacts': expected one of "
                                             "ContactOptIn, SuppressionLists, Engagement"),
        (("sync-now", "Brand 1", "nope"), "unknown sync type 'nope'"),
        (("runs", "--account", "Nobody"), "error: unknown email account 'Nobody'"),
        (("runs", "--limit", "0"), "error: --limit must be at least 1"),
        (("runs", "show", "20200101T000000-nothing1"),
         "error: no run 20200101T000000-nothing1 is recorded"),
        (("runs", "show", "not a run id"), "error: invalid run id 'not a run id'"),
        (("status", "--settings", str(tmp_path / "absent.json")),
         f"error: cannot read settings file {tmp_path / 'absent.json'}"),
        (("status", "--settings", str(not_json)), "is not JSON"),
        (("retention", "--apply", "--settings", str(missing_setting)),
         "settings: missing app setting DATAVERSE_URL"),
        (("status", "--stuck-minutes", "soon"), "invalid float value: 'soon'"),
        (("status", "--stuck-minutes", "-5"), "error: --stuck-minutes must be more than 0"),
    ):
        code, out, err = console(*args)
        assert (code, out) == (2, ""), (args, out, err)
        assert message in err, (args, err)
    assert admin_view(stack) == before
    assert state_rows(stack, ops_stack.account_id(BRAND_1)) == state_before


def test_every_command_has_help_with_an_example(console: Console) -> None:
    [subparsers] = [action for action in build_parser()._actions
                    if isinstance(action, argparse._SubParsersAction)]
    commands = sorted(subparsers.choices)
    assert {"status", "dry-run", "runs", "sync-now", "retention", "dead-letters"} <= set(commands)
    for args in [[command] for command in commands] + [["runs", "show"], []]:
        code, out, err = console(*args, "--help")
        assert code == 0, (args, err)
        assert "examples:" in out, args
        assert f"python -m ops {' '.join(args)}".strip() in out.split("examples:", 1)[1], args


def test_options_before_a_subcommand_are_not_lost_to_its_defaults() -> None:
    parser = build_parser()
    for args in (["runs", "--json", "--settings", "f.json", "--account", "Brand 1",
                  "--sync-type", "engagement", "show", "R"],
                 ["runs", "show", "R", "--json", "--settings", "f.json", "--account", "Brand 1",
                  "--sync-type", "Engagement"]):
        parsed = parser.parse_args(args)
        assert (parsed.json, parsed.settings, parsed.account, parsed.sync_type) == (
            True, "f.json", "Brand 1", SyncType.ENGAGEMENT), args
    for args in (["dead-letters", "--json", "--settings", "f.json", "list"],
                 ["dead-letters", "list", "--json", "--settings", "f.json"]):
        parsed = parser.parse_args(args)
        assert (parsed.json, parsed.settings) == (True, "f.json"), args
    shown = parser.parse_args(["runs", "show", "R"])
    assert (shown.json, shown.settings, shown.account, shown.sync_type) == (
        False, None, None, None)


def test_python_m_ops_runs_as_a_program() -> None:
    done = subprocess.run([sys.executable, "-m", "ops", "status", "--help"], capture_output=True,
                          text=True, timeout=120, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert "--stuck-minutes" in done.stdout


# --- settings discovery -------------------------------------------------------------------------
def test_the_console_finds_a_running_local_stack_by_its_file(
    ops_stack: OpsStack, console: Console
) -> None:
    source = find_settings(None, {}, ops_stack.stack_file)
    assert source.kind == "local stack"
    assert source.values["DATAVERSE_URL"] == ops_stack.stack.values["DATAVERSE_URL"]
    assert Path(source.values["LOCAL_QUEUE_DIR"]) == ops_stack.stack.run_dir / "queues"
    assert ops_stack.stack_file.stat().st_mode & 0o077 == 0  # it holds secrets

    code, out, _ = console("status", "--settings", str(ops_stack.stack_file), "--json")
    assert code == 0 and as_json(out)["ok"] is True


def test_settings_come_from_a_file_the_environment_or_the_stack_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-stack.json"
    assert find_settings(None, {"DATAVERSE_URL": "https://x"}, missing).kind == "environment"
    with pytest.raises(UsageError, match="no app settings found"):
        find_settings(None, {}, missing)

    listed = tmp_path / "appsettings.json"  # `az functionapp config appsettings list`
    listed.write_text(json.dumps([{"name": "DATAVERSE_URL", "value": "https://x"},
                                  {"name": "OUTBOUND_CA_BUNDLE", "value": "ca.pem"},
                                  {"name": "EMPTY", "value": None}]), encoding="utf-8")
    assert read_settings_file(listed) == {"DATAVERSE_URL": "https://x",
                                          "OUTBOUND_CA_BUNDLE": str(tmp_path / "ca.pem"),
                                          "EMPTY": ""}

    stale = tmp_path / "local-stack.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale.write_text(json.dumps({"Values": {}, "pid": dead.pid}), encoding="utf-8")
    with pytest.raises(UsageError, match="no longer running"):
        find_settings(None, {}, stale)


def test_key_vault_references_are_read_as_the_operator() -> None:
    assert secret_url("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/"
                      "DOTDIGITAL-SECRET-BRAND1/)") == \
        "https://kv1.vault.azure.net/secrets/DOTDIGITAL-SECRET-BRAND1/"
    assert secret_url("@Microsoft.KeyVault(VaultName=kv1;SecretName=s;SecretVersion=v2)") == \
        "https://kv1.vault.azure.net/secrets/s/v2"
    assert secret_url("plain value") is None

    class Token:
        token = "t"

    class Credential:
        scopes: list[str] = []

        def get_token(self, scope: str) -> Token:
            self.scopes.append(scope)
            return Token()

    class Session(requests.Session):
        def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:
            response = requests.Response()
            response.status_code = 403 if "denied" in str(url) else 200
            response._content = json.dumps({"value": "the-secret"}).encode()
            return response

    credential = Credential()
    resolved = resolve_references(
        {"A": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/a/)",
         "B": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/denied/)",
         "C": "plain"},
        lambda: credential, session=Session())  # type: ignore[arg-type,return-value]
    assert resolved.values == {"A": "the-secret", "C": "plain"}
    assert resolved.problems == {"B": "Key Vault answered 403"}
    assert set(credential.scopes) == {"https://vault.azure.net/.default"}


# --- output -------------------------------------------------------------------------------------
@pytest.fixture
def terminal() -> Iterator[Terminal]:
    yield Terminal()


def test_colour_only_on_a_terminal_and_never_with_no_color(terminal: Terminal) -> None:
    Output(terminal, io.StringIO(), environ={}).line("ok", "ok")
    assert terminal.getvalue() == "\x1b[32mok\x1b[0m\n"
    muted = Terminal()
    Output(muted, io.StringIO(), environ={"NO_COLOR": "1"}).line("ok", "ok")
    assert muted.getvalue() == "ok\n"
    piped = io.StringIO()
    Output(piped, io.StringIO(), environ={}).line("ok", "ok")
    assert piped.getvalue() == "ok\n"


def test_tables_align_numbers_right_and_text_left() -> None:
    stdout = io.StringIO()
    Output(stdout, io.StringIO(), environ={}).table(
        ["name", "read", "failed"], [["Brand 1", 1234, Styled("2", "bad")], ["B2", 5, None]])
    assert stdout.getvalue().splitlines() == [
        "name      read  failed",
        "-------  -----  ------",
        "Brand 1  1,234       2",
        "B2           5       -",
    ]


def test_progress_is_redrawn_on_a_terminal_and_summed_up_otherwise(terminal: Terminal) -> None:
    with Output(io.StringIO(), terminal, environ={}).progress("reading") as progress:
        progress.add("read", 1000)
    assert "\r\x1b[K" in terminal.getvalue()
    assert terminal.getvalue().endswith("reading: 1,000 read (done in 0.0s)\n")
    piped = io.StringIO()
    with Output(io.StringIO(), piped, environ={}).progress("reading") as progress:
        progress.add("read", 3)
    assert piped.getvalue() == "reading: 3 read (done in 0.0s)\n"


# --- Service Bus counts ------------------------------------------------------------------------
class FakeAdmin:
    def __init__(self, answer: object) -> None:
        self.answer = answer

    def get_queue_runtime_properties(self, queue_name: str, **kwargs: Any) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_service_bus_counts_come_from_the_runtime_properties() -> None:
    counts = SimpleNamespace(active_message_count=7, dead_letter_message_count=2)
    assert ServiceBusQueueAdmin(FakeAdmin(counts), "ns").counts("optin-batches") == (7, 2)
    with pytest.raises(NotFound, match="queue optin-batches does not exist"):
        ServiceBusQueueAdmin(FakeAdmin(ResourceNotFoundError("gone")), "ns").counts(
            "optin-batches")
    refused = HttpResponseError("Unauthorized")
    refused.status_code = 401
    with pytest.raises(AuthFailed, match="Manage rights"):
        ServiceBusQueueAdmin(FakeAdmin(refused), "ns").counts("optin-batches")
    by_string = ServiceBusQueueAdmin.from_settings(QueueSettings(
        connection_string="Endpoint=sb://contoso.servicebus.windows.net/;"
                          "SharedAccessKeyName=ops;SharedAccessKey=a2V5"), None)
    assert by_string.where == "contoso.servicebus.windows.net"


# --- attention rules ----------------------------------------------------------------------------
NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def health_of(schedule: SyncSchedule, *runs: RunState) -> Health:
    account = EmailAccount("acc-1", "Brand 1", "2001", "api", "SECRET")
    kind = KINDS[schedule.sync_type]
    sync = SyncHealth(kind, ScheduleRow(schedule, "Brand 1 · ContactOptIn", True),
                      [RunRecord(kind, "acc-1", False, run) for run in runs], None)
    return Health(NOW, dt.timedelta(minutes=30), [
        AccountHealth(AccountRow(account, True), None, [sync])], [QueueHealth("q", 0, 0, 0)])


def run_state(started: dt.datetime, completed: dt.datetime | None) -> RunState:
    return RunState(key=SyncKey("acc-1", "ContactOptIn"), run_id="r1",
                    status=RunStatus.COMPLETED if completed else RunStatus.APPLYING,
                    since=started, until=started, dry_run=False, started_at=started,
                    batches_published=2, batches_applied=2 if completed else 1,
                    completed_at=completed, counters={}, etag="e")


def kinds_of(health: Health) -> list[str]:
    return [item.kind for item in attention_of(health)]


def test_overdue_ignored_and_stuck_schedules_need_attention_but_a_fresh_end_does_not() -> None:
    due_long_ago = SyncSchedule("s1", "acc-1", SyncType.CONTACT_OPT_IN, interval_minutes=60,
                                next_sync=NOW - dt.timedelta(hours=2))
    assert kinds_of(health_of(due_long_ago)) == ["overdue"]
    assert kinds_of(health_of(replace(due_long_ago,
                                      next_sync=NOW - dt.timedelta(minutes=5)))) == []

    impossible = SyncSchedule("s1", "acc-1", SyncType.CONTACT_OPT_IN, window_start=60,
                              window_end=60)
    assert kinds_of(health_of(impossible)) == ["schedule_ignored"]

    in_progress = SyncSchedule("s1", "acc-1", SyncType.CONTACT_OPT_IN,
                               status=SyncStatus.IN_PROGRESS)
    just_done = run_state(NOW - dt.timedelta(minutes=3), NOW - dt.timedelta(minutes=1))
    assert kinds_of(health_of(in_progress, just_done)) == []  # the row is being written back
    long_done = run_state(NOW - dt.timedelta(hours=3), NOW - dt.timedelta(hours=2))
    assert kinds_of(health_of(in_progress, long_done)) == ["stuck_schedule"]
    still_open = run_state(NOW - dt.timedelta(minutes=45), None)
    assert kinds_of(health_of(in_progress, still_open)) == ["stuck_run"]
