"""dotdigital emulator: automation programs and asynchronous enrolments over HTTPS."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin

API_USER = "apiuser-programs@apiconnector.com"
PASSWORD = "Progr4ms!pass"


def account(**extra: Any) -> dict[str, Any]:
    return {
        "id": 41, "apiUser": API_USER, "password": PASSWORD, "region": "r2",
        "addressBooks": [{"id": 5, "name": "Customers"}],
        "contacts": [
            {"id": 1, "email": "ann@example.com"},
            {"id": 2, "email": "bob@example.com", "status": "Unsubscribed"},
            {"id": 3, "email": "cy@example.com"},
            {"id": 4, "email": "di@example.com", "suppression": {"reason": "HardBounced"}},
        ],
        "programs": [
            {"id": 1, "name": "Birthday program", "status": "Active",
             "dateCreated": "2020-01-01T09:40:18.527Z", "contacts": [3]},
            {"id": 2, "name": "Promo", "status": "Deactivated"},
            {"id": 3, "name": "Visit", "status": "Draft"},
            {"id": 4, "name": "Ads", "status": "ReadOnly"},
        ],
        **extra,
    }


class Api:
    def __init__(self, cluster: EmulatorCluster) -> None:
        self.base = f"{cluster.dotdigital_server.base_url}/r2"
        self.verify = cluster.ca_bundle

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method, f"{self.base}{path}", auth=(API_USER, PASSWORD), verify=self.verify,
            timeout=10, **kwargs,
        )

    def enrol(self, body: Any) -> requests.Response:
        return self.call("POST", "/v2/programs/enrolments", json=body)


@pytest.fixture
def api(cluster: EmulatorCluster, dotdigital_admin: Admin) -> Api:
    dotdigital_admin.seed({"accounts": [account()]})
    return Api(cluster)


def programs_state(admin: Admin) -> dict[str, Any]:
    (seeded,) = admin.state(accountId=41)["accounts"]
    return seeded


def test_lists_programs_with_the_documented_fields(api: Api) -> None:
    response = api.call("GET", "/v2/programs")
    assert response.status_code == 200
    assert response.json()[0] == {
        "id": 1, "name": "Birthday program", "status": "Active",
        "dateCreated": "2020-01-01T09:40:18.527Z",
    }
    assert [program["status"] for program in response.json()] == [
        "Active", "Deactivated", "Draft", "ReadOnly",
    ]
    page = api.call("GET", "/v2/programs", params={"Select": 2, "skip": 1}).json()
    assert [program["id"] for program in page] == [2, 3]
    assert api.call("GET", "/v2/programs", params={"skip": 4}).json() == []


@pytest.mark.parametrize("params", [{"select": 0}, {"select": 1001}, {"skip": -1},
                                    {"select": "many"}])
def test_bad_paging_is_a_parameter_error(api: Api, params: dict[str, Any]) -> None:
    response = api.call("GET", "/v2/programs", params=params)
    assert response.status_code == 400
    assert response.json()["message"].endswith("ERROR_PARAMETER_INVALID")


def test_gets_a_program_by_id_and_404s_an_unknown_one(api: Api) -> None:
    assert api.call("GET", "/v2/programs/2").json()["status"] == "Deactivated"
    for missing in ("99", "abc"):
        response = api.call("GET", f"/v2/programs/{missing}")
        assert response.status_code == 404
        assert response.json() == {"message": "Error: ERROR_PROGRAM_NOT_FOUND"}


def test_enrolment_processes_after_the_delay_and_reports_faults(
    api: Api, dotdigital_admin: Admin
) -> None:
    # PascalCase properties, as the Magento extension sends them.
    created = api.enrol({"ProgramId": 1, "Contacts": [1, 2, 3, 4, 1], "AddressBooks": []})
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "Processing" and body["programId"] == 1
    assert body["contacts"] is None and body["addressBooks"] is None
    enrolment_id = body["id"]

    early = api.call("GET", f"/v2/programs/enrolments/{enrolment_id}/report-faults")
    assert early.status_code == 400
    assert early.json() == {"message": "Error: ERROR_ENROLMENT_IS_PROCESSING"}
    assert programs_state(dotdigital_admin)["programs"][0]["contacts"] == [3]

    dotdigital_admin.advance_clock(2.5)
    finished = api.call("GET", f"/v2/programs/enrolments/{enrolment_id.upper()}")
    assert finished.json()["status"] == "Finished"
    assert finished.json()["contacts"] == [1, 2, 3, 4, 1]
    report = api.call("GET", f"/v2/programs/enrolments/{enrolment_id}/report-faults")
    assert report.status_code == 200
    assert report.headers["Content-Type"].startswith("text/csv")
    assert report.text == (
        "Id,Email,TelephoneNumber,Reason\n"
        "2,bob@example.com,,Unsubcribed\n"
        "3,cy@example.com,,AlreadyInProgram\n"
        "4,di@example.com,,Unsubcribed\n"
    )
    assert programs_state(dotdigital_admin)["programs"][0]["contacts"] == [1, 3]


def test_enrolments_are_listed_by_status(api: Api, dotdigital_admin: Admin) -> None:
    first = api.enrol({"programId": 1, "contacts": [1]}).json()["id"]
    dotdigital_admin.call("POST", "programs/enrolments/finish", {"id": first})
    second = api.enrol({"programId": 1, "contacts": [3]}).json()["id"]
    finished = api.call("GET", "/v2/programs/enrolments/finished").json()
    processing = api.call("GET", "/v2/programs/enrolments/Processing").json()
    assert [item["id"] for item in finished] == [first]
    assert [item["id"] for item in processing] == [second]
    bad = api.call("GET", "/v2/programs/enrolments/Processing", params={"select": 0})
    assert bad.status_code == 400


def test_address_book_enrolment_is_accepted(api: Api, dotdigital_admin: Admin) -> None:
    created = api.enrol({"programId": 1, "addressBooks": [5], "contacts": []})
    assert created.status_code == 201
    finished = dotdigital_admin.call("POST", "programs/enrolments/finish", {"accountId": 41})
    assert finished == {"finished": [created.json()["id"]]}
    (enrolment,) = programs_state(dotdigital_admin)["enrolments"]
    assert enrolment["addressBooks"] == [5] and enrolment["status"] == "Finished"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"programId": 99, "contacts": [1]}, 404, "Error: ERROR_PROGRAM_NOT_FOUND"),
        ({"programId": 2, "contacts": [1]}, 422, "Error: ERROR_PROGRAM_NOT_ACTIVE"),
        ({"programId": 3, "contacts": [1]}, 422, "Error: ERROR_PROGRAM_NOT_ACTIVE"),
        ({"programId": 1, "contacts": [1], "addressBooks": [5]}, 400,
         "Error: ERROR_ENROLMENT_INVALID"),
        ({"programId": 1, "contacts": [], "addressBooks": []}, 400,
         "Error: ERROR_ENROLMENT_INVALID"),
        ({"programId": 1}, 400, "Error: ERROR_ENROLMENT_INVALID"),
        ({"contacts": [1]}, 400, "Error: ERROR_ENROLMENT_INVALID"),
        ({"programId": 1, "contacts": "1"}, 400, "Error: ERROR_ENROLMENT_INVALID"),
        ({"programId": 1, "contacts": list(range(1, 27))}, 400,
         "Error: ERROR_ENROLMENT_INVALID"),
        ({"programId": 1, "addressBooks": list(range(1, 12))}, 400,
         "Error: ERROR_ADDRESSBOOK_TOOMANY"),
        ({"programId": 1, "addressBooks": [99]}, 400, "Error: ERROR_ADDRESSBOOK_NOT_FOUND"),
        ({"programId": 1, "contacts": [1, 77]}, 400, "Error: ERROR_CONTACT_NOT_FOUND"),
        ([1], 400, "Error: ERROR_ENROLMENT_INVALID"),
    ],
)
def test_invalid_enrolments_are_refused_and_change_nothing(
    api: Api, dotdigital_admin: Admin, body: Any, status: int, message: str
) -> None:
    response = api.enrol(body)
    assert (response.status_code, response.json()) == (status, {"message": message})
    seeded = programs_state(dotdigital_admin)
    assert seeded["enrolments"] == [] and seeded["enrolmentsInLastHour"] == 0


def test_a_body_that_is_not_json_is_an_invalid_request(api: Api) -> None:
    response = api.call(
        "POST", "/v2/programs/enrolments", data="{oops",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {"message": "The request is invalid."}


def test_twenty_enrolments_per_rolling_hour(api: Api, dotdigital_admin: Admin) -> None:
    for _ in range(20):
        assert api.enrol({"programId": 1, "contacts": [1]}).status_code == 201
    refused = api.enrol({"programId": 1, "contacts": [1]})
    assert refused.status_code == 400
    # The documented message ends with a space.
    assert refused.json() == {"message": "Error: ERROR_ENROLMENT_ALLOWANCE_EXCEEDED "}
    assert len(programs_state(dotdigital_admin)["enrolments"]) == 20
    dotdigital_admin.advance_clock(3601)
    assert api.enrol({"programId": 1, "contacts": [1]}).status_code == 201


def test_unknown_and_malformed_enrolment_ids(api: Api) -> None:
    unknown = api.call("GET", "/v2/programs/enrolments/13bf8b50-6532-494c-8e2d-02f9bf22f93a")
    assert (unknown.status_code, unknown.json()) == (
        404, {"message": "Error: ERROR_ENROLMENT_NOT_FOUND"}
    )
    malformed = api.call("GET", "/v2/programs/enrolments/not-a-guid/report-faults")
    assert (malformed.status_code, malformed.json()) == (
        400, {"message": "Error: ERROR_ENROLMENT_INVALID"}
    )


def test_processing_time_is_configurable(api: Api, dotdigital_admin: Admin) -> None:
    settings = dotdigital_admin.call("POST", "programs/config", {"enrolment_processing_seconds": 0})
    assert settings["enrolment_processing_seconds"] == 0
    enrolment_id = api.enrol({"programId": 1, "contacts": [1]}).json()["id"]
    assert api.call("GET", f"/v2/programs/enrolments/{enrolment_id}").json()["status"] == (
        "Finished"
    )


@pytest.mark.parametrize("settings", [{"bogus": 1}, {"enrolments_per_hour": -1},
                                      {"enrolments_per_hour": 2.5}])
def test_bad_settings_are_refused(
    cluster: EmulatorCluster, dotdigital_admin: Admin, settings: dict[str, Any]
) -> None:
    response = requests.post(
        f"{cluster.dotdigital_server.base_url}/_emulator/programs/config", json=settings,
        verify=cluster.ca_bundle, timeout=10,
    )
    assert response.status_code == 400
    assert dotdigital_admin.call("GET", "programs/config")["enrolments_per_hour"] == 20


@pytest.mark.parametrize(
    "programs",
    [
        [{"id": 1, "name": "P", "status": "Paused"}],
        [{"id": 1, "name": "P", "status": "Active", "colour": "red"}],
        [{"id": 1, "name": "", "status": "Active"}],
        [{"id": 1, "name": "P", "status": "Active"}, {"id": 1, "name": "Q", "status": "Draft"}],
    ],
)
def test_bad_program_seeds_load_nothing(
    cluster: EmulatorCluster, dotdigital_admin: Admin, programs: list[dict[str, Any]]
) -> None:
    response = requests.post(
        f"{cluster.dotdigital_server.base_url}/_emulator/seed",
        json={"accounts": [account(programs=programs)]}, verify=cluster.ca_bundle, timeout=10,
    )
    assert response.status_code == 400
    assert "programs" in response.json()["error"]
    assert dotdigital_admin.state()["accounts"] == []
