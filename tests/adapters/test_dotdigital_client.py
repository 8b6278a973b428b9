"""DotdigitalClient against the dotdigital emulator: regions, paging, faults, typed errors."""

from __future__ import annotations

import datetime as dt

import pytest

from emulators.cluster import EmulatorCluster
from shared.adapters.dotdigital.client import ApiCredentials, DotdigitalClient, RegionCache
from shared.adapters.http.policy import RetryPolicy
from shared.config import HttpSettings
from shared.errors import AuthFailed
from tests.adapters.conftest import admin

API_USER = "apiuser-test@apiconnector.com"
PASSWORD = "Passw0rd!local"


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
    pages = list(client.modified_contacts(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
    assert [len(page.items) for page in pages] == [5]
    client.account_info()
    assert client.stats.requests == 2  # one account-info, one page


@pytest.mark.exact_requests
def test_paging_reads_every_contact_once_and_stops_on_a_short_page(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [_account(2500)]})
    client = _client(cluster, http, fast_policy)
    pages = list(client.modified_contacts(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
    assert [page.skip for page in pages] == [0, 1000, 2000]
    emails = [item["email"] for page in pages for item in page.items]
    assert len(emails) == len(set(emails)) == 2500
    assert client.stats.requests == 1 + 3


def test_paging_resumes_from_a_checkpointed_skip(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [_account(2500)]})
    client = _client(cluster, http, fast_policy)
    since = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    resumed = list(client.modified_contacts(since, start_skip=2000))
    assert [len(page.items) for page in resumed] == [500]


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
                {"path": "/r*/v2/*", "status": 429, "retry_after": 1, "probability": 0.1},
                {"path": "/r*/v2/*", "status": 503, "probability": 0.05},
                {"path": "/r*/v2/*", "reset": True, "probability": 0.05},
            ],
        },
    )
    client = _client(cluster, http, fast_policy)
    for _ in range(5):
        pages = list(client.modified_contacts(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
        assert sum(len(page.items) for page in pages) == 3000
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
    with pytest.raises(ValueError):
        list(client.iter_pages("v2/contacts", select=0, operation="contacts"))
    with pytest.raises(ValueError):
        list(client.modified_contacts(dt.datetime(2025, 1, 1)))  # naive dates are ambiguous
    assert client.stats.requests == 0
