"""DotdigitalClient against the dotdigital emulator: regions, v3 marker paging, faults, typed
errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from shared.adapters.dotdigital.client import (
    MAX_V3_LIMIT,
    ApiCredentials,
    DotdigitalClient,
    RegionCache,
)
from shared.adapters.dotdigital.platform import DotdigitalEmailPlatform
from shared.adapters.http.policy import RetryPolicy
from shared.config import DotdigitalSettings, HttpSettings
from shared.domain.commands import OptInChange
from shared.domain.model import EmailAccount
from shared.errors import AuthFailed
from tests.adapters.conftest import admin

API_USER = "apiuser-test@apiconnector.com"
PASSWORD = "Passw0rd!local"
SINCE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def email_of(item: dict[str, Any]) -> str:
    email: str = item["identifiers"]["email"]
    return email


def opt_in_of(item: dict[str, Any]) -> str:
    opt_in: str = item["channelProperties"]["email"]["optInType"]
    return opt_in


def upsert(api_endpoint: str, ca_bundle: str, contact: dict[str, str]) -> None:
    """``POST /v2/contacts``, tried again through the faults a faulty run injects."""
    for _ in range(20):
        try:
            response = requests.post(api_endpoint + "v2/contacts", json=contact,
                                     auth=(API_USER, PASSWORD), verify=ca_bundle, timeout=30)
        except requests.ConnectionError:
            continue
        if response.status_code in (200, 201):
            return
        assert response.status_code == 429, response.text
    raise AssertionError("the contact could not be changed through the faults")


def _account(contacts: int, region: str = "r2") -> dict[str, object]:
    modified = "2026-01-01T00:00:00.000Z"
    return {
        "id": 2001,
        "apiUser": API_USER,
        "password": PASSWORD,
        "region": region,
        "name": "Adapter test",
        "contacts": [
            {
                "id": 10_000 + i,
                "email": f"c{i}@example.com",
                "optInType": "Double",
                "emailType": "Html",
                "status": "Subscribed",
                "created": modified,
                "modified": modified,
            }
            for i in range(contacts)
        ],
    }


def _client(
    cluster: EmulatorCluster, http: HttpSettings, policy: RetryPolicy, password: str = PASSWORD
) -> DotdigitalClient:
    info_url = cluster.describe()["dotdigital"]["account_info_url"]
    return DotdigitalClient(
        info_url, ApiCredentials(API_USER, password), http, policy=policy, regions=RegionCache()
    )


@pytest.mark.exact_requests
def test_region_is_discovered_once_and_used(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [_account(5)]})
    client = _client(cluster, http, fast_policy)
    info = client.account_info()
    assert info.account_id == 2001
    assert info.api_endpoint.endswith("/r2/")
    pages = list(client.modified_contacts(SINCE))
    assert [len(page.items) for page in pages] == [5]
    assert pages[0].next_marker is None
    client.account_info()
    assert client.stats.requests == 2  # one account-info, one page


@pytest.mark.exact_requests
@pytest.mark.parametrize(("contacts", "sizes"), [(2500, [1000, 1000, 500]),
                                                 (2000, [1000, 1000]), (0, [0])])
def test_paging_reads_every_contact_once_and_stops_at_the_page_without_a_next_marker(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy, contacts: int,
    sizes: list[int],
) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [_account(contacts)]})
    client = _client(cluster, http, fast_policy)
    pages = list(client.modified_contacts(SINCE))
    assert [len(page.items) for page in pages] == sizes
    assert [page.next_marker is None for page in pages] == [False] * (len(sizes) - 1) + [True]
    emails = [email_of(item) for page in pages for item in page.items]
    assert len(emails) == len(set(emails)) == contacts
    assert {opt_in_of(item) for page in pages for item in page.items} <= {"Double"}
    assert client.stats.requests == 1 + len(sizes)  # no request after the last page


def test_paging_resumes_from_a_checkpointed_marker(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [_account(2500)]})
    client = _client(cluster, http, fast_policy)
    pages = list(client.modified_contacts(SINCE))
    resumed = list(client.modified_contacts(SINCE, marker=pages[1].next_marker))
    assert [len(page.items) for page in resumed] == [500]
    assert [email_of(i) for i in resumed[0].items] == [email_of(i) for i in pages[2].items]
    smaller = list(client.modified_contacts(SINCE, marker=pages[0].next_marker, limit=700))
    assert [len(page.items) for page in smaller] == [700, 700, 100]


def test_a_contact_changed_while_paging_moves_behind_the_marker_and_none_is_skipped(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> None:
    account = _account(2500)
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [account]})
    client = _client(cluster, http, fast_policy)
    pages = client.modified_contacts(SINCE)
    first = next(pages)
    # A contact of the page already read is changed through the API, as a form would.
    upsert(client.account_info().api_endpoint, cluster.ca_bundle,
           {"email": "c5@example.com", "optInType": "VerifiedDouble", "emailType": "Html"})
    rest = list(pages)
    read = [(email_of(i), opt_in_of(i)) for page in [first, *rest] for i in page.items]
    assert {email for email, _ in read} == {f"c{i}@example.com" for i in range(2500)}
    assert len(read) == 2501  # read again behind the marker, and no other contact skipped
    assert read[-1] == ("c5@example.com", "VerifiedDouble")


def test_survives_rate_limits_and_resets(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [_account(3000)]})
    admin(
        cluster,
        "dotdigital",
        "POST",
        "faults",
        {
            "seed": 5,
            "rules": [
                {"path": "/r*/contacts/v3", "status": 429, "retry_after": 1,
                 "probability": 0.1},
                {"path": "/r*/contacts/v3", "status": 503, "probability": 0.05},
                {"path": "/r*/contacts/v3", "reset": True, "probability": 0.05},
            ],
        },
    )
    client = _client(cluster, http, fast_policy)
    for _ in range(5):
        pages = list(client.modified_contacts(SINCE))
        assert sum(len(page.items) for page in pages) == 3000
        assert len({email_of(i) for page in pages for i in page.items}) == 3000
    assert admin(cluster, "dotdigital", "GET", "stats")["faults_injected"] > 0


@pytest.mark.exact_requests
def test_bad_credentials_fail_fast_with_a_typed_error(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy, sleeps: list[float]
) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [_account(1)]})
    client = _client(cluster, http, fast_policy, password="wrong-password1")
    with pytest.raises(AuthFailed) as caught:
        client.account_info()
    assert caught.value.status == 401
    assert "Authorization has been denied" in str(caught.value)
    assert sleeps == [] and client.stats.requests == 1


def test_paging_arguments_are_validated_before_any_request(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> None:
    client = _client(cluster, http, fast_policy)
    for limit in (0, MAX_V3_LIMIT + 1):
        with pytest.raises(ValueError):
            list(client.iter_marker_pages("contacts/v3", params={}, limit=limit, marker=None,
                                          operation="contacts"))
        with pytest.raises(ValueError):
            list(client.modified_contacts(SINCE, limit=limit))
    with pytest.raises(ValueError):
        list(client.modified_contacts(dt.datetime(2025, 1, 1)))  # naive dates are ambiguous
    assert client.stats.requests == 0


@pytest.mark.exact_requests
def test_the_platform_reads_opt_in_changes_page_by_page_from_a_marker(
    cluster: EmulatorCluster, http: HttpSettings
) -> None:
    seeded = _account(5)
    seeded["contacts"][1]["optInType"] = "VerifiedDouble"  # type: ignore[index]
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [seeded]})
    info_url = cluster.describe()["dotdigital"]["account_info_url"]
    platform = DotdigitalEmailPlatform(DotdigitalSettings(info_url), http,
                                       {"DD_SECRET_TEST": PASSWORD})
    account = EmailAccount(row_id="acc-1", name="Adapter test", dotdigital_account_id="2001",
                           api_user=API_USER, secret_name="DD_SECRET_TEST")

    pages = list(platform.modified_contacts(account, SINCE, page_size=2))

    assert [len(page.contacts) for page in pages] == [2, 2, 1]
    assert pages[0].contacts == [OptInChange("c0@example.com", "Double"),
                                 OptInChange("c1@example.com", "VerifiedDouble")]
    assert pages[-1].next_marker is None
    resumed = list(platform.modified_contacts(account, SINCE, marker=pages[0].next_marker))
    assert [c.email for page in resumed for c in page.contacts] == [
        f"c{i}@example.com" for i in range(2, 5)]
