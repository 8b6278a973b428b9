"""Dataverse emulator: ``$batch`` parsing, change sets, references, errors and limits."""

from __future__ import annotations

import json

import pytest

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin
from tests.emulators.dataverse_client import DataverseClient, operation, parse_batch_response

ROOT = "/api/data/v9.2/"


@pytest.fixture
def dv(cluster: EmulatorCluster) -> DataverseClient:
    return DataverseClient(cluster)


def _create(entity_set: str, body: dict[str, object], content_id: str | None = None) -> str:
    return operation("POST", ROOT + entity_set, json.dumps(body), content_id=content_id)


def _lastnames(dv: DataverseClient) -> list[str]:
    rows = dv.get("contacts?$select=lastname").json()["value"]
    return sorted(row["lastname"] for row in rows)


def test_batch_runs_operations_and_change_sets_in_order(dv: DataverseClient) -> None:
    response = dv.batch([
        _create("contacts", {"lastname": "Lovelace", "emailaddress1": "ada@contoso.com"}),
        operation(
            "GET",
            ROOT + "contacts?$select=lastname&$filter=emailaddress1%20eq%20'ada@contoso.com'",
            headers=['Prefer: odata.include-annotations="*"'],
        ),
        [
            _create("accounts", {"name": "Contoso"}, content_id="1"),
            _create("contacts", {"lastname": "Smith",
                                 "parentcustomerid_account@odata.bind": "$1"}, content_id="2"),
        ],
    ])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert "boundary=changesetresponse_" in response.text
    parts = parse_batch_response(response)
    assert [part["status"] for part in parts] == [204, 200, 204, 204]
    assert parts[0]["headers"]["location"] == parts[0]["headers"]["odata-entityid"]
    assert json.loads(parts[1]["body"])["value"][0]["lastname"] == "Lovelace"
    assert [part["content_id"] for part in parts[2:]] == ["1", "2"]
    account_url = parts[2]["headers"]["odata-entityid"]
    smith = dv.get(parts[3]["headers"]["odata-entityid"]).json()
    assert account_url.endswith(f"({smith['_parentcustomerid_value']})")


def test_absolute_and_service_relative_urls_are_accepted(dv: DataverseClient) -> None:
    response = dv.batch([
        operation("POST", dv.api_url + "contacts", json.dumps({"lastname": "Absolute"})),
        operation("POST", "contacts", json.dumps({"lastname": "Relative"})),
    ])
    assert [part["status"] for part in parse_batch_response(response)] == [204, 204]
    assert _lastnames(dv) == ["Absolute", "Relative"]


def test_content_id_reference_in_a_url(dv: DataverseClient) -> None:
    response = dv.batch([[
        _create("contacts", {"lastname": "Before"}, content_id="1"),
        operation("PATCH", "$1", json.dumps({"lastname": "After"}), content_id="2"),
    ]])
    assert [part["status"] for part in parse_batch_response(response)] == [204, 204]
    assert _lastnames(dv) == ["After"]


def test_failing_change_set_rolls_back_and_stops_the_batch(dv: DataverseClient) -> None:
    response = dv.batch([
        _create("contacts", {"lastname": "Independent"}),
        [
            _create("contacts", {"lastname": "Rolled back"}, content_id="1"),
            _create("contacts", {"lastname": "x" * 51}, content_id="2"),
        ],
        _create("contacts", {"lastname": "Never run"}),
    ])
    assert response.status_code == 400
    parts = parse_batch_response(response)
    assert len(parts) == 1
    assert parts[0]["status"] == 400 and parts[0]["content_id"] == "2"
    assert json.loads(parts[0]["body"])["error"]["code"] == "0x80044331"
    # Requests outside change sets are not rolled back.
    assert _lastnames(dv) == ["Independent"]


def test_continue_on_error_answers_200_with_each_status(dv: DataverseClient) -> None:
    response = dv.batch(
        [
            _create("contacts", {"lastname": "First"}),
            _create("contacts", {"Lastname": "Bad"}),
            [_create("contacts", {"lastname": "In set"}), _create("nowhere", {"a": 1})],
            _create("contacts", {"lastname": "Last"}),
        ],
        headers={"Prefer": "odata.continue-on-error"},
    )
    assert response.status_code == 200
    statuses = [part["status"] for part in parse_batch_response(response)]
    assert statuses == [204, 400, 404, 204]
    assert _lastnames(dv) == ["First", "Last"]


def test_undefined_content_id_reference_is_a_400(dv: DataverseClient) -> None:
    response = dv.batch([[
        _create("contacts", {"lastname": "Smith", "parentcustomerid_account@odata.bind": "$1"}),
    ]])
    assert response.status_code == 400
    part = parse_batch_response(response)[0]
    assert json.loads(part["body"])["error"]["message"] == (
        "Content-ID Reference: '$1' does not exist in the batch context."
    )
    assert _lastnames(dv) == []


def test_bare_line_feeds_make_the_stream_unreadable(dv: DataverseClient) -> None:
    response = dv.batch([_create("contacts", {"lastname": "LF"})], line_end="\n")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "0x80048d19"
    assert error["message"].endswith("Stream was not readable.")
    assert _lastnames(dv) == []


def test_get_inside_a_change_set_is_refused_before_anything_runs(dv: DataverseClient) -> None:
    response = dv.batch([
        _create("contacts", {"lastname": "Not run"}),
        [operation("GET", ROOT + "contacts")],
    ])
    assert response.status_code == 400
    assert "An invalid HTTP method 'GET' was detected" in response.json()["error"]["message"]
    assert _lastnames(dv) == []


def test_more_than_1000_operations_are_refused(dv: DataverseClient) -> None:
    accepted = dv.batch([operation("GET", ROOT + "WhoAmI")] * 1000)
    assert accepted.status_code == 200
    assert len(parse_batch_response(accepted)) == 1000
    refused = dv.batch([operation("GET", ROOT + "WhoAmI")] * 1001)
    assert refused.status_code == 400
    assert "'1000'" in refused.json()["error"]["message"]


def test_boundary_must_come_from_the_content_type(dv: DataverseClient) -> None:
    response = dv.request(
        "POST", "$batch", headers={"Content-Type": "multipart/mixed"},
        data=b"--batch_x\r\n\r\n--batch_x--\r\n",
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message"}


def test_batch_get_url_ceiling_is_65536(dv: DataverseClient) -> None:
    prefix = f"{dv.api_url}contacts?$filter=lastname%20eq%20'"
    padding = "a" * (65_536 - len(prefix) - 1)
    response = dv.batch(
        [operation("GET", f"{prefix}{padding}'"), operation("GET", f"{prefix}{padding}a'")],
        headers={"Prefer": "odata.continue-on-error"},
    )
    assert [part["status"] for part in parse_batch_response(response)] == [200, 414]


def test_a_batch_counts_as_one_request_for_throttling(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.configure(service_protection={"requests": 2})
    response = dv.batch([_create("contacts", {"lastname": f"B{i}"}) for i in range(5)])
    assert response.status_code == 200
    assert dv.get("contacts").status_code == 200
    assert dv.get("contacts").status_code == 429
