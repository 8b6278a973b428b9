"""DataverseCrmRecords against the Dataverse emulator: matching rules, writes, request counts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

import pytest

from emulators.cluster import EmulatorCluster
from shared.adapters.dataverse.client import DataverseClient, Query
from shared.adapters.dataverse.records import PADDED_FILTER, DataverseCrmRecords
from shared.adapters.http.policy import RetryPolicy
from shared.config import DataverseSettings, HttpSettings
from shared.domain.email import match_key
from shared.domain.model import OptInType
from shared.domain.optin import OptInUpdate, RecordValue, decide_updates
from shared.errors import NotFound
from tests.adapters.conftest import admin

ID = {"contacts": "contactid", "leads": "leadid", "accounts": "accountid"}


def _row(entity_set: str, email: str, opt_in: OptInType | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {ID[entity_set]: str(uuid.uuid4()), "emailaddress1": email}
    row.update({"contacts": {"lastname": "Test"}, "leads": {"lastname": "Test", "subject": "T"},
                "accounts": {"name": "Test"}}[entity_set])
    if opt_in is not None:
        row["ec_optintype"] = int(opt_in)
    return row


def _seed(cluster: EmulatorCluster, tables: dict[str, list[dict[str, Any]]]) -> None:
    admin(cluster, "dataverse", "POST", "seed", {"tables": tables})


def _stored(cluster: EmulatorCluster, entity_set: str) -> dict[str, int | None]:
    rows = admin(cluster, "dataverse", "GET", f"state?table={entity_set}")["tables"][entity_set]
    return {row[ID[entity_set]]: row.get("ec_optintype") for row in rows}


def _requests(cluster: EmulatorCluster) -> int:
    return int(admin(cluster, "dataverse", "GET", "stats")["requests"])


@pytest.fixture
def client(
    dataverse_settings: DataverseSettings, http: HttpSettings, app_token: Callable[[], str],
    fast_policy: RetryPolicy,
) -> DataverseClient:
    return DataverseClient(dataverse_settings, http, app_token, policy=fast_policy)


@pytest.fixture
def records(client: DataverseClient, app_token: Callable[[], str]) -> DataverseCrmRecords:
    app_token()  # the client's token is fetched (and cached) before the request counts start
    return DataverseCrmRecords(client)


def _keys(*emails: str) -> list[str]:
    keys = [match_key(email) for email in emails]
    assert all(isinstance(key, str) for key in keys)
    return [str(key) for key in keys]


def test_one_address_on_a_contact_a_lead_and_an_account_finds_and_updates_all_three(
    cluster: EmulatorCluster, records: DataverseCrmRecords
) -> None:
    contact = _row("contacts", "shared@example.com")
    lead = _row("leads", "Shared@Example.com", OptInType.SINGLE)
    account = _row("accounts", "SHARED@example.COM", OptInType.VERIFIED_DOUBLE)
    _seed(cluster, {"contacts": [contact], "leads": [lead], "accounts": [account]})
    found = records.find_by_email_keys(_keys("shared@example.com"))
    assert sorted((r.table, r.row_id, r.email_key, r.opt_in) for r in found) == sorted([
        ("contact", contact["contactid"], "shared@example.com", None),
        ("lead", lead["leadid"], "shared@example.com", OptInType.SINGLE),
        ("account", account["accountid"], "shared@example.com", OptInType.VERIFIED_DOUBLE),
    ])
    updates = decide_updates(found, {"shared@example.com": OptInType.DOUBLE})
    records.set_opt_in(updates)
    assert _stored(cluster, "contacts") == {contact["contactid"]: int(OptInType.DOUBLE)}
    assert _stored(cluster, "leads") == {lead["leadid"]: int(OptInType.DOUBLE)}
    # A lower type never replaces a higher one: the account was not written.
    assert _stored(cluster, "accounts") == {account["accountid"]: int(OptInType.VERIFIED_DOUBLE)}


def test_mixed_case_and_padded_addresses_in_dynamics_match(
    cluster: EmulatorCluster, records: DataverseCrmRecords
) -> None:
    rows = [
        _row("contacts", "Mixed.Case@Example.COM"),
        _row("contacts", "  padded@example.com"),
        _row("contacts", "trailing@example.com "),
        _row("accounts", " Both.Padded@Example.com  "),
        _row("contacts", "padded.other@example.com "),  # padded, but not asked for
    ]
    _seed(cluster, {"contacts": rows[:3] + rows[4:], "accounts": [rows[3]]})
    keys = _keys("mixed.case@example.com", "padded@example.com", "trailing@example.com",
                 "both.padded@example.com")
    found = records.find_by_email_keys(keys)
    assert sorted(r.row_id for r in found) == sorted(str(row[ID_OF(row)]) for row in rows[:4])
    assert {r.email_key for r in found} == set(keys)


def ID_OF(row: dict[str, Any]) -> str:  # noqa: N802 - reads as a column name
    return next(column for column in ID.values() if column in row)


CRAFTED = ["o'brien@example.com", "first+tag@example.com", "a&b@example.com",
           "hash#tag@example.com", "per%cent@example.com"]


def test_addresses_with_quotes_plus_ampersand_and_hash_match_exactly(
    cluster: EmulatorCluster, records: DataverseCrmRecords
) -> None:
    # Near misses a broken escape or encoding would match instead (or as well).
    decoys = ["o'brien@example.co", "first tag@example.com", "a@example.com", "hash@example.com",
              "first@example.com", "b@example.com", "per@example.com"]
    rows = {email: _row("contacts", email) for email in CRAFTED + decoys}
    _seed(cluster, {"contacts": list(rows.values())})
    for email in CRAFTED:
        found = records.find_by_email_keys(_keys(email))
        assert [r.row_id for r in found] == [rows[email]["contactid"]], email


def test_without_the_lead_table_leads_are_simply_absent(
    cluster: EmulatorCluster, records: DataverseCrmRecords
) -> None:
    contact = _row("contacts", "nolead@example.com")
    _seed(cluster, {"contacts": [contact]})
    admin(cluster, "dataverse", "POST", "config", {"lead_table_enabled": False})
    found = records.find_by_email_keys(_keys("nolead@example.com"))
    assert [(r.table, r.row_id) for r in found] == [("contact", contact["contactid"])]


@pytest.mark.exact_requests
def test_a_thousand_changes_cost_a_handful_of_requests(
    cluster: EmulatorCluster, records: DataverseCrmRecords
) -> None:
    emails = [f"user{i}@example.com" for i in range(1000)]
    tables = {
        "contacts": [_row("contacts", e) for e in emails[:600]],
        "leads": [_row("leads", e.upper()) for e in emails[600:800]],
        "accounts": [_row("accounts", e, OptInType.SINGLE) for e in emails[800:]]
        + [_row("accounts", " " + emails[0])],
    }
    _seed(cluster, tables)
    before = _requests(cluster)
    found = records.find_by_email_keys(_keys(*emails))
    assert _requests(cluster) - before == 1  # one $batch for every table, padded rows included
    assert len(found) == 1001
    records.set_opt_in(decide_updates(found, dict.fromkeys(_keys(*emails), OptInType.DOUBLE)))
    # 1 lookup + 1 $batch carrying one UpdateMultiple per table: 2 requests for 1001 changed.
    assert _requests(cluster) - before == 2
    assert set(_stored(cluster, "contacts").values()) == {int(OptInType.DOUBLE)}
    assert set(_stored(cluster, "leads").values()) == {int(OptInType.DOUBLE)}
    assert set(_stored(cluster, "accounts").values()) == {int(OptInType.DOUBLE)}


def _read_batch(
    client: DataverseClient, queries: Sequence[Query], *, absent_ok: Collection[str] = ()
) -> list[list[dict[str, Any]]]:
    """Every query's rows, each part consumed before the next is asked for (as the records do)."""
    return [list(rows) for rows in client.iter_read_batch(queries, absent_ok=absent_ok)]


