"""What ``make run ONCE=1`` shows of the ribbon API: a CRM user enrols a few demo contacts.

As an administrator would, the demo enables the account's active programs once the app has
mirrored them; then, with a user token from the Entra emulator (as the dialog gets one), it
lists the programs and enrols three contacts of the default email account in the first active
one through the API's functions, and reports each record's outcome.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import requests

from devtools.local_stack import LocalStack
from shared.entrypoints import ribbon_api

USER = "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c01"  # the Entra emulator's Ada Lovelace
RECORDS = 3


def user_token(stack: LocalStack) -> str:
    response = requests.post(f"{stack.cluster.entra_server.base_url}/_emulator/token",
                             json={"audience": "api://connector", "user": USER},
                             verify=stack.cluster.ca_bundle, timeout=10)
    response.raise_for_status()
    return str(response.json()["access_token"])


def _call(function: Any, bearer: str, body: Any = None) -> tuple[int, Any]:
    request = func.HttpRequest(
        "POST" if body is not None else "GET", "https://localhost/api",
        headers={"Authorization": f"Bearer {bearer}"},
        body=b"" if body is None else json.dumps(body).encode())
    response = function(request)
    return response.status_code, json.loads(response.get_body() or b"null")


def enable_active_programs(stack: LocalStack, bearer: str) -> tuple[int, Any]:
    """Have the app mirror the programs (a listing does), then enable the active ones as an
    administrator would; returns the listing's status and answer."""
    status, listing = _call(ribbon_api.list_programs, bearer)
    if status != 200:
        return status, listing
    rows = stack.dataverse.rows("ec_programs")
    stack.dataverse.update_rows(
        "ec_programs", {r["ec_programid"]: {"ec_enabled": True} for r in rows
                        if r.get("ec_status") == "Active" and r.get("statecode") == 0},
        primary_key="ec_programid")
    return _call(ribbon_api.list_programs, bearer)


def enrol_demo(stack: LocalStack) -> dict[str, Any]:
    bearer = user_token(stack)
    status, listing = enable_active_programs(stack, bearer)
    selectable = [p for p in listing.get("programs", []) if p["selectable"]]
    if status != 200 or not selectable:
        return {"ok": False, "error": f"no program to enrol in ({status}): {listing}"}
    program = selectable[0]
    contacts = [row["contactid"] for row in stack.dataverse.rows("contacts")
                if row.get("emailaddress1")][:RECORDS]
    status, answer = _call(ribbon_api.enrol_records, bearer,
                           {"entity": "contact", "ids": contacts, "programs": [program["id"]]})
    if status != 200:
        return {"ok": False, "error": f"enrolling answered {status}: {answer}"}
    return {"ok": True, "email_account": listing["emailAccount"]["name"],
            "program": program["name"], "results": answer["results"]}


def format_demo(demo: dict[str, Any]) -> str:
    if not demo.get("ok"):
        return f"ribbon API demo FAILED: {demo.get('error')}"
    lines = [f"ribbon API: {len(demo['results'])} contacts of {demo['email_account']} enrolled "
             f"in \"{demo['program']}\" as a CRM user"]
    lines += [f"  {r['id']}: {r['outcome']}" + (f" ({r['detail']})" if r["detail"] else "")
              for r in demo["results"]]
    return "\n".join(lines)
