"""DataverseClient against the Dataverse emulator: lookups, paging, bulk writes, faults, errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from shared.adapters.dataverse import odata
from shared.adapters.dataverse.client import BulkUpdate, DataverseClient
from shared.adapters.http.policy import RetryPolicy
from shared.config import DataverseSettings, HttpSettings
from shared.domain.email import InvalidEmail, match_key
from shared.errors import AuthFailed, BadRequest, NotFound, WaitTooLong
from tests.adapters.conftest import admin

CRAFTED = [
    "o'brien@example.com",
    "first+tag@example.com",
    "a&b@example.com",
    "hash#tag@example.com",
    "per%cent@example.com",
    "ünïcødé@exämple.com",
    ("x" * 60) + "@" + ("long" * 6) + ".example.com",  # near the column's 100-character limit
]


def _contact(email: str, **extra: object) -> dict[str, object]:
    return {"contactid": str(uuid.uuid4()), "lastname": "Test", "emailaddress1": email, **extra}


@pytest.fixture
def client(
    dataverse_settings: DataverseSettings,
    http: HttpSettings,
    app_token: Callable[[], str],
    fast_policy: RetryPolicy,
) -> DataverseClient:
    return DataverseClient(dataverse_settings, http, app_token, policy=fast_policy)


def _seed(cluster: EmulatorCluster, contacts: list[dict[str, object]]) -> None:
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": contacts}})


Lookup = Callable[[DataverseClient, Sequence[str]], list[dict[str, Any]]]


def _by_batch(client: DataverseClient, emails: Sequence[str]) -> list[dict[str, Any]]:
    """The lookup ``DataverseCrmRecords`` makes: ``In`` queries chunked for the ``$batch`` URL
    budget, all read in one ``$batch``."""
    queries = client.where_in_queries("contacts", "emailaddress1", emails, select=["emailaddress1"])
    return [row for rows in client.iter_read_batch(queries) for row in rows]


def _by_get(client: DataverseClient, emails: Sequence[str]) -> list[dict[str, Any]]:
    """The same ``In`` queries chunked for the plain-GET URL limit and sent one GET each."""
    queries = client.where_in_queries(
        "contacts",
        "emailaddress1",
        emails,
        select=["emailaddress1"],
        max_url_chars=odata.MAX_URL_CHARS,
    )
    return [
        row
        for q in queries
        for row in client.iter_rows(
            q.entity_set, select=q.select, filter=q.filter, aliases=q.aliases
        )
    ]


@pytest.fixture(params=[_by_batch, _by_get], ids=["batch", "get"])
def lookup(request: pytest.FixtureRequest) -> Lookup:
    """Both ways the ``In`` queries reach the service: escaping and chunking must hold in each."""
    fn: Lookup = request.param
    return fn


def test_crafted_addresses_match_exactly_the_records_with_that_address(
    cluster: EmulatorCluster, client: DataverseClient, lookup: Lookup
) -> None:
    # Near misses that a broken escape or encoding would match instead (or as well).
    decoys = ["o'brien@example.co", "first tag@example.com", "a@example.com", "hash@example.com"]
    rows = [_contact(email) for email in CRAFTED + decoys]
    _seed(cluster, rows)
    for email in CRAFTED:
        found = lookup(client, [email])
        assert [row["emailaddress1"] for row in found] == [email]


def test_lookup_is_case_insensitive_and_finds_every_record_with_the_address(
    cluster: EmulatorCluster, client: DataverseClient, lookup: Lookup
) -> None:
    _seed(cluster, [_contact("Mixed.Case@Example.com"), _contact("mixed.case@example.com")])
    found = lookup(client, ["MIXED.case@example.COM"])
    assert len(found) == 2


def test_a_300_character_address_is_rejected_by_the_matching_rules_and_matches_nothing(
    cluster: EmulatorCluster, client: DataverseClient, lookup: Lookup
) -> None:
    long_address = ("x" * 60) + "@" + ("d" * 230) + ".com"
    assert len(long_address) > 290
    rejected = match_key(long_address)
    assert isinstance(rejected, InvalidEmail)
    assert rejected.reason == "longer than 254 characters"
    _seed(cluster, [_contact(("x" * 60) + "@example.com")])
    assert lookup(client, [long_address]) == []


def test_an_address_too_long_for_any_query_is_rejected_before_sending(
    cluster: EmulatorCluster, client: DataverseClient, lookup: Lookup
) -> None:
    before = admin(cluster, "dataverse", "GET", "stats")["requests"]
    # Longer than a $batch part's URL budget, so too long for either way of sending it.
    too_long = "a" * (odata.MAX_BATCH_URL_CHARS + 1)
    with pytest.raises(ValueError, match="too long"):
        lookup(client, [too_long])
    assert admin(cluster, "dataverse", "GET", "stats")["requests"] == before


def test_large_lookups_are_chunked_and_paged(
    cluster: EmulatorCluster, client: DataverseClient, lookup: Lookup
) -> None:
    emails = [f"user{i}@example.com" for i in range(1200)]
    _seed(cluster, [_contact(email) for email in emails])
    found = lookup(client, emails)
    assert sorted(row["emailaddress1"] for row in found) == sorted(emails)
    pages = list(client.iter_rows("contacts", select=["emailaddress1"], page_size=100))
    assert len(pages) == 1200
    assert len({row["contactid"] for row in pages}) == 1200


def test_long_lookup_values_are_chunked_to_keep_every_url_under_the_limit(
    cluster: EmulatorCluster, client: DataverseClient, lookup: Lookup
) -> None:
    # 250 values (the most per In list) of ~300 encoded characters make ~75,000: over both the
    # GET and the $batch part URL limits, so only chunking by URL length gets them through.
    real = [f"real{i}@example.com" for i in range(3)]
    _seed(cluster, [_contact(email) for email in real])
    unmatched = [f"{i:03d}{'x' * 270}@example.com" for i in range(250)]
    found = lookup(client, unmatched + real)
    assert sorted(row["emailaddress1"] for row in found) == real


@pytest.mark.exact_requests
def test_update_multiple_writes_every_row(
    cluster: EmulatorCluster, client: DataverseClient
) -> None:
    rows = [_contact(f"u{i}@example.com") for i in range(1500)]
    _seed(cluster, rows)
    client.update_multiple_tables([_bulk(rows)])
    updated = list(
        client.iter_rows("contacts", select=["donotbulkemail"], filter="donotbulkemail eq true")
    )
    assert len(updated) == 1500
    stats = admin(cluster, "dataverse", "GET", "stats")
    assert stats["by_route"]["bulk"] == 2  # 1500 rows: two UpdateMultiple calls of at most 1000


def test_update_multiple_falls_back_to_batch_when_the_table_does_not_support_it(
    cluster: EmulatorCluster, client: DataverseClient
) -> None:
    rows = [_contact(f"b{i}@example.com") for i in range(20)]
    _seed(cluster, rows)
    admin(cluster, "dataverse", "POST", "config", {"bulk_unsupported_tables": ["contact"]})
    client.update_multiple_tables([_bulk(rows)])
    updated = list(
        client.iter_rows("contacts", select=["donotbulkemail"], filter="donotbulkemail eq true")
    )
    assert len(updated) == 20


def test_update_of_a_missing_row_is_not_an_upsert(client: DataverseClient) -> None:
    with pytest.raises(NotFound):
        client.update("contacts", str(uuid.uuid4()), {"lastname": "Ghost"})
    assert list(client.iter_rows("contacts", select=["lastname"])) == []


def test_survives_throttling_and_connection_resets(
    cluster: EmulatorCluster, client: DataverseClient, sleeps: list[float]
) -> None:
    rows = [_contact(f"f{i}@example.com") for i in range(300)]
    _seed(cluster, rows)
    admin(
        cluster,
        "dataverse",
        "POST",
        "faults",
        {
            "seed": 3,
            "rules": [
                {"path": "/api/data/*", "status": 429, "retry_after": 1, "probability": 0.1},
                {"path": "/api/data/*", "reset": True, "probability": 0.05},
            ],
        },
    )
    emails = [str(row["emailaddress1"]) for row in rows]
    for start in range(0, 300, 10):
        chunk = emails[start : start + 10]
        found = _by_batch(client, chunk)
        assert sorted(r["emailaddress1"] for r in found) == sorted(chunk)
        client.update_multiple_tables(
            [
                BulkUpdate(
                    "contacts",
                    "contact",
                    "contactid",
                    [{"contactid": r["contactid"], "lastname": "Changed"} for r in found],
                )
            ]
        )
    changed = list(
        client.iter_rows("contacts", select=["lastname"], filter="lastname eq 'Changed'")
    )
    assert len(changed) == 300
    faults = admin(cluster, "dataverse", "GET", "stats")["faults_injected"]
    assert faults > 0 and client.stats.retries >= faults
    assert 1.05 in sleeps  # Retry-After (1 s) honoured, plus at most 10% jitter


@pytest.mark.exact_requests
def test_permanent_401_fails_fast_with_a_typed_error(
    dataverse_settings: DataverseSettings,
    http: HttpSettings,
    fast_policy: RetryPolicy,
    sleeps: list[float],
) -> None:
    client = DataverseClient(dataverse_settings, http, lambda: "not-a-token", policy=fast_policy)
    with pytest.raises(AuthFailed) as caught:
        list(client.iter_rows("contacts", select=["lastname"]))
    assert caught.value.system.value == "dataverse"
    assert caught.value.status == 401
    assert caught.value.request_id and caught.value.request_id in str(caught.value)
    assert sleeps == []
    assert client.stats.requests == 1


def test_a_wait_longer_than_a_function_may_hold_is_handed_back(
    cluster: EmulatorCluster, client: DataverseClient, sleeps: list[float]
) -> None:
    admin(
        cluster,
        "dataverse",
        "POST",
        "faults",
        {
            "rules": [
                {"path": "/api/data/*", "status": 429, "retry_after": 600},
            ]
        },
    )
    with pytest.raises(WaitTooLong) as caught:
        list(client.iter_rows("contacts", select=["lastname"]))
    assert caught.value.retry_after_s == 600
    assert sleeps == []


def test_error_names_the_system_and_the_request_id(
    cluster: EmulatorCluster, client: DataverseClient
) -> None:
    with pytest.raises(NotFound) as caught:
        list(
            client.iter_rows("Contacts", select=["lastname"])
        )  # entity set names are case-sensitive
    text = str(caught.value)
    assert text.startswith("dataverse")
    assert "0x8006088a" in text
    assert caught.value.request_id is None or caught.value.request_id in text


def test_requests_keep_working_with_verify_per_request(
    http: HttpSettings, cluster: EmulatorCluster
) -> None:
    # REQUESTS_CA_BUNDLE may be set in the environment; the client passes verify= every time.
    response = requests.get(
        f"{cluster.dataverse_server.base_url}/_emulator/stats", verify=http.verify, timeout=10
    )
    assert response.status_code == 200


def test_a_timed_out_read_is_retried(
    cluster: EmulatorCluster,
    dataverse_settings: DataverseSettings,
    http: HttpSettings,
    app_token: Callable[[], str],
    fast_policy: RetryPolicy,
) -> None:
    _seed(cluster, [_contact("slow@example.com")])
    admin(
        cluster,
        "dataverse",
        "POST",
        "faults",
        {
            "rules": [
                {"method": "GET", "path": "/api/data/v9.2/contacts", "delay_ms": 1500, "count": 1},
            ]
        },
    )
    impatient = DataverseClient(
        dataverse_settings, replace(http, timeout_s=0.5), app_token, policy=fast_policy
    )
    rows = list(impatient.iter_rows("contacts", select=["emailaddress1"]))
    assert [row["emailaddress1"] for row in rows] == ["slow@example.com"]
    assert impatient.stats.retries >= 1
    # The server still finishes the abandoned request; wait for it so that it is not counted
    # in the next test's statistics.
    for _ in range(100):
        if admin(cluster, "dataverse", "GET", "stats")["requests"] >= impatient.stats.requests:
            break
        time.sleep(0.05)


def _bulk(rows: list[dict[str, object]], entity_set: str = "contacts") -> BulkUpdate:
    logical, key = {"contacts": ("contact", "contactid"), "accounts": ("account", "accountid")}[
        entity_set
    ]
    return BulkUpdate(
        entity_set, logical, key, [{key: r[key], "donotbulkemail": True} for r in rows]
    )


def _accounts(n: int) -> list[dict[str, object]]:
    return [{"accountid": str(uuid.uuid4()), "name": f"A{i}"} for i in range(n)]


@pytest.mark.exact_requests
def test_several_tables_are_written_in_one_request(
    cluster: EmulatorCluster, client: DataverseClient
) -> None:
    contacts, accounts = [_contact(f"m{i}@example.com") for i in range(30)], _accounts(20)
    admin(
        cluster,
        "dataverse",
        "POST",
        "seed",
        {"tables": {"contacts": contacts, "accounts": accounts}},
    )
    before = admin(cluster, "dataverse", "GET", "stats")["requests"]
    client.update_multiple_tables([_bulk(contacts), _bulk(accounts, "accounts")])
    assert admin(cluster, "dataverse", "GET", "stats")["requests"] - before == 1
    written = list(
        client.iter_rows("contacts", select=["contactid"], filter="donotbulkemail eq true")
    )
    assert len(written) == 30
    written = list(
        client.iter_rows("accounts", select=["accountid"], filter="donotbulkemail eq true")
    )
    assert len(written) == 20


def test_a_table_without_bulk_support_falls_back_while_the_others_stay_bulk(
    cluster: EmulatorCluster, client: DataverseClient
) -> None:
    contacts, accounts = [_contact(f"n{i}@example.com") for i in range(10)], _accounts(10)
    admin(
        cluster,
        "dataverse",
        "POST",
        "seed",
        {"tables": {"contacts": contacts, "accounts": accounts}},
    )
    admin(cluster, "dataverse", "POST", "config", {"bulk_unsupported_tables": ["account"]})
    client.update_multiple_tables([_bulk(contacts), _bulk(accounts, "accounts")])
    for entity_set, key in (("contacts", "contactid"), ("accounts", "accountid")):
        written = list(client.iter_rows(entity_set, select=[key], filter="donotbulkemail eq true"))
        assert len(written) == 10


def test_a_failing_table_in_a_multi_table_write_raises_its_error(
    cluster: EmulatorCluster, client: DataverseClient
) -> None:
    contacts = [_contact(f"q{i}@example.com") for i in range(5)]
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"contacts": contacts}})
    ghost = BulkUpdate(
        "accounts", "account", "accountid", [{"accountid": str(uuid.uuid4()), "nosuchcolumn": 1}]
    )
    with pytest.raises(BadRequest) as caught:
        client.update_multiple_tables([_bulk(contacts), ghost])
    assert "nosuchcolumn" in str(caught.value)