def test_a_batched_read_that_pages_is_followed_to_the_end(
    cluster: EmulatorCluster, client: DataverseClient
) -> None:
    padded = [_row("contacts", f" p{i}@example.com") for i in range(30)]
    _seed(cluster, {"contacts": padded})
    queries = [
        Query("contacts", ("contactid", "emailaddress1"), PADDED_FILTER, page_size=7),
        Query("contacts", ("contactid",), "emailaddress1 eq 'nobody@example.com'"),
    ]
    paged, empty = _read_batch(client, queries)
    assert sorted(row["contactid"] for row in paged) == sorted(r["contactid"] for r in padded)
    assert empty == []


def test_a_failed_read_in_a_batch_raises_its_own_error(client: DataverseClient) -> None:
    with pytest.raises(NotFound) as caught:
        _read_batch(client, [Query("contacts", ("contactid",)), Query("Contacts", ("contactid",))])
    assert caught.value.status == 404
    assert _read_batch(client, [Query("Contacts", ("contactid",))], absent_ok={"Contacts"}) == [[]]


def test_bad_input_is_refused_before_any_request(
    cluster: EmulatorCluster, records: DataverseCrmRecords
) -> None:
    before = _requests(cluster)
    with pytest.raises(ValueError, match="match_key"):
        records.find_by_email_keys([" Not.A.Key@example.com"])
    record = RecordValue("contact", str(uuid.uuid4()), "a@example.com", None)
    bogus = RecordValue("opportunity", str(uuid.uuid4()), "a@example.com", None)
    with pytest.raises(ValueError, match="unknown CRM table"):
        records.set_opt_in([OptInUpdate(record, OptInType.DOUBLE),
                            OptInUpdate(bogus, OptInType.DOUBLE)])
    assert records.find_by_email_keys([]) == []
    records.set_opt_in([])
    assert _requests(cluster) == before
