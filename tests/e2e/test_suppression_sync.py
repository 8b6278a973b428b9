"""SuppressionLists through the whole app: dotdigital's suppressions as Email Suppression rows,
Do not bulk email, CRM-made suppressions pushed to dotdigital, resubscribers, dry runs, reruns
and what the logs may not show (architecture §1.1 C2)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.local_stack import LocalStack
from tests.e2e.conftest import (
    CRM,
    DOTDIGITAL,
    REASONS,
    crm_snapshot,
    dd_contact,
    flags,
    minute_text,
    notes_on,
    resubscribe_without_challenge,
    rows,
    stack_for,
    suppress,
    sync,
    when,
)
from tests.e2e.log_secrets import account_secrets, assert_no_secret_logged
from tests.e2e.org import Org, add_crm_suppression, add_suppression_schedule

PLAYED = {"unsub@example.com": "Unsubscribed", "bounce@example.com": "HardBounced",
          "isp@example.com": "IspComplained"}
DD_WRITE_ROUTES = ("suppress-contacts", "resubscribe", "unsubscribe")


@dataclass
class Played:
    stack: LocalStack
    org: Org
    records: dict[str, dict[str, str]]  # entity set -> address -> row id
    crm_rows: dict[str, str]
    first: dict[str, list[dict[str, Any]]]
    second: dict[str, list[dict[str, Any]]]
    second_dd_routes: dict[str, int]
    second_dataverse_routes: dict[str, int]


@pytest.fixture(scope="module")
def played() -> Iterator[Played]:
    """Brand 1 (Do not bulk email on) and Brand 2 (off): three played suppressions each, a
    contact, lead and account per address, and two suppressions made in CRM for Brand 1."""
    org = Org(email_accounts=2)
    org.tables["ec_emailaccounts"][0]["ec_updatedonotbulkemail"] = True
    for account in (0, 1):
        add_suppression_schedule(org, account)
    records: dict[str, dict[str, str]] = {"contacts": {}, "leads": {}, "accounts": {}}
    for email in PLAYED:
        for account, address in ((0, email), (1, "b2." + email)):
            org.add_dotdigital(account, address, "Single")
            for entity_set in records:
                records[entity_set][address] = org.add_crm(entity_set, address)
    org.add_dotdigital(0, "pushed@example.com", "Single")
    records["contacts"]["pushed@example.com"] = org.add_crm("contacts", "pushed@example.com")
    crm_rows = {
        "pushed": add_crm_suppression(org, 0, "pushed@example.com"),
        "unknown": add_crm_suppression(org, 0, "nobody@example.com"),
    }
    with stack_for(org.dataset()) as stack:
        for email, reason in PLAYED.items():
            suppress(stack, 0, email, reason)
            suppress(stack, 1, "b2." + email, reason)
        sync(stack)
        first = crm_snapshot(stack)
        stack.dotdigital.clear_stats()
        stack.dataverse.clear_stats()
        sync(stack)
        second = crm_snapshot(stack)
        yield Played(stack, org, records, crm_rows, first, second,
                     stack.dotdigital.stats()["by_route"], stack.dataverse.stats()["by_route"])


def test_unsubscribe_hard_bounce_and_complaint_become_rows_of_their_account(
    played: Played,
) -> None:
    stack, org = played.stack, played.org
    for account, prefix in ((0, ""), (1, "b2.")):
        found = rows(stack, org.ids[account])
        for email, reason in PLAYED.items():
            address = prefix + email
            row = found[address]
            dd = dd_contact(stack, account, address)
            assert dd["suppression"]["reason"] == reason
            assert row["ec_reason"] == REASONS[reason], address
            assert when(row["ec_suppressedon"]) == when(dd["suppression"]["dateRemoved"])
            assert row["ec_origin"] == DOTDIGITAL, address
            assert row["statecode"] == 0 and row["ec_resubscribedon"] is None, address
    # Brand 1: three played rows and its two CRM rows; Brand 2: its three played rows.
    assert len(rows(stack, org.ids[0])) == 5
    assert len(rows(stack, org.ids[1])) == 3


def test_do_not_bulk_email_is_set_only_where_the_account_option_is_on(played: Played) -> None:
    stack = played.stack
    for entity_set, by_address in played.records.items():
        current = flags(stack, entity_set)
        for email in PLAYED:
            assert current[by_address[email]] is True, (entity_set, email)
            assert current[by_address["b2." + email]] in (None, False), (entity_set, email)
    # Once pushed, dotdigital reports the CRM-made suppression back; the account's row is
    # active, so the flag follows it as for any other suppression.
    assert flags(stack, "contacts")[played.records["contacts"]["pushed@example.com"]] is True


def test_a_suppression_made_in_crm_is_suppressed_in_dotdigital_and_stamped(
    played: Played,
) -> None:
    stack = played.stack
    dd = dd_contact(stack, 0, "pushed@example.com")
    assert dd["status"] == "Suppressed"
    assert dd["suppression"]["reason"] == "Suppressed"
    row = rows(stack)["pushed@example.com"]
    assert row["ec_emailsuppressionid"] == played.crm_rows["pushed"]
    assert row["ec_pushedon"] is not None
    assert row["ec_origin"] == CRM and row["statecode"] == 0
    assert row["ec_resubscriptionstatus"] is None
    assert row["ec_suppressedon"] is not None


def test_a_crm_suppression_of_an_unknown_address_is_reported_and_not_retried(
    played: Played,
) -> None:
    stack = played.stack
    row = rows(stack)["nobody@example.com"]
    assert row["ec_pushedon"] is not None
    stamped = minute_text(when(row["ec_pushedon"]))
    assert row["ec_resubscriptionstatus"] == (
        f"Not suppressed in dotdigital: Brand 1 has no contact with this address ({stamped}).")
    assert row["statecode"] == 0
    # The second sync pushed nothing at all.
    assert "v2.contacts.suppress-contacts" not in played.second_dd_routes, \
        played.second_dd_routes
    first = {r["ec_emailsuppressionid"]: r for r in played.first["ec_emailsuppressions"]}
    assert first[played.crm_rows["unknown"]]["ec_pushedon"] == row["ec_pushedon"]


def test_the_same_sync_twice_changes_nothing_the_second_time(played: Played) -> None:
    # Rows, Notes and records are the same, to their version numbers: nothing was rewritten.
    assert played.second == played.first
    assert not [name for name in played.second_dd_routes
                if any(w in name for w in DD_WRITE_ROUTES)], played.second_dd_routes


# --- resubscribers ----------------------------------------------------------------------------
@dataclass
class Resubscribed:
    stack: LocalStack
    org: Org
    records: dict[str, str]  # "<entity set>:<address>" -> row id
    resubscribed_at: dict[str, str]  # address -> dotdigital LASTSUBSCRIBED
    after: dict[str, list[dict[str, Any]]]
    rerun: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def resubscribed() -> Iterator[Resubscribed]:
    """Both brands set Do not bulk email. back@ is suppressed by Brand 1 only; shared@ by both.
    Brand 1 then resubscribes both in dotdigital."""
    org = Org(email_accounts=2)
    for account in (0, 1):
        org.tables["ec_emailaccounts"][account]["ec_updatedonotbulkemail"] = True
        add_suppression_schedule(org, account)
    records: dict[str, str] = {}
    for address, accounts in (("back@example.com", (0,)), ("shared@example.com", (0, 1))):
        for account in accounts:
            org.add_dotdigital(account, address, "Single")
        for entity_set in ("contacts", "leads", "accounts"):
            records[f"{entity_set}:{address}"] = org.add_crm(entity_set, address)
    with stack_for(org.dataset()) as stack:
        suppress(stack, 0, "back@example.com", "Unsubscribed")
        suppress(stack, 0, "shared@example.com", "Unsubscribed")
        suppress(stack, 1, "shared@example.com", "HardBounced")
        sync(stack)
        for entity_set in ("contacts", "leads", "accounts"):
            current = flags(stack, entity_set)
            for address in ("back@example.com", "shared@example.com"):
                assert current[records[f"{entity_set}:{address}"]] is True
        at = {}
        for address in ("back@example.com", "shared@example.com"):
            assert resubscribe_without_challenge(stack, 0, address) == "ContactAdded"
            at[address] = dd_contact(stack, 0, address)["dataFields"]["LASTSUBSCRIBED"]
        sync(stack)
        after = crm_snapshot(stack)
        sync(stack)
        yield Resubscribed(stack, org, records, at, after, crm_snapshot(stack))


def test_a_resubscriber_row_becomes_inactive_with_its_date(resubscribed: Resubscribed) -> None:
    found = rows(resubscribed.stack, resubscribed.org.ids[0])
    for address in ("back@example.com", "shared@example.com"):
        row = found[address]
        assert (row["statecode"], row["statuscode"]) == (1, 2), address
        assert when(row["ec_resubscribedon"]) == when(resubscribed.resubscribed_at[address])
        assert row["ec_reason"] == REASONS["Unsubscribed"]
    other = rows(resubscribed.stack, resubscribed.org.ids[1])["shared@example.com"]
    assert other["statecode"] == 0 and other["ec_reason"] == REASONS["HardBounced"]


def test_a_resubscriber_gets_a_note_on_each_matching_record(resubscribed: Resubscribed) -> None:
    stack = resubscribed.stack
    for address in ("back@example.com", "shared@example.com"):
        date = minute_text(when(resubscribed.resubscribed_at[address]))
        for entity_set in ("contacts", "leads", "accounts"):
            notes = notes_on(stack, resubscribed.records[f"{entity_set}:{address}"])
            assert [n["notetext"] for n in notes] == [
                f"Resubscribed on {date} to Brand 1."], (entity_set, address)
            assert notes[0]["subject"] == "Resubscribed to Brand 1"


def test_do_not_bulk_email_is_cleared_unless_another_account_still_suppresses(
    resubscribed: Resubscribed,
) -> None:
    stack = resubscribed.stack
    for entity_set in ("contacts", "leads", "accounts"):
        current = flags(stack, entity_set)
        assert current[resubscribed.records[f"{entity_set}:back@example.com"]] is False
        assert current[resubscribed.records[f"{entity_set}:shared@example.com"]] is True


def test_a_resubscription_synced_again_writes_no_second_note(resubscribed: Resubscribed) -> None:
    assert resubscribed.rerun == resubscribed.after
    assert len(resubscribed.rerun["annotations"]) == 6


# --- dry run ------------------------------------------------------------------------------------
def test_a_dry_run_writes_nothing_to_dataverse_and_nothing_to_dotdigital() -> None:
    org = Org(email_accounts=1)
    org.tables["ec_emailaccounts"][0]["ec_updatedonotbulkemail"] = True
    schedule = add_suppression_schedule(org, 0)
    for address in ("gone@example.com", "pushed@example.com", "asks@example.com"):
        org.add_dotdigital(0, address, "Single")
        org.add_crm("contacts", address)
    add_crm_suppression(org, 0, "pushed@example.com")
    add_crm_suppression(org, 0, "nobody@example.com")
    asks = add_crm_suppression(org, 0, "asks@example.com", ec_requestresubscribe=True)
    with stack_for(org.dataset(), SYNC_DRY_RUN="true") as stack:
        suppress(stack, 0, "gone@example.com", "Unsubscribed")
        suppress(stack, 0, "asks@example.com", "Unsubscribed")
        before, dd_before = crm_snapshot(stack), stack.dotdigital.state()
        stack.dotdigital.clear_stats()
        sync(stack)
        assert crm_snapshot(stack) == before
        assert stack.dotdigital.state() == dd_before
        routes = stack.dotdigital.stats()["by_route"]
        assert not [name for name in routes if any(w in name for w in DD_WRITE_ROUTES)], routes
        assert "v2.contacts.suppressed-since" in routes, routes  # it did read
        assert rows(stack)["asks@example.com"]["ec_emailsuppressionid"] == asks
        done = next(s for s in stack.schedules() if s.row_id == schedule)
        assert done.last_sync is not None


# --- logs ---------------------------------------------------------------------------------------
def test_no_address_token_or_password_appears_in_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    org = Org(email_accounts=2)
    org.tables["ec_emailaccounts"][0]["ec_updatedonotbulkemail"] = True
    for account in (0, 1):
        add_suppression_schedule(org, account)
    addresses = ["Secret.Person@Example.com", "bounced.one@example.org", "pushed.two@example.net",
                 "asks.three@example.com", "back.four@example.com"]
    for address in addresses:
        org.add_dotdigital(0, address, "Single")
        org.add_crm("contacts", address)
        org.add_crm("leads", address)
    org.add_dotdigital(1, addresses[0], "Single")
    add_crm_suppression(org, 0, addresses[2])
    add_crm_suppression(org, 0, "unknown.five@example.com")
    caplog.set_level(logging.DEBUG)
    with stack_for(org.dataset()) as stack:
        suppress(stack, 0, addresses[0], "Unsubscribed")
        suppress(stack, 1, addresses[0], "Unsubscribed")
        suppress(stack, 0, addresses[1], "HardBounced")
        suppress(stack, 0, addresses[3], "Unsubscribed")
        suppress(stack, 0, addresses[4], "Suppressed")
        sync(stack)
        ask = rows(stack, org.ids[0])
        stack.dataverse.update_rows(
            "ec_emailsuppressions",
            {ask[a.lower()]["ec_emailsuppressionid"]: {"ec_requestresubscribe": True}
             for a in (addresses[1], addresses[3], addresses[4])},
            primary_key="ec_emailsuppressionid")
        resubscribe_without_challenge(stack, 0, addresses[0])
        sync(stack)
        secrets = [*(a.lower() for a in (*addresses, "unknown.five@example.com")),
                   *account_secrets(org.dataset()), stack.values["ENTRA_CLIENT_SECRET"]]
        notes = stack.dataverse.rows("annotations")
        assert len(notes) >= 4, notes  # the run really handled addresses
    assert_no_secret_logged(caplog, secrets, at_least=11)
