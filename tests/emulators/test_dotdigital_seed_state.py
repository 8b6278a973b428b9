"""dotdigital admin: strict seeds (all or nothing), the filtered state view, export round trip."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin

USER, PASSWORD = "apiuser-seed@apiconnector.com", "Secr3t-pass"


def account(**extra: Any) -> dict[str, Any]:
    return {"id": 1001, "apiUser": USER, "password": PASSWORD, "region": "r1", **extra}


def post_seed(cluster: EmulatorCluster, payload: Any) -> requests.Response:
    return requests.post(f"{cluster.dotdigital_server.base_url}/_emulator/seed", json=payload,
                         verify=cluster.ca_bundle, timeout=30)


def test_seed_reports_what_it_loaded(cluster: EmulatorCluster) -> None:
    response = post_seed(cluster, {"accounts": [account(
        contacts=[{"email": "a@example.com"}, {"email": "b@example.com", "status": "HardBounced"}],
        suppressions=[{"email": "c@example.com", "reason": "Unsubscribed"}],
    )]})
    assert response.status_code == 200
    seeded = response.json()["seeded"]
    assert (seeded["accounts"], seeded["contacts"], seeded["suppressions"]) == (1, 3, 2)


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"accounts": [account(region="eu")]}, "accounts[0].region"),
        ({"accounts": [account(id="x")]}, "accounts[0].id"),
        ({"accounts": [{"id": 5}]}, "needs apiUser"),
        ({"accounts": [account(contacts=[{"email": "bad"}])]}, "accounts[0].contacts[0].email"),
        ({"accounts": [account(contacts=[{"email": "a@example.com"},
                                         {"email": "A@EXAMPLE.com"}])]},
         "accounts[0].contacts[1].email"),
        ({"accounts": [account(contacts=[{"email": "a@example.com", "optInType": "Maybe"}])]},
         "optInType"),
        ({"accounts": [account(contacts=[{"email": "a@example.com", "colour": "red"}])]},
         "unknown keys"),
        ({"accounts": [account(contacts=[{"email": "a@example.com", "status": "Unsubscribed",
                                          "suppression": {"reason": "HardBounced"}}])]},
         "differs from suppression reason"),
        ({"accounts": [account(contacts=[{"email": "a@example.com", "addressBooks": [77]}])]},
         "unknown address book 77"),
        ({"accounts": [account(contacts=[{"email": "a@example.com", "modified": "soon"}])]},
         "accounts[0].contacts[0].modified"),
        ({"accounts": [account(settings={"enforceDoubleOptIn": "yes"})]}, "enforceDoubleOptIn"),
        ({"accounts": [account(), account()]}, "already seeded"),
        ({"accounts": [account(), account(id=1002)]}, "already exists"),
        ({"accounts": [account(contacts=[{"email": "a@example.com"}], programs="none")]},
         "programs"),
        ({"tenants": []}, "accounts"),
    ],
)
def test_a_bad_seed_names_the_problem_and_loads_nothing(
    cluster: EmulatorCluster, dotdigital_admin: Admin, payload: Any, named: str
) -> None:
    dotdigital_admin.seed({"accounts": [account(id=9, apiUser="apiuser-keep@apiconnector.com")]})
    before = dotdigital_admin.state()
    response = post_seed(cluster, payload)
    assert response.status_code == 400
    assert named in response.json()["error"]
    assert dotdigital_admin.state() == before


def test_seeding_an_existing_account_again_is_refused(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.seed({"accounts": [account()]})
    assert post_seed(cluster, {"accounts": [account(apiUser="apiuser-new@x.com")]}).status_code \
        == 400


def test_state_filters_by_account_and_email(dotdigital_admin: Admin) -> None:
    dotdigital_admin.seed({"accounts": [
        account(contacts=[{"email": "Keep@Example.com"}, {"email": "other@example.com"}]),
        account(id=1002, apiUser="apiuser-b@apiconnector.com", region="r2"),
    ]})
    assert [item["id"] for item in dotdigital_admin.state()["accounts"]] == [1001, 1002]
    narrowed = dotdigital_admin.state(accountId=1001, email="keep@example.com")["accounts"]
    assert [item["id"] for item in narrowed] == [1001]
    assert [contact["email"] for contact in narrowed[0]["contacts"]] == ["Keep@Example.com"]
    assert dotdigital_admin.state(accountId=4242) == {"accounts": []}


def test_export_round_trips_through_seed(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    dotdigital_admin.seed({"accounts": [account(
        settings={"enforceDoubleOptIn": True},
        addressBooks=[{"id": 40, "name": "Members", "visibility": "Public"}],
        contacts=[
            {"email": "member@example.com", "addressBooks": [40],
             "dataFields": {"FIRSTNAME": "Mo"}},
            {"email": "left@example.com", "status": "Unsubscribed", "resubscribable": False},
        ],
    )]})
    base = f"{cluster.dotdigital_server.base_url}/r1"
    requests.post(f"{base}/v2/contacts/resubscribe",
                  json={"unsubscribedContact": {"email": "member@example.com"}},
                  auth=(USER, PASSWORD), verify=cluster.ca_bundle, timeout=10)
    requests.post(f"{base}/v2/contacts", json={"email": "pending@example.com"},
                  auth=(USER, PASSWORD), verify=cluster.ca_bundle, timeout=10)
    exported = cluster.export_state()["dotdigital"]
    cluster.reset()
    cluster.seed({"dotdigital": exported})
    assert cluster.export_state()["dotdigital"] == exported
    pending = [contact for contact in exported["accounts"][0]["contacts"]
               if contact["email"] == "pending@example.com"]
    assert pending[0]["status"] == "PendingOptIn"
    assert pending[0]["pendingConfirmation"]["kind"] == "optIn"


def test_a_large_account_pages_correctly_at_depth(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    contacts = [{"email": f"bulk{number}@example.com",
                 "modified": f"2024-01-01T00:{number // 60 % 60:02d}:{number % 60:02d}Z"}
                for number in range(3000)]
    dotdigital_admin.seed({"accounts": [account(contacts=contacts)]})
    page = requests.get(f"{cluster.dotdigital_server.base_url}/r1/v2/contacts/modified-since/"
                        "2024-01-01", params={"select": 1000, "skip": 2000},
                        auth=(USER, PASSWORD), verify=cluster.ca_bundle, timeout=30).json()
    assert len(page) == 1000
    assert page[0]["email"] == "bulk2000@example.com"
    assert page[-1]["email"] == "bulk2999@example.com"
