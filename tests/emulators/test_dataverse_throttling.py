"""Dataverse emulator: service protection limits, the cost model, configuration and faults."""

from __future__ import annotations

import threading

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin
from tests.emulators.dataverse_client import OTHER_USER, DataverseClient

CONTACT = "Microsoft.Dynamics.CRM.contact"


@pytest.fixture
def dv(cluster: EmulatorCluster) -> DataverseClient:
    return DataverseClient(cluster)


def test_defaults_are_the_documented_limits(dataverse_admin: Admin) -> None:
    config = dataverse_admin.call("GET", "config")
    assert config["service_protection"] == {
        "requests": 6000, "execution_ms": 1_200_000, "concurrent": 52, "window_seconds": 300,
    }
    assert all(value == 0 for value in config["cost_model"].values())
    assert config["lead_table_enabled"] is True and config["bulk_unsupported_tables"] == []


def test_request_limit_answers_429_per_user_until_the_window_slides(
    cluster: EmulatorCluster, dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.configure(service_protection={"requests": 3, "window_seconds": 30})
    assert [dv.get("WhoAmI").status_code for _ in range(3)] == [200, 200, 200]
    refused = dv.get("WhoAmI")
    assert refused.status_code == 429
    assert refused.json() == {"error": {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 3 over time window of 30 seconds.",
    }}
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert DataverseClient(cluster, user=OTHER_USER).get("WhoAmI").status_code == 200
    dataverse_admin.advance_clock(31)
    assert dv.get("WhoAmI").status_code == 200
    assert dataverse_admin.stats()["throttled"] == 1


def test_execution_time_limit_counts_the_modelled_cost(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.configure(
        service_protection={"execution_ms": 100, "window_seconds": 60},
        cost_model={"request_ms": 30},
    )
    statuses = [dv.get("WhoAmI").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    refused = dv.get("WhoAmI")
    assert refused.json()["error"]["code"] == "0x80072321"
    assert refused.json()["error"]["message"] == (
        "Combined execution time of incoming requests exceeded limit of 100 milliseconds over "
        "time window of 60 seconds. Decrease number of concurrent requests or reduce the "
        "duration of requests and try again later."
    )
    assert int(refused.headers["Retry-After"]) >= 1


def test_concurrent_limit_refuses_at_once(dv: DataverseClient, dataverse_admin: Admin) -> None:
    dataverse_admin.configure(service_protection={"concurrent": 2}, cost_model={"request_ms": 400})
    statuses: list[int] = []
    bodies: list[dict[str, dict[str, str]]] = []
    start = threading.Barrier(5)

    def call() -> None:
        start.wait()
        response = dv.get("WhoAmI")
        statuses.append(response.status_code)
        if response.status_code == 429:
            bodies.append(response.json())

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(429) >= 1 and statuses.count(200) >= 2
    assert bodies[0] == {"error": {
        "code": "0x80072326", "message": "Number of concurrent requests exceeded the limit of 2.",
    }}


def test_cost_model_makes_bulk_writes_cheaper_per_record(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.configure(
        service_protection={"execution_ms": 1_000_000},
        cost_model={"request_ms": 10, "per_record_write_ms": 2, "bulk_per_record_write_ms": 0.5},
    )

    def remaining(response: requests.Response) -> float:
        return float(response.headers["x-ms-ratelimit-time-remaining-xrm-requests"])

    single = dv.post("contacts", {"lastname": "One"})
    assert remaining(single) == 1_000_000 - 12
    bulk = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": [
        {"@odata.type": CONTACT, "lastname": f"B{i}"} for i in range(10)
    ]})
    assert remaining(bulk) == 1_000_000 - 12 - (10 + 10 * 0.5)


def test_bad_config_is_refused_and_changes_nothing(dataverse_admin: Admin) -> None:
    dataverse_admin.configure(service_protection={"requests": 10})
    for bad in (
        {"service_protection": {"requests": 0}},
        {"service_protection": {"request": 5}},
        {"cost_model": {"request_ms": -1}},
        {"lead_table_enabled": "no"},
        {"bulk_unsupported_tables": ["contacts"]},
        {"service_protection": {"requests": 5}, "throttle": True},
    ):
        with pytest.raises(requests.HTTPError) as raised:
            dataverse_admin.call("POST", "config", bad)
        assert raised.value.response.status_code == 400
    config = dataverse_admin.call("GET", "config")
    assert config["service_protection"]["requests"] == 10
    assert config["lead_table_enabled"] is True


def test_rejected_requests_do_not_run(dv: DataverseClient, dataverse_admin: Admin) -> None:
    dataverse_admin.configure(service_protection={"requests": 1})
    assert dv.post("contacts", {"lastname": "First"}).status_code == 204
    assert dv.post("contacts", {"lastname": "Second"}).status_code == 429
    rows = dataverse_admin.state(table="contacts")["tables"]["contacts"]
    assert [row["lastname"] for row in rows] == ["First"]


@pytest.mark.parametrize(("status", "code"), [(429, "0x80072322"), (503, "0x80040216")])
def test_injected_faults_carry_the_dataverse_envelope(
    dv: DataverseClient, dataverse_admin: Admin, status: int, code: str
) -> None:
    dataverse_admin.faults([
        {"path": "/api/data/v9.2/contacts", "status": status, "retry_after": 2, "count": 1}
    ])
    response = dv.get("contacts")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.headers["Retry-After"] == "2"
    assert dv.get("contacts").status_code == 200
