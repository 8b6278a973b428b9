"""The ribbon API's functions through the app's services, adapters and the emulators: the user's
token checked in code, programs from the mirror, records read as the user, enrolment results."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
import requests

from devtools.local_stack import LocalStack
from shared.entrypoints import ribbon_api
from tests.e2e.conftest import stack_for
from tests.e2e.log_secrets import account_secrets, assert_no_secret_logged
from tests.e2e.org import Org

ADA = "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c01"  # the Entra emulator's default users
GRACE = "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c02"
ADA_USER = str(uuid.UUID(int=0xADA))  # her systemuserid
PROGRAMS = [{"id": 11, "name": "Welcome", "status": "Active"},
            {"id": 12, "name": "Win back", "status": "Active"},
            {"id": 13, "name": "Old offer", "status": "Deactivated"},
            {"id": 14, "name": "Draft idea", "status": "Draft"}]
SPECIAL = "o'neil+x&y#z@example.com"


def _org() -> tuple[Org, dict[str, str]]:
    org = Org(email_accounts=1)
    account = org.dotdigital[0]
    account["programs"] = PROGRAMS
    account["contacts"] += [
        {"email": "ann@example.com", "optInType": "Single"},
        {"email": "sup@example.com", "optInType": "Single",
         "suppression": {"reason": "Unsubscribed", "dateRemoved": "2026-01-01T00:00:00Z"}},
    ]
    ids = {}
    for name, email in (("ann", "ann@example.com"), ("sup", "sup@example.com"),
                        ("new", SPECIAL), ("blank", None), ("hidden", "hid@example.com")):
        ids[name] = org.add_crm("contacts", email)
    for row in org.tables["contacts"]:  # Ada reads her own contacts only
        row["_ownerid_value"] = ADA_USER if row["contactid"] != ids["hidden"] else str(
            uuid.UUID(int=0xB0B))
    ids["lead1"] = org.add_crm("leads", "lead1@example.com")
    ids["lead2"] = org.add_crm("leads", "lead2@example.com")
    return org, ids


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[LocalStack, dict[str, str]]]:
    org, ids = _org()
    dataset = org.dataset()
    dataset["dataverse"]["users"] = [
        {"oid": ADA, "systemuserid": ADA_USER, "read": {"contact": "user", "lead": "organization"}}]
    with stack_for(dataset) as stack:
        yield stack, ids


def token(stack: LocalStack, **claims: Any) -> str:
    payload = {"audience": "api://connector", "user": ADA, **claims}
    response = requests.post(f"{stack.cluster.entra_server.base_url}/_emulator/token",
                             json=payload, verify=stack.cluster.ca_bundle, timeout=10)
    response.raise_for_status()
    return str(response.json()["access_token"])


def call(function: Any, *, method: str = "GET", params: dict[str, str] | None = None,
         body: Any = None, bearer: str | None = None, raw: bytes | None = None
         ) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    request = func.HttpRequest(method, "https://localhost/api/x", headers=headers,
                               params=params or {}, body=data)
    response = function(request)
    return response.status_code, json.loads(response.get_body() or b"null")


def requests_served(stack: LocalStack) -> dict[str, int]:
    return {name: stack.cluster.servers[name].stats.snapshot()["requests"]
            for name in ("dataverse", "dotdigital")}


def enable_all(stack: LocalStack) -> None:
    rows = stack.dataverse.rows("ec_programs")
    stack.dataverse.update_rows("ec_programs", {r["ec_programid"]: {"ec_enabled": True}
                                                for r in rows}, primary_key="ec_programid")


def test_programs_arrive_disabled_then_list_once_enabled(
    world: tuple[LocalStack, dict[str, str]]
) -> None:
    stack, _ = world
    status, first = call(ribbon_api.list_programs, bearer=token(stack))
    assert status == 200 and first["programs"] == []  # mirrored, not enabled yet
    assert first["emailAccount"]["name"] == "Brand 1"
    assert {row["ec_name"]: row["ec_enabled"] for row in stack.dataverse.rows("ec_programs")} == {
        "Welcome": False, "Win back": False, "Old offer": False, "Draft idea": False}
    enable_all(stack)
    status, listing = call(ribbon_api.list_programs, bearer=token(stack))
    assert status == 200
    assert [(p["id"], p["name"], p["status"], p["selectable"]) for p in listing["programs"]] == [
        (11, "Welcome", "Active", True), (12, "Win back", "Active", True),
        (14, "Draft idea", "Draft", False), (13, "Old offer", "Deactivated", False)]


def test_each_record_gets_its_outcome(world: tuple[LocalStack, dict[str, str]]) -> None:
    stack, ids = world
    enable_all(stack)
    missing = str(uuid.uuid4())
    records = [ids["ann"], ids["sup"], ids["new"], ids["blank"], ids["hidden"], missing]
    before = stack.cluster.servers["dataverse"].stats.snapshot()["by_route"].get("batch", 0)
    status, answer = call(ribbon_api.enrol_records, method="POST", bearer=token(stack),
                          body={"entity": "contact", "ids": records, "programs": [11, 13]})
    assert status == 200, answer
    got = {(r["id"], r["program"]): r["outcome"] for r in answer["results"]}
    assert got == {
        (ids["ann"], 11): "enrolled", (ids["ann"], 13): "not allowed",
        (ids["sup"], 11): "suppressed", (ids["sup"], 13): "not allowed",
        (ids["new"], 11): "enrolled", (ids["new"], 13): "not allowed",
        (ids["blank"], 11): "no email", (ids["blank"], 13): "not allowed",
        (ids["hidden"], 11): "not allowed", (ids["hidden"], 13): "not allowed",
        (missing, 11): "not found", (missing, 13): "not allowed",
    }
    # The records were read in one batched request, as Ada.
    after = stack.cluster.servers["dataverse"].stats.snapshot()["by_route"].get("batch", 0)
    assert after - before == 1
    # The address dotdigital did not know was created exactly as stored, then enrolled.
    state = stack.dotdigital.state(accountId="2001", email=SPECIAL)
    assert [c["email"] for c in state["accounts"][0]["contacts"]] == [SPECIAL]
    # Enrolling again: dotdigital reports the contacts already inside.
    status, again = call(ribbon_api.enrol_records, method="POST", bearer=token(stack),
                         body={"entity": "contact", "ids": [ids["ann"]], "programs": [11]})
    assert status == 200 and [r["outcome"] for r in again["results"]] == ["already in program"]


def test_several_leads_from_a_grid(world: tuple[LocalStack, dict[str, str]]) -> None:
    stack, ids = world
    enable_all(stack)
    status, answer = call(ribbon_api.enrol_records, method="POST", bearer=token(stack),
                          body={"entity": "lead", "ids": [ids["lead1"], ids["lead2"]],
                                "programs": [12]})
    assert status == 200
    assert [(r["id"], r["outcome"]) for r in answer["results"]] == [
        (ids["lead1"], "enrolled"), (ids["lead2"], "enrolled")]


@pytest.mark.parametrize("claims", [
    {"claims": {"exp": 1_000_000_000, "nbf": 999_990_000, "iat": 999_990_000}},  # expired
    {"audience": "api://someone-else"},
    {"user": None, "client_id": "5b1e3d2a-8c4f-4a6e-b9d7-1f2e3c4d5a6b"},  # app-only
    {"scopes": ["other_scope"]},
])
def test_a_refused_token_gets_401_and_nothing_is_read(
    world: tuple[LocalStack, dict[str, str]], claims: dict[str, Any]
) -> None:
    stack, ids = world
    claims = {k: v for k, v in claims.items() if v is not None}
    payload: dict[str, Any] = {"audience": "api://connector", **claims}
    if "client_id" not in payload:
        payload.setdefault("user", ADA)
    response = requests.post(f"{stack.cluster.entra_server.base_url}/_emulator/token",
                             json=payload, verify=stack.cluster.ca_bundle, timeout=10)
    response.raise_for_status()
    bad = str(response.json()["access_token"])
    before = requests_served(stack)
    for function, kwargs in ((ribbon_api.list_programs, {}),
                             (ribbon_api.enrol_records, {"method": "POST", "body": {
                                 "entity": "contact", "ids": [ids["ann"]], "programs": [11]}})):
        status, answer = call(function, bearer=bad, **kwargs)
        assert status == 401 and "token" in answer["error"]
        status, answer = call(function, **kwargs)  # no token at all
        assert status == 401
    assert requests_served(stack) == before


@pytest.mark.parametrize(("body", "message"), [
    ({"entity": "account", "ids": [str(uuid.uuid4())], "programs": [11]}, "entity"),
    ({"entity": "contact", "ids": "x", "programs": [11]}, "ids"),
    ({"entity": "contact", "ids": [], "programs": [11]}, "ids"),
    ({"entity": "contact", "ids": ["not-a-guid"], "programs": [11]}, "GUID"),
    ({"entity": "contact", "ids": [str(uuid.uuid4())] * 201, "programs": [11]}, "ids"),
    ({"entity": "contact", "ids": [str(uuid.uuid4())], "programs": []}, "programs"),
    ({"entity": "contact", "ids": [str(uuid.uuid4())], "programs": ["11"]}, "programs"),
    ({"entity": "contact", "ids": [str(uuid.uuid4())], "programs": [True]}, "programs"),
    ({"entity": "contact", "ids": [str(uuid.uuid4())], "programs": [11], "x": 1}, "unknown"),
    ({"entity": "contact", "ids": [str(uuid.uuid4())], "programs": [11],
      "emailAccount": "nope"}, "emailAccount"),
    ([1, 2], "object"),
])
def test_bad_input_gets_400_with_the_rule_and_nothing_is_written(
    world: tuple[LocalStack, dict[str, str]], body: Any, message: str
) -> None:
    stack, _ = world
    bearer = token(stack)
    before = requests_served(stack)
    status, answer = call(ribbon_api.enrol_records, method="POST", bearer=bearer, body=body)
    assert status == 400 and message in answer["error"]
    assert requests_served(stack) == before


def test_a_body_that_is_not_json_and_unknown_parameters_get_400(
    world: tuple[LocalStack, dict[str, str]]
) -> None:
    stack, _ = world
    status, answer = call(ribbon_api.enrol_records, method="POST", bearer=token(stack),
                          raw=b"{not json")
    assert status == 400 and answer == {"error": "the body must be JSON"}
    status, answer = call(ribbon_api.list_programs, bearer=token(stack),
                          params={"emailAccount": "x"})
    assert status == 400 and "emailAccount" in answer["error"]
    status, answer = call(ribbon_api.list_programs, bearer=token(stack), params={"q": "1"})
    assert status == 400 and "unknown parameters" in answer["error"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(stack: LocalStack, how: str) -> str:
    """A token for the connector API that Entra never issued as it stands."""
    good = token(stack)
    header_b64, payload_b64, signature = good.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    if how == "bad signature":
        return f"{header_b64}.{payload_b64}.{signature[:-4]}AAAA"
    if how == "unknown kid":
        header["kid"] = "not-a-published-key"
        return f"{_b64(json.dumps(header).encode())}.{payload_b64}.{signature}"
    if how == "alg none":
        header = {"alg": "none", "typ": "JWT"}
        return f"{_b64(json.dumps(header).encode())}.{payload_b64}."
    # HS256 signed with the tenant's public key, the classic key-confusion forgery.
    keys = requests.get(
        f"{stack.cluster.entra_server.base_url}/3f9a2c4e-7b1d-4e8a-9c5f-2d6b8e1a4c70/discovery/"
        "v2.0/keys", verify=stack.cluster.ca_bundle, timeout=10).json()["keys"]
    public = json.dumps(keys[0]).encode()
    header = {"alg": "HS256", "typ": "JWT", "kid": header["kid"]}
    signing_input = f"{_b64(json.dumps(header).encode())}.{payload_b64}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


@pytest.mark.parametrize("claims", [
    {"claims": {"nbf": 4_000_000_000, "exp": 4_000_003_600}},  # not yet valid
    {"claims": {"iss": "https://login.microsoftonline.com/somewhere-else/v2.0"}},
    {"claims": {"tid": "00000000-0000-0000-0000-00000000beef"}},  # another tenant
])
def test_tokens_with_wrong_claims_get_401_and_nothing_is_read(
    world: tuple[LocalStack, dict[str, str]], claims: dict[str, Any]
) -> None:
    stack, _ = world
    bad = token(stack, **claims)
    before = requests_served(stack)
    status, _ = call(ribbon_api.list_programs, bearer=bad)
    assert status == 401 and requests_served(stack) == before


@pytest.mark.parametrize("how", ["bad signature", "unknown kid", "alg none", "HS256"])
def test_forged_tokens_get_401_and_nothing_is_read(
    world: tuple[LocalStack, dict[str, str]], how: str
) -> None:
    stack, ids = world
    bad = _forged(stack, how)
    before = requests_served(stack)
    status, _ = call(ribbon_api.enrol_records, method="POST", bearer=bad,
                     body={"entity": "contact", "ids": [ids["ann"]], "programs": [11]})
    assert status == 401 and requests_served(stack) == before


def test_an_exhausted_enrolment_allowance_is_reported_per_record(
    world: tuple[LocalStack, dict[str, str]]
) -> None:
    stack, ids = world
    enable_all(stack)
    used = stack.dotdigital.state(accountId="2001")["accounts"][0]["enrolmentsInLastHour"]
    stack.dotdigital.post("programs/config", {"enrolments_per_hour": used})
    try:
        status, answer = call(ribbon_api.enrol_records, method="POST", bearer=token(stack),
                              body={"entity": "lead", "ids": [ids["lead1"]], "programs": [11]})
    finally:
        stack.dotdigital.post("programs/config", {"enrolments_per_hour": 20})
    assert status == 200
    assert [(r["outcome"], "ALLOWANCE" in r["detail"]) for r in answer["results"]] == [
        ("allowance exhausted", True)]


def test_no_address_token_or_password_appears_in_the_logs(
    world: tuple[LocalStack, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    stack, ids = world
    enable_all(stack)
    caplog.set_level(logging.DEBUG)
    statuses = [
        call(ribbon_api.list_programs, bearer=token(stack))[0],
        call(ribbon_api.enrol_records, method="POST", bearer=token(stack),
             body={"entity": "contact", "ids": [ids["ann"], ids["sup"], ids["new"],
                                                 ids["hidden"]], "programs": [11]})[0],
        call(ribbon_api.enrol_records, method="POST", bearer=token(stack),
             body={"entity": "lead", "ids": [ids["lead1"]], "programs": [12]})[0],
        call(ribbon_api.enrol_records, method="POST", bearer=token(stack),
             body={"entity": "contact", "ids": ["ann@example.com"], "programs": [11]})[0],
        call(ribbon_api.list_programs, bearer=token(stack, audience="api://someone-else"))[0],
    ]
    assert statuses == [200, 200, 200, 400, 401]
    secrets = ["ann@example.com", "sup@example.com", SPECIAL, "hid@example.com",
               "lead1@example.com", *account_secrets(stack.dataset),
               stack.values["ENTRA_CLIENT_SECRET"]]
    assert_no_secret_logged(caplog, secrets)
