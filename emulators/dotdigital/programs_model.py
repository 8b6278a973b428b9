"""Automation programs and enrolments of one account: the data, its seed format and API shapes."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.dotdigital.feature_input import SeedReader, api_date, normalise_guid, unique_by

PROGRAM_STATUSES = ("Draft", "Active", "Deactivated", "ReadOnly")
ENROLMENT_STATUSES = ("Processing", "Finished")

# Reasons in the report-faults CSV. The first two are the documented names, typo included.
FAULT_NOT_SUBSCRIBED = "Unsubcribed"
FAULT_ALREADY_IN_PROGRAM = "AlreadyInProgram"
FAULT_CONTACT_NOT_FOUND = "ContactNotFound"
FAULT_REASONS = (FAULT_NOT_SUBSCRIBED, FAULT_ALREADY_IN_PROGRAM, FAULT_CONTACT_NOT_FOUND)

_PROGRAM_KEYS = ("id", "name", "status", "dateCreated", "contacts")
_ENROLMENT_KEYS = (
    "id", "programId", "status", "dateCreated", "contacts", "addressBooks", "faults", "enrolled",
)
_FAULT_KEYS = ("contactId", "email", "reason")


@dataclass
class Program:
    id: int
    name: str
    status: str
    date_created: dt.datetime
    # Contacts inside the program (not yet at an end node): enrolling them again is a fault.
    members: set[int] = field(default_factory=set)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "status": self.status,
            "dateCreated": api_date(self.date_created),
        }

    def to_seed(self) -> dict[str, Any]:
        return {**self.to_api(), "contacts": sorted(self.members)}


@dataclass(frozen=True)
class EnrolmentFault:
    contact_id: int
    email: str
    reason: str

    def to_seed(self) -> dict[str, Any]:
        return {"contactId": self.contact_id, "email": self.email, "reason": self.reason}


@dataclass
class Enrolment:
    id: str
    program_id: int
    status: str
    date_created: dt.datetime
    contacts: list[int] | None
    address_books: list[int] | None
    finish_at: dt.datetime
    faults: list[EnrolmentFault] = field(default_factory=list)
    enrolled: list[int] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id, "programId": self.program_id, "status": self.status,
            "dateCreated": api_date(self.date_created), "contacts": self.contacts,
            "addressBooks": self.address_books,
        }

    def to_seed(self) -> dict[str, Any]:
        return {
            **self.to_api(), "faults": [fault.to_seed() for fault in self.faults],
            "enrolled": list(self.enrolled),
        }

    def faults_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["Id", "Email", "TelephoneNumber", "Reason"])
        for fault in self.faults:
            writer.writerow([fault.contact_id, fault.email, "", fault.reason])
        return buffer.getvalue()


@dataclass
class AccountPrograms:
    programs: dict[int, Program] = field(default_factory=dict)
    enrolments: dict[str, Enrolment] = field(default_factory=dict)
    # Creation times of enrolments in the rolling hour: the allowance is counted from these.
    creations: deque[dt.datetime] = field(default_factory=deque)
    next_sequence: int = 1

    def processing(self) -> list[Enrolment]:
        return [item for item in self.enrolments.values() if item.status == "Processing"]


def parse_programs(items: list[tuple[str, Any]], now: dt.datetime) -> dict[int, Program]:
    programs: list[Program] = []
    for where, raw in items:
        reader = SeedReader(raw, where, _PROGRAM_KEYS)
        name = reader.text("name")
        if not 1 <= len(name) <= 255:
            raise ValueError(f"{where}.name: must be 1 to 255 characters")
        programs.append(Program(
            id=reader.integer("id"), name=name, status=reader.choice("status", PROGRAM_STATUSES),
            date_created=reader.date("dateCreated", now),
            members=set(reader.integers("contacts") or []),
        ))
    unique_by(programs, lambda program: program.id, "program id", "programs")
    return {program.id: program for program in sorted(programs, key=lambda p: p.id)}


def parse_enrolments(
    items: list[tuple[str, Any]], program_ids: set[int], processing_delay: dt.timedelta,
    now: dt.datetime,
) -> dict[str, Enrolment]:
    enrolments: list[Enrolment] = []
    for where, raw in items:
        reader = SeedReader(raw, where, _ENROLMENT_KEYS)
        enrolment_id = normalise_guid(reader.text("id"))
        if enrolment_id is None:
            raise ValueError(f"{where}.id: must be a GUID")
        program_id = reader.integer("programId")
        if program_id not in program_ids:
            raise ValueError(f"{where}.programId: no program {program_id} in this account")
        created = reader.date("dateCreated", now)
        enrolments.append(Enrolment(
            id=enrolment_id, program_id=program_id,
            status=reader.choice("status", ENROLMENT_STATUSES, "Finished"),
            date_created=created, contacts=reader.integers("contacts"),
            address_books=reader.integers("addressBooks"),
            finish_at=created + processing_delay,
            faults=[_parse_fault(at, item) for at, item in reader.objects("faults")],
            enrolled=reader.integers("enrolled") or [],
        ))
    unique_by(enrolments, lambda enrolment: enrolment.id, "enrolment id", "enrolments")
    ordered = sorted(enrolments, key=lambda enrolment: enrolment.date_created)
    return {enrolment.id: enrolment for enrolment in ordered}


def _parse_fault(where: str, raw: Mapping[str, Any]) -> EnrolmentFault:
    reader = SeedReader(raw, where, _FAULT_KEYS)
    return EnrolmentFault(
        contact_id=reader.integer("contactId"), email=reader.text("email", ""),
        reason=reader.choice("reason", FAULT_REASONS),
    )
