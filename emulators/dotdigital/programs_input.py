"""What the programs feature reads: the enrolment request body and its own settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulators.dotdigital.feature_input import RequestRejected
from emulators.dotdigital.v2_input import INVALID_REQUEST
from emulators.http import Request


@dataclass
class ProgramsSettings:
    enrolment_processing_seconds: float = 2.0
    enrolments_per_hour: int = 20
    max_contacts_per_enrolment: int = 25
    max_address_books_per_enrolment: int = 10


def check_setting(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    if name != "enrolment_processing_seconds" and not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number")


def read_enrolment_body(request: Request) -> tuple[int, list[int] | None, list[int] | None]:
    """``programId``, ``contacts`` and ``addressBooks``, property names in any case."""
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError):
        raise RequestRejected(400, INVALID_REQUEST) from None
    if not isinstance(body, dict):
        raise RequestRejected(400, "Error: ERROR_ENROLMENT_INVALID")
    fields = {str(name).lower(): value for name, value in body.items()}
    program_id = fields.get("programid")
    if isinstance(program_id, bool) or not isinstance(program_id, int):
        raise RequestRejected(400, "Error: ERROR_ENROLMENT_INVALID")
    return program_id, _id_list(fields.get("contacts")), _id_list(fields.get("addressbooks"))


def _id_list(value: Any) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or any(
        isinstance(item, bool) or not isinstance(item, int) for item in value
    ):
        raise RequestRejected(400, "Error: ERROR_ENROLMENT_INVALID")
    return list(value)
