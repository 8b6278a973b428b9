"""DataverseCrmSuppressions against the Dataverse emulator: exact matching, one request per lookup
and per plan, all-or-nothing change sets (with and without bulk messages), and the round trips of
pushed rows and Request Resubscribe."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest

from emulators.cluster import EmulatorCluster
from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.suppressions import DataverseCrmSuppressions
from shared.adapters.http.policy import RetryPolicy
from shared.config import DataverseSettings, HttpSettings
from shared.domain.model import OptInType, SyncStatus, SyncType
from shared.domain.suppression import (
    FlagChange,
    FlagRecord,
    NewSuppressionRow,
    Note,
    RowChange,
    SuppressionOrigin,
    SuppressionPlan,
    SuppressionReason,
    SuppressionRow,
)
from shared.errors import BadRequest, NotFound, PreconditionFailed
from shared.services.ports import PushResult, RequestResult
from tests.adapters.conftest import admin

SCHEMA = Path(__file__).resolve().parents[2] / "infra" / "dynamics" / "schema.json"
SET_OF = {"contact": "contacts", "lead": "leads", "account": "accounts"}
AT = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
LATER = AT + dt.timedelta(days=2)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seed(cluster: EmulatorCluster, tables: dict[str, list[dict[str, Any]]]) -> None:
    admin(cluster, "dataverse", "POST", "seed", {"tables": tables})


def _state(cluster: EmulatorCluster, entity_set: str, **where: str) -> list[dict[str, Any]]:
    query = "".join(f"&{name}={value}" for name, value in where.items())
    rows: list[dict[str, Any]] = admin(
        cluster, "dataverse", "GET", f"state?table={entity_set}{query}")["tables"][entity_set]
    return rows


def _requests(cluster: EmulatorCluster) -> int:
    return int(admin(cluster, "dataverse", "GET", "stats")["requests"])


def _email_account(cluster: EmulatorCluster, name: str = "Brand") -> str:
    row_id = str(uuid.uuid4())
    _seed(cluster, {"ec_emailaccounts": [{"ec_emailaccountid": row_id, "ec_name": name}]})
    return row_id


def _row(email: str, account: str | None, **columns: Any) -> dict[str, Any]:
    row = {"ec_emailsuppressionid": str(uuid.uuid4()), "ec_emailaddress": email,
           "_ec_emailaccountid_value": account, **columns}
    if columns.get("statecode") == 1:
        row["statuscode"] = 2
    return row


def _record(table: str, email: str, **columns: Any) -> dict[str, Any]:
    required = {"contact": {"lastname": "Test"}, "lead": {"lastname": "Test", "subject": "T"},
                "account": {"name": "Test"}}[table]
    return {f"{table}id": str(uuid.uuid4()), "emailaddress1": email, **required, **columns}


@pytest.fixture
def client(
    dataverse_settings: DataverseSettings, http: HttpSettings, app_token: Callable[[], str],
    fast_policy: RetryPolicy,
) -> DataverseClient:
    app_token()  # the token is fetched (and cached) before the request counts start
    return DataverseClient(dataverse_settings, http, app_token, policy=fast_policy)


@pytest.fixture
def crm(client: DataverseClient) -> DataverseCrmSuppressions:
    return DataverseCrmSuppressions(client)


# --- the schema -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("choice", "enum"), [
    ("ec_optintype", OptInType), ("ec_synctype", SyncType), ("ec_syncstatus", SyncStatus),
    ("ec_suppressionreason", SuppressionReason), ("ec_suppressionorigin", SuppressionOrigin),
])
def test_the_domains_choice_values_are_the_schemas(choice: str, enum: type[IntEnum]) -> None:
    options = json.loads(SCHEMA.read_text(encoding="utf-8"))["choices"][choice]["options"]
    assert [option["value"] for option in options] == [int(member) for member in enum]
    if enum is SuppressionReason:  # the labels are dotdigital's names
        assert [option["label"] for option in options] == [
            reason.dotdigital_name for reason in SuppressionReason]


# --- lookup ---------------------------------------------------------------------------------------
def test_lookup_reads_every_accounts_rows_with_their_columns_and_drops_look_alikes(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions
) -> None:
    brand, other = _email_account(cluster), _email_account(cluster, "Other")
    active = _row("Jose@Example.com", brand, ec_reason=int(SuppressionReason.HARD_BOUNCED),
                  ec_suppressedon=_iso(AT), ec_origin=int(SuppressionOrigin.DOTDIGITAL))
    inactive = _row("  jose@example.com", other, statecode=1,
                    ec_reason=int(SuppressionReason.ADDED_IN_CRM), ec_suppressedon=_iso(AT),
                    ec_resubscribedon=_iso(LATER), ec_origin=int(SuppressionOrigin.CRM),
                    ec_pushedon=_iso(AT), ec_requestresubscribe=True,
                    ec_resubscriptionrequestedon=_iso(LATER),
                    ec_resubscriptionstatus="Confirmation email sent")
    crafted = _row("o'brien+x&y#z%@example.com", None)
    look_alikes = [_row("josé@example.com", brand), _row("JOSÉ@EXAMPLE.COM", other),
                   _row("o'brien@example.com", brand)]
    _seed(cluster, {"ec_emailsuppressions": [active, inactive, crafted, *look_alikes]})
    before = _requests(cluster)

    rows, records = crm.lookup(["jose@example.com", "o'brien+x&y#z%@example.com"],
                               with_records=False)

    assert _requests(cluster) - before == 1
    assert records == []
    assert sorted(rows, key=lambda row: row.email) == [
        SuppressionRow(inactive["ec_emailsuppressionid"], "  jose@example.com", "jose@example.com",
                       other, False, SuppressionReason.ADDED_IN_CRM, AT, LATER,
                       SuppressionOrigin.CRM, AT, True, LATER, "Confirmation email sent"),
        SuppressionRow(active["ec_emailsuppressionid"], "Jose@Example.com", "jose@example.com",
                       brand, True, SuppressionReason.HARD_BOUNCED, AT,
                       origin=SuppressionOrigin.DOTDIGITAL),
        SuppressionRow(crafted["ec_emailsuppressionid"], "o'brien+x&y#z%@example.com",
                       "o'brien+x&y#z%@example.com", None, True),
    ]


def test_lookup_with_records_finds_contacts_leads_and_accounts_by_exact_key(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions
) -> None:
    contact = _record("contact", "Ann@Example.com", donotbulkemail=True)
    lead = _record("lead", " ann@example.com")
    account = _record("account", "ann@example.com ")
    look_alike = _record("contact", "ånn@example.com")
    row = _row("ann@example.com", _email_account(cluster))
    _seed(cluster, {"contacts": [contact, look_alike], "leads": [lead], "accounts": [account],
                    "ec_emailsuppressions": [row]})
    before = _requests(cluster)

    rows, records = crm.lookup(["ann@example.com"], with_records=True)

    assert _requests(cluster) - before == 1  # the rows and every table's records in one $batch
    assert [r.row_id for r in rows] == [row["ec_emailsuppressionid"]]
    assert sorted(records, key=lambda r: r.table) == [
        FlagRecord("account", account["accountid"], "ann@example.com", False),
        FlagRecord("contact", contact["contactid"], "ann@example.com", True),
        FlagRecord("lead", lead["leadid"], "ann@example.com", False),
    ]
    admin(cluster, "dataverse", "POST", "config", {"lead_table_enabled": False})
    _, records = crm.lookup(["ann@example.com"], with_records=True)
    assert sorted(r.table for r in records) == ["account", "contact"]


# --- apply ----------------------------------------------------------------------------------------
def _world(cluster: EmulatorCluster) -> dict[str, Any]:
    """An account, one active row to deactivate and a contact, a lead and an account on it."""
    brand = _email_account(cluster)
    row = _row("back@example.com", brand, ec_reason=int(SuppressionReason.UNSUBSCRIBED),
               ec_suppressedon=_iso(AT), ec_origin=int(SuppressionOrigin.DOTDIGITAL))
    records = {table: _record(table, "back@example.com", donotbulkemail=True)
               for table in SET_OF}
    _seed(cluster, {"ec_emailsuppressions": [row],
                    **{SET_OF[table]: [record] for table, record in records.items()}})
    return {"brand": brand, "row": row["ec_emailsuppressionid"],
            "records": {table: record[f"{table}id"] for table, record in records.items()}}


def _resubscription_plan(world: dict[str, Any], created: int = 2) -> SuppressionPlan:
    text = f"Resubscribed on {LATER:%Y-%m-%d %H:%M} UTC to Brand."
    return SuppressionPlan(
        create=[NewSuppressionRow(f"new{i}@example.com", SuppressionReason.SOFT_BOUNCED, AT)
                for i in range(created)],
        change=[RowChange(world["row"], False, SuppressionReason.UNSUBSCRIBED, AT, LATER, text)],
        notes=[Note(table, row_id, "Resubscribed to Brand", text, with_change=world["row"])
               for table, row_id in sorted(world["records"].items())],
        flags=[FlagChange(table, row_id, False)
               for table, row_id in sorted(world["records"].items())],
    )


def _assert_written(cluster: EmulatorCluster, world: dict[str, Any], created: int = 2) -> None:
    rows = {row["ec_emailaddress"]: row for row in _state(cluster, "ec_emailsuppressions")}
    assert len(rows) == created + 1
    for i in range(created):
        new = rows[f"new{i}@example.com"]
        assert (new["_ec_emailaccountid_value"], new["ec_origin"], new["ec_reason"],
                new["ec_suppressedon"], new["statecode"]) == (
            world["brand"], int(SuppressionOrigin.DOTDIGITAL),
            int(SuppressionReason.SOFT_BOUNCED), _iso(AT), 0)
    changed = rows["back@example.com"]
    assert (changed["statecode"], changed["statuscode"], changed["ec_resubscribedon"]) == (
        1, 2, _iso(LATER))
    assert changed["ec_resubscriptionstatus"].startswith("Resubscribed on")
    notes = _state(cluster, "annotations")
    assert sorted((n["objecttypecode"], n["_objectid_value"]) for n in notes) == sorted(
        world["records"].items())
    assert {n["subject"] for n in notes} == {"Resubscribed to Brand"}
    for table, row_id in world["records"].items():
        (record,) = _state(cluster, SET_OF[table])
        assert (record[f"{table}id"], record["donotbulkemail"]) == (row_id, False)


@pytest.mark.exact_requests
def test_apply_writes_new_rows_changes_notes_and_flags_in_one_request(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions
) -> None:
    world = _world(cluster)
    before = _requests(cluster)
    crm.apply(world["brand"], _resubscription_plan(world))
    assert _requests(cluster) - before == 1
    _assert_written(cluster, world)
    rows, _ = crm.lookup(["new0@example.com", "back@example.com"], with_records=False)
    assert sorted((r.email_key, r.active, r.email_account_id) for r in rows) == [
        ("back@example.com", False, world["brand"]), ("new0@example.com", True, world["brand"])]


def test_a_plan_applied_twice_at_once_writes_its_rows_and_notes_once(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions
) -> None:
    # Two consumers of one batch (a lock lost mid-batch) plan the same writes from the same
    # lookup; the second change set fails whole on the ids the first wrote, and is retried.
    world = _world(cluster)
    plan = _resubscription_plan(world)
    crm.apply(world["brand"], plan)
    with pytest.raises(PreconditionFailed):
        crm.apply(world["brand"], plan)
    _assert_written(cluster, world)
    assert len(_state(cluster, "annotations")) == len(world["records"])


def test_apply_is_all_or_nothing(cluster: EmulatorCluster, crm: DataverseCrmSuppressions) -> None:
    world = _world(cluster)
    plan = _resubscription_plan(world)
    plan.change.append(RowChange(str(uuid.uuid4()), True, SuppressionReason.UNSUBSCRIBED, AT,
                                 None, None))  # a row deleted since it was read
    before = admin(cluster, "dataverse", "GET", "state")
    with pytest.raises(NotFound):
        crm.apply(world["brand"], plan)
    assert admin(cluster, "dataverse", "GET", "state") == before


@pytest.mark.exact_requests
@pytest.mark.parametrize(("refusing", "learning"), [
    (["annotation"], 1),
    (["ec_emailsuppression", "annotation", "contact", "lead", "account"], 2),
])
def test_tables_refusing_bulk_messages_get_their_rows_one_by_one_in_the_same_change_set(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions, refusing: list[str], learning: int
) -> None:
    admin(cluster, "dataverse", "POST", "config", {"bulk_unsupported_tables": refusing})
    world = _world(cluster)
    before = _requests(cluster)
    crm.apply(world["brand"], _resubscription_plan(world))
    # Each refusal rolls the change set back and is learnt: one more request per bulk call
    # refused (the new rows, the Notes; the one row change and the flags, one row a table, are
    # never sent as bulk messages); then one change set.
    assert _requests(cluster) - before == learning + 1
    _assert_written(cluster, world)

    again = _world(cluster)
    before = _requests(cluster)
    crm.apply(again["brand"], _resubscription_plan(again, created=0))
    assert _requests(cluster) - before == 1  # the refusals are remembered


@pytest.mark.exact_requests
def test_a_plan_larger_than_a_change_set_keeps_every_row_change_with_its_notes(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions
) -> None:
    admin(cluster, "dataverse", "POST", "config", {"bulk_unsupported_tables": ["annotation"]})
    brand = _email_account(cluster)
    contacts = [_record("contact", f"c{i}@example.com") for i in range(3)]
    rows = [_row(f"r{i}@example.com", brand, ec_suppressedon=_iso(AT)) for i in range(400)]
    _seed(cluster, {"contacts": contacts, "ec_emailsuppressions": rows})
    plan = SuppressionPlan()
    for i, row in enumerate(rows):  # 400 deactivations with 3 Notes each: 1200 Notes in all
        text = f"resubscription {i}"
        plan.change.append(RowChange(row["ec_emailsuppressionid"], False, None, AT, LATER, text))
        plan.notes += [Note("contact", c["contactid"], "Resubscribed", text,
                            with_change=row["ec_emailsuppressionid"]) for c in contacts]
    # The last change set fails: a flag on a contact deleted since the lookup.
    plan.flags.append(FlagChange("contact", str(uuid.uuid4()), True))
    before = _requests(cluster)
    with pytest.raises(NotFound):
        crm.apply(brand, plan)
    # 1 refusal learnt; then change sets of at most 1000 operations: 333 row changes with their
    # 999 Notes (one UpdateMultiple), and the other 67 with the flag, which fails whole.
    assert _requests(cluster) - before == 3
    inactive = {row["ec_resubscriptionstatus"] for row in _state(cluster, "ec_emailsuppressions")
                if row["statecode"] == 1}
    notes: dict[str, int] = {}
    for note in _state(cluster, "annotations"):
        notes[note["notetext"]] = notes.get(note["notetext"], 0) + 1
    assert len(inactive) == 333
    assert notes == dict.fromkeys(inactive, 3)  # never a row change without its Notes

    # One row change whose Notes cannot fit one change set is refused before any request.
    before = _requests(cluster)
    too_many = SuppressionPlan(
        change=[RowChange(rows[0]["ec_emailsuppressionid"], False, None, AT, LATER, "x")],
        notes=[Note("contact", contacts[0]["contactid"], "s", "x",
                    with_change=rows[0]["ec_emailsuppressionid"])] * 1000)
    with pytest.raises(BadRequest, match="change set"):
        crm.apply(brand, too_many)
    assert _requests(cluster) == before


@pytest.mark.exact_requests
@pytest.mark.parametrize(("refusing", "learning"), [([], 0), (["annotation"], 1)])
def test_a_thousand_addresses_cost_one_lookup_and_one_write(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions, refusing: list[str], learning: int
) -> None:
    admin(cluster, "dataverse", "POST", "config", {"bulk_unsupported_tables": refusing})
    brand = _email_account(cluster)
    back = [_row(f"back{i}@example.com", brand, ec_suppressedon=_iso(AT)) for i in range(300)]
    contacts = [_record("contact", f"back{i}@example.com") for i in range(300)]
    contacts += [_record("contact", f"new{i}@example.com") for i in range(300)]
    _seed(cluster, {"ec_emailsuppressions": back, "contacts": contacts})
    keys = [f"back{i}@example.com" for i in range(300)] + [f"new{i}@example.com"
                                                           for i in range(700)]
    before = _requests(cluster)
    rows, records = crm.lookup(keys, with_records=True)
    assert (len(rows), len(records)) == (300, 600)
    plan = SuppressionPlan(
        create=[NewSuppressionRow(key, SuppressionReason.HARD_BOUNCED, AT) for key in keys[300:]],
        change=[RowChange(row.row_id, False, None, AT, LATER, f"back {row.email}")
                for row in rows],
        notes=[Note("contact", record.row_id, "Resubscribed", f"back {record.email_key}")
               for record in records if record.email_key.startswith("back")],
        flags=[FlagChange("contact", record.row_id, record.email_key.startswith("new"))
               for record in records],
    )
    crm.apply(brand, plan)
    # 1000 addresses, 1000 rows written, 300 Notes, 600 flags: one lookup and one change set
    # (Notes sent one by one still fit it), after the request that learns a refusal.
    assert _requests(cluster) - before == 2 + learning
    assert len(_state(cluster, "annotations")) == 300
    assert len(_state(cluster, "ec_emailsuppressions", statecode="0")) == 700


def test_bad_input_is_refused_before_any_request(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions
) -> None:
    brand = _email_account(cluster)
    before = _requests(cluster)
    with pytest.raises(ValueError, match="match_key"):
        crm.lookup([" Not.A.Key@example.com"], with_records=True)
    flag = FlagChange("contact", str(uuid.uuid4()), True)
    bad_plans = [
        ("not-a-guid", SuppressionPlan(flags=[flag])),
        (brand, SuppressionPlan(flags=[FlagChange("contact", "1 or 1=1", True)])),
        (brand, SuppressionPlan(flags=[FlagChange("ec_emailsuppression", str(uuid.uuid4()),
                                                  True)])),
        (brand, SuppressionPlan(notes=[Note("opportunity", str(uuid.uuid4()), "s", "t")])),
    ]
    for account, plan in bad_plans:
        with pytest.raises(ValueError):
            crm.apply(account, plan)
    with pytest.raises(ValueError):
        crm.unpushed_rows("') or true or ('")
    assert crm.lookup([], with_records=True) == ([], [])
    assert _requests(cluster) == before


# --- CRM-made rows and Request Resubscribe --------------------------------------------------------
def test_unpushed_rows_are_the_accounts_active_crm_rows_until_marked_pushed(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions
) -> None:
    brand, other = _email_account(cluster), _email_account(cluster, "Other")
    crm_made = _row("user@example.com", brand, ec_origin=int(SuppressionOrigin.CRM))
    no_origin = _row("Typed@Example.com ", brand)
    not_wanted = [
        _row("dd@example.com", brand, ec_origin=int(SuppressionOrigin.DOTDIGITAL)),
        _row("pushed@example.com", brand, ec_pushedon=_iso(AT)),
        _row("inactive@example.com", brand, statecode=1),
        _row("theirs@example.com", other),
    ]
    _seed(cluster, {"ec_emailsuppressions": [crm_made, no_origin, *not_wanted]})

    unpushed = crm.unpushed_rows(brand)

    assert sorted((r.row_id, r.email_key, r.made_in_crm) for r in unpushed) == sorted([
        (crm_made["ec_emailsuppressionid"], "user@example.com", True),
        (no_origin["ec_emailsuppressionid"], "typed@example.com", True),
    ])
    crm.mark_pushed([
        PushResult(crm_made["ec_emailsuppressionid"], LATER, None, None),
        PushResult(no_origin["ec_emailsuppressionid"], LATER, AT, "Not found in dotdigital"),
    ])
    assert crm.unpushed_rows(brand) == []
    stored = {row["ec_emailsuppressionid"]: row for row in _state(cluster, "ec_emailsuppressions")}
    first, second = (stored[row["ec_emailsuppressionid"]] for row in (crm_made, no_origin))
    assert (first["ec_pushedon"], first["ec_suppressedon"],
            first["ec_resubscriptionstatus"]) == (_iso(LATER), None, None)
    assert (second["ec_pushedon"], second["ec_suppressedon"],
            second["ec_resubscriptionstatus"]) == (_iso(LATER), _iso(AT), "Not found in dotdigital")


@pytest.mark.exact_requests
def test_a_handled_request_clears_the_tick_and_adds_a_note_on_the_row_in_one_request(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions
) -> None:
    brand, other = _email_account(cluster), _email_account(cluster, "Other")
    ticked = _row("again@example.com", brand, ec_requestresubscribe=True)
    _seed(cluster, {"ec_emailsuppressions": [
        ticked, _row("quiet@example.com", brand),
        _row("theirs@example.com", other, ec_requestresubscribe=True)]})
    (request,) = crm.resubscribe_requests(brand)
    assert (request.row_id, request.request_resubscribe) == (
        ticked["ec_emailsuppressionid"], True)

    status = f"Confirmation email sent on {LATER:%Y-%m-%d %H:%M} UTC."
    note = Note("ec_emailsuppression", request.row_id, "Resubscribe requested", status)
    before = _requests(cluster)
    crm.record_requests([RequestResult(request.row_id, status, note, LATER)])
    assert _requests(cluster) - before == 1  # one $batch: the row and its Note together

    assert crm.resubscribe_requests(brand) == []
    (row,) = _state(cluster, "ec_emailsuppressions", ec_emailaddress="again@example.com")
    assert (row["ec_requestresubscribe"], row["ec_resubscriptionstatus"],
            row["ec_resubscriptionrequestedon"]) == (False, status, _iso(LATER))
    (written,) = _state(cluster, "annotations")
    assert (written["objecttypecode"], written["_objectid_value"], written["subject"],
            written["notetext"]) == ("ec_emailsuppression", request.row_id,
                                     "Resubscribe requested", status)


def test_a_request_is_written_all_or_nothing(
    cluster: EmulatorCluster, crm: DataverseCrmSuppressions
) -> None:
    ticked = _row("again@example.com", _email_account(cluster), ec_requestresubscribe=True)
    _seed(cluster, {"ec_emailsuppressions": [ticked]})
    row_id = ticked["ec_emailsuppressionid"]
    # The row's update succeeds; its Note, bound to a row that does not exist, fails.
    note = Note("ec_emailsuppression", str(uuid.uuid4()), "Resubscribe requested", "Sent.")
    with pytest.raises(NotFound):
        crm.record_requests([RequestResult(row_id, "Sent.", note, LATER)])
    (row,) = _state(cluster, "ec_emailsuppressions")
    assert (row["ec_requestresubscribe"], row["ec_resubscriptionstatus"]) == (True, None)
    assert _state(cluster, "annotations") == []
