"""HTTP API for CRM pages (the ribbon's Automation Programs dialog).

Every call carries the CRM user's Entra token for the connector API (``Authorization: Bearer``),
validated in code before anything is read; the function key is no security of its own, so the
routes are anonymous at the host. Answers are JSON; errors are ``{"error": "..."}`` with 400 (the
request breaks a rule), 401 (no valid user token), 502/503 (a service behind failed) or 500,
never a stack trace.

- ``GET  /api/programs[?emailAccount=<id>]``: the programs the user may pick.
- ``POST /api/enrolments`` ``{"entity": "contact"|"lead", "ids": [...], "programs": [...],
  "emailAccount"?: "<id>"}``: one result per record and program.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from shared import bootstrap
from shared.domain.enrolment import RequestRefused, parse_enrol_request, parse_guid
from shared.entrypoints.crm_http import authenticated, json_response
from shared.services.enrolment.service import ProgramListing

logger = logging.getLogger(__name__)
bp = func.Blueprint()
MAX_BODY_BYTES = 64 * 1024


def _listing(listing: ProgramListing) -> dict[str, Any]:
    return {
        "emailAccount": {"id": listing.account.row_id, "name": listing.account.name},
        "emailAccounts": [{"id": a.row_id, "name": a.name, "isDefault": a.is_default}
                          for a in listing.accounts],
        "programs": [{"id": p.program_id, "name": p.name, "status": p.status,
                      "selectable": p.selectable} for p in listing.programs],
    }


def _programs(req: func.HttpRequest, assertion: str) -> func.HttpResponse:
    unknown = set(req.params) - {"emailAccount"}
    if unknown:
        raise RequestRefused("unknown parameters: " + ", ".join(sorted(unknown)))
    account = req.params.get("emailAccount")
    service = bootstrap.services().enrolment_service()
    listing = service.list_programs(None if account is None else
                                    parse_guid(account, "emailAccount"))
    return json_response(200, _listing(listing))


def _enrolments(req: func.HttpRequest, assertion: str) -> func.HttpResponse:
    body = req.get_body()
    if len(body) > MAX_BODY_BYTES:
        raise RequestRefused(f"the body must be at most {MAX_BODY_BYTES} bytes")
    try:
        decoded = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        raise RequestRefused("the body must be JSON") from None
    request = parse_enrol_request(decoded)
    outcomes = bootstrap.services().enrolment_service().enrol(assertion, request)
    return json_response(200, {"results": [
        {"id": o.record_id, "program": o.program_id, "outcome": o.outcome, "detail": o.detail}
        for o in outcomes]})


@bp.function_name("ListPrograms")
@bp.route(route="programs", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def list_programs(req: func.HttpRequest) -> func.HttpResponse:
    return authenticated(_programs)(req)


@bp.function_name("EnrolRecords")
@bp.route(route="enrolments", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def enrol_records(req: func.HttpRequest) -> func.HttpResponse:
    return authenticated(_enrolments)(req)
