"""Enrolling CRM records in dotdigital programs (architecture §1.1 C3): the requests a CRM page
may send, and what each record comes to. Pure: standard library only.

Requests are checked whole before anything is read or written; every refusal names the field and
the rule, never echoes a value (ids and addresses are the caller's data).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

ENTITIES = ("contact", "lead")
MAX_RECORDS = 200  # a grid page of selected records
MAX_PROGRAMS = 10
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

# What a record comes to, per program.
ENROLLED = "enrolled"
ALREADY_IN_PROGRAM = "already in program"
SUPPRESSED = "suppressed"
NO_EMAIL = "no email"
NOT_FOUND = "not found"
NOT_ALLOWED = "not allowed"  # the user may not read the record, or the program is not offered
ALLOWANCE_EXHAUSTED = "allowance exhausted"  # dotdigital's hourly enrolment allowance
PENDING = "pending"  # dotdigital had not finished the enrolment when the answer was due
FAILED = "failed"

# dotdigital's fault reasons (report-faults CSV; ``Unsubcribed`` is its own spelling).
_FAULTS = {
    "alreadyinprogram": ALREADY_IN_PROGRAM,
    "unsubcribed": SUPPRESSED,
    "unsubscribed": SUPPRESSED,
    "suppressed": SUPPRESSED,
    "contactnotfound": NOT_FOUND,
}


class RequestRefused(ValueError):
    """A request that breaks the API's rules; the message says which, for the caller."""


@dataclass(frozen=True, slots=True)
class EnrolRequest:
    entity: str
    ids: tuple[str, ...]  # lower-case GUIDs, each once, in the order asked
    programs: tuple[int, ...]  # dotdigital program ids, each once
    email_account: str | None = None  # ``ec_emailaccountid``; None: the default account


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    record_id: str
    program_id: int
    outcome: str
    detail: str = ""


def fault_outcome(reason: str) -> str:
    """The outcome for a reason dotdigital reported once an enrolment finished."""
    return _FAULTS.get(reason.strip().replace(" ", "").casefold(), FAILED)


def parse_entity(value: object) -> str:
    if not isinstance(value, str) or value not in ENTITIES:
        raise RequestRefused(f"entity must be one of {', '.join(ENTITIES)}")
    return value


def parse_guid(value: object, field: str) -> str:
    if not isinstance(value, str) or not _GUID.fullmatch(value.strip("{}")):
        raise RequestRefused(f"{field} must be a GUID")
    return value.strip("{}").lower()


def parse_ids(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise RequestRefused(f"ids must be a list of 1 to {MAX_RECORDS} record GUIDs")
    if len(value) > MAX_RECORDS:
        raise RequestRefused(f"ids must be a list of 1 to {MAX_RECORDS} record GUIDs")
    return tuple(dict.fromkeys(parse_guid(item, "each id") for item in value))


def parse_programs(value: object) -> tuple[int, ...]:
    rule = f"programs must be a list of 1 to {MAX_PROGRAMS} dotdigital program ids"
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PROGRAMS:
        raise RequestRefused(rule)
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item <= 2**31 - 1:
            raise RequestRefused(rule)
    return tuple(dict.fromkeys(value))


def parse_enrol_request(body: object) -> EnrolRequest:
    """The request in a decoded JSON body, or ``RequestRefused`` saying what is wrong."""
    if not isinstance(body, Mapping):
        raise RequestRefused("the body must be a JSON object")
    unknown = set(body) - {"entity", "ids", "programs", "emailAccount"}
    if unknown:
        raise RequestRefused("unknown fields: " + ", ".join(sorted(str(k) for k in unknown)))
    account = body.get("emailAccount")
    return EnrolRequest(
        entity=parse_entity(body.get("entity")),
        ids=parse_ids(body.get("ids")),
        programs=parse_programs(body.get("programs")),
        email_account=None if account is None else parse_guid(account, "emailAccount"),
    )


@dataclass(frozen=True, slots=True)
class RecordAddress:
    """A record the user may read, with its address as stored (None when it has none), or why
    it cannot be used (``refusal``: ``NOT_FOUND`` or ``NOT_ALLOWED``)."""

    record_id: str
    email: str | None = None
    refusal: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformContact:
    """A dotdigital contact: its id, and whether dotdigital may email it."""

    contact_id: int
    subscribed: bool


@dataclass(frozen=True, slots=True)
class Submitted:
    """An enrolment dotdigital accepted (``refusal`` None), or why it refused the call:
    ``allowance`` (the hourly allowance is used up), ``inactive`` (the program is not active),
    ``refused`` (another refusal; ``detail`` says which)."""

    enrolment_id: str | None
    refusal: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RecordPerson:
    """A record the user may read, with its name and address (None when it has none), or why
    it cannot be shown (``refusal``: ``not found`` or ``not allowed``)."""

    record_id: str
    name: str = ""
    email: str | None = None
    refusal: str | None = None
