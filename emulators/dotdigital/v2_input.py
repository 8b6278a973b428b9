"""Reading v2 requests the way the service does: case-insensitive JSON properties, enum values and
query names; ``select``/``skip`` validation; dates in path segments.

Bad input raises ``ApiError`` carrying the response, so a handler never half-applies a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from emulators.dotdigital.contact_model import (
    EMAIL_TYPES,
    OPT_IN_TYPES,
    canonical_enum,
    is_valid_email,
    normalise_data_fields,
)
from emulators.dotdigital.contracts import parse_date, v2_error
from emulators.http import Request, Response

MAX_SELECT = 1000
INVALID_REQUEST = "The request is invalid."
INVALID_EMAIL = "Email is not a valid email address. ERROR_PARAMETER_INVALID"
INVALID_PAGING = (
    "select must be between 1 and 1000, skip must not be negative. ERROR_PARAMETER_INVALID"
)
INVALID_DATE = "The date is not valid. ERROR_PARAMETER_INVALID"
CONTACT_NOT_FOUND = "Error: ERROR_CONTACT_NOT_FOUND"
ADDRESSBOOK_NOT_FOUND = "Error: ERROR_ADDRESSBOOK_NOT_FOUND"
CONTACT_SUPPRESSED = "Contact is suppressed. ERROR_CONTACT_SUPPRESSED"
ADDRESSBOOK_NOT_WRITABLE = (
    "Address book cannot be written to via the API. ERROR_ADDRESSBOOK_NOTWRITABLE"
)


class ApiError(Exception):
    """An error response (v2 or v3 shaped) raised from deep inside a handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def bad_request(message: str, status: int = 400) -> ApiError:
    return ApiError(v2_error(status, message))


@dataclass(frozen=True)
class ContactInput:
    email: str
    opt_in_type: str | None
    email_type: str | None
    data_fields: dict[str, Any]


def json_body(request: Request) -> Any:
    try:
        return request.json()
    except (ValueError, UnicodeDecodeError):
        raise bad_request(INVALID_REQUEST) from None


def prop(body: Mapping[str, Any], name: str) -> Any:
    """A JSON property by name, in any case (``Email``, ``email``)."""
    if name in body:
        return body[name]
    lowered = name.lower()
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def contact_input(raw: Any) -> ContactInput:
    """An ``ApiContact`` request body."""
    if not isinstance(raw, Mapping):
        raise bad_request(INVALID_REQUEST)
    email = prop(raw, "email")
    if not isinstance(email, str) or not is_valid_email(email.strip()):
        raise bad_request(INVALID_EMAIL)
    return ContactInput(
        email=email.strip(),
        opt_in_type=_optional_enum(prop(raw, "optInType"), OPT_IN_TYPES),
        email_type=_optional_enum(prop(raw, "emailType"), EMAIL_TYPES),
        data_fields=data_fields_input(prop(raw, "dataFields")),
    )


def data_fields_input(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise bad_request(INVALID_REQUEST)
    fields: dict[str, Any] = {}
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise bad_request(INVALID_REQUEST)
        key = prop(entry, "key")
        if not isinstance(key, str) or not key.strip():
            raise bad_request(INVALID_REQUEST)
        fields[key.strip()] = prop(entry, "value")
    return normalise_data_fields(fields)


def _optional_enum(raw: Any, allowed: tuple[str, ...]) -> str | None:
    if raw is None:
        return None
    value = canonical_enum(raw, allowed)
    if value is None:
        raise bad_request(INVALID_REQUEST)
    return value


def query_value(request: Request, name: str) -> str | None:
    """Query names bind case-insensitively on v2, as in ASP.NET Web API."""
    lowered = name.lower()
    found = None
    for key, value in request.query_list:
        if key.lower() == lowered:
            found = value
    return found


def paging(request: Request, default_select: int = MAX_SELECT) -> tuple[int, int]:
    """``(select, skip)``; select 1..1000 and skip >= 0, else 400 ``ERROR_PARAMETER_INVALID``."""
    select = _int_query(request, "select", default_select)
    skip = _int_query(request, "skip", 0)
    if not 1 <= select <= MAX_SELECT or skip < 0:
        raise bad_request(INVALID_PAGING)
    return select, skip


def _int_query(request: Request, name: str, default: int) -> int:
    raw = query_value(request, name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(INVALID_PAGING) from None


def bool_query(request: Request, name: str) -> bool:
    raw = query_value(request, name)
    if raw is None or raw == "":
        return False
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise bad_request(INVALID_REQUEST)


def path_date(segment: str) -> float:
    """A ``{date}`` path segment: ``+`` may arrive raw or as ``%2B``, spaces as ``%20``."""
    try:
        return parse_date(unquote(segment)).timestamp()
    except ValueError:
        raise bad_request(INVALID_DATE) from None


def path_int(segment: str, not_found_message: str) -> int:
    """An id in the path; anything that is not a positive int names nothing, hence 404."""
    if not segment.isdigit():
        raise bad_request(not_found_message, 404)
    return int(segment)
