"""dotdigital dates: the forms v2 path segments accept, and the UTC ``Z`` form it emits."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import requests

from emulators.cluster import EmulatorCluster
from emulators.dotdigital.contracts import format_date, parse_date
from tests.emulators.conftest import Admin

USER, PASSWORD = "apiuser-dates@apiconnector.com", "Secr3t-pass"
EMITTED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture(autouse=True)
def _contacts(dotdigital_admin: Admin) -> None:
    dotdigital_admin.seed({"accounts": [{
        "id": 1001, "apiUser": USER, "password": PASSWORD,
        "contacts": [
            {"id": 1, "email": "early@example.com", "modified": "2024-05-01T10:00:00Z"},
            {"id": 2, "email": "late@example.com", "modified": "2024-05-01T12:00:00Z"},
        ],
    }]})


def modified_since(cluster: EmulatorCluster, raw_date: str) -> requests.Response:
    # The date goes into the path exactly as given: clients send "+" unencoded or as %2B.
    return requests.get(
        f"{cluster.dotdigital_server.base_url}/r1/v2/contacts/modified-since/{raw_date}",
        auth=(USER, PASSWORD), verify=cluster.ca_bundle, timeout=10,
    )


@pytest.mark.parametrize(
    ("raw_date", "ids"),
    [
        ("2024-05-01", [1, 2]),
        ("2024-05-01T11:00:00Z", [2]),
        ("2024-05-01T11:00:00z", [2]),
        ("2024-05-01T11:00:00.500Z", [2]),
        ("2024-05-01T11:00:00", [2]),
        ("2024-05-01%2011:00:00", [2]),
        ("2024-05-01T11:00:00+00:00", [2]),
        ("2024-05-01T11:00:00%2B00:00", [2]),
        ("2024-05-01T10%3A30%3A00%2B01%3A00", [1, 2]),
        ("2024-05-01T06:00:00-05:00", [2]),
        ("2024-05-01T12:00:00Z", [2]),  # inclusive: modified >= date
        ("2024-05-01T12:00:00.001Z", []),
    ],
)
def test_modified_since_accepts_the_documented_date_forms(
    cluster: EmulatorCluster, raw_date: str, ids: list[int]
) -> None:
    response = modified_since(cluster, raw_date)
    assert response.status_code == 200, response.text
    assert [contact["id"] for contact in response.json()] == ids


@pytest.mark.parametrize("raw_date", ["yesterday", "2024-13-01", "01-05-2024", "2024-05-01T25:00"])
def test_unparseable_dates_are_a_parameter_error(cluster: EmulatorCluster, raw_date: str) -> None:
    response = modified_since(cluster, raw_date)
    assert response.status_code == 400
    assert response.json() == {"message": "The date is not valid. ERROR_PARAMETER_INVALID"}


def test_emitted_dates_are_utc_with_milliseconds_and_z(
    cluster: EmulatorCluster, dotdigital_admin: Admin
) -> None:
    requests.post(f"{cluster.dotdigital_server.base_url}/r1/v2/contacts/unsubscribe",
                  json={"email": "late@example.com"}, auth=(USER, PASSWORD),
                  verify=cluster.ca_bundle, timeout=10)
    row = requests.get(
        f"{cluster.dotdigital_server.base_url}/r1/v2/contacts/suppressed-since/2024-01-01",
        auth=(USER, PASSWORD), verify=cluster.ca_bundle, timeout=10).json()[0]
    assert EMITTED.match(row["dateRemoved"])
    contact = dotdigital_admin.state(email="early@example.com")["accounts"][0]["contacts"][0]
    assert contact["modified"] == "2024-05-01T10:00:00.000Z"


def test_parse_and_format_round_trip() -> None:
    parsed = parse_date("2020-01-01T09:40:18.527Z")
    assert parsed == dt.datetime(2020, 1, 1, 9, 40, 18, 527000, tzinfo=dt.UTC)
    assert format_date(parsed) == "2020-01-01T09:40:18.527Z"
    assert parse_date("2020-01-01T10:40:18.00+01:00") == parse_date("2020-01-01T09:40:18Z")
    assert parse_date("2020-01-01 10:40:18 01:00") == parse_date("2020-01-01T09:40:18Z")
