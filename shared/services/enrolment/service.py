"""Enrol CRM records in dotdigital programs for a signed-in CRM user (architecture §1.1 C3).

- The programs offered are the email account's *enabled* ones in the ``ec_program`` mirror
  (refreshed first when it is older than its interval); inactive ones are listed, not
  selectable.
- Records are read from Dataverse **as the user** (on-behalf-of): a record the user may not read
  is reported ``not allowed``, never read with the app's wider rights.
- An address dotdigital does not know becomes a contact first (it lands in "All contacts"); a
  suppressed contact is reported, not sent (dotdigital would fault it anyway).
- Enrolments go in chunks of 25 contacts (the documented maximum) per program; an exhausted
  hourly allowance (20 calls an hour per account) is reported on each record it stops.
- dotdigital enrols asynchronously: the answer waits (up to ``max_wait_s``) for the enrolments to
  finish, so the faults it reports (already in program, unsubscribed, ...) reach the user.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shared.domain.email import match_key
from shared.domain.enrolment import (
    ALLOWANCE_EXHAUSTED,
    ENROLLED,
    FAILED,
    NO_EMAIL,
    NOT_ALLOWED,
    PENDING,
    SUPPRESSED,
    EnrolRequest,
    RecordOutcome,
    RequestRefused,
    fault_outcome,
)
from shared.domain.model import EmailAccount
from shared.domain.programs import ProgramRow
from shared.errors import IntegrationError
from shared.services.ports import CrmPrograms, CrmRecordsAsUser, CrmSettings, ProgramEnrolments
from shared.services.programs.mirror import ProgramsMirror

logger = logging.getLogger(__name__)

CHUNK = 25  # contacts per enrolment call (dotdigital's maximum)
ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class ProgramChoice:
    program_id: int
    name: str
    status: str
    selectable: bool


@dataclass(frozen=True, slots=True)
class ProgramListing:
    account: EmailAccount
    accounts: list[EmailAccount]
    programs: list[ProgramChoice]


@dataclass(frozen=True)
class EnrolmentService:
    settings: CrmSettings
    programs: CrmPrograms
    mirror: ProgramsMirror
    records: CrmRecordsAsUser
    platform: ProgramEnrolments
    max_wait_s: float = 20.0
    poll_s: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep)
    monotonic: Callable[[], float] = field(default=time.monotonic)

    def account(self, email_account: str | None) -> tuple[EmailAccount, list[EmailAccount]]:
        """The account asked for, or the default one (the only one, when there is one)."""
        accounts = sorted(self.settings.email_accounts(), key=lambda a: (a.name, a.row_id))
        if email_account is not None:
            chosen = [a for a in accounts if a.row_id == email_account]
        else:
            chosen = [a for a in accounts if a.is_default] or accounts[:1]
        if not chosen:
            raise RequestRefused("no such email account is configured"
                                 if email_account else "no email account is configured")
        return chosen[0], accounts

    def list_programs(self, email_account: str | None) -> ProgramListing:
        account, accounts = self.account(email_account)
        rows = self._offered(account)
        choices = [ProgramChoice(row.program_id, row.name, row.status, _active(row))
                   for row in sorted(rows, key=lambda r: (not _active(r), r.name.casefold()))]
        return ProgramListing(account, accounts, choices)

    def enrol(self, assertion: str, request: EnrolRequest) -> list[RecordOutcome]:
        """Enrol the records in the programs as the user whose token ``assertion`` is."""
        account, _ = self.account(request.email_account)
        offered = {row.program_id: row for row in self._offered(account)}
        outcomes: dict[tuple[str, int], RecordOutcome] = {}

        def report(record_id: str, program_id: int, outcome: str, detail: str = "") -> None:
            outcomes[(record_id, program_id)] = RecordOutcome(record_id, program_id, outcome,
                                                              detail)

        programs = []
        for program_id in request.programs:
            row = offered.get(program_id)
            if row is None or not _active(row):
                for record_id in request.ids:
                    report(record_id, program_id, NOT_ALLOWED, "the program is not offered")
            else:
                programs.append(program_id)
        contacts = self._contacts(account, assertion, request, programs, report)
        for program_id in programs:
            self._enrol_program(account, program_id, contacts, report)
        return [outcomes[(record_id, program_id)]
                for record_id in request.ids for program_id in request.programs]

    # --- steps ---------------------------------------------------------------------------------
    def _offered(self, account: EmailAccount) -> list[ProgramRow]:
        try:
            self.mirror.refresh(account)
        except IntegrationError as error:  # an older mirror still answers
            logger.warning("account=%s programs mirror not refreshed: %s", account.row_id, error)
        return self.programs.enabled_programs(account.row_id)

    def _contacts(
        self, account: EmailAccount, assertion: str, request: EnrolRequest,
        programs: Sequence[int], report: Callable[..., None],
    ) -> dict[str, int]:
        """dotdigital contact id per record that can be enrolled; the others reported."""
        if not programs:
            return {}
        contacts: dict[str, int] = {}
        known: dict[str, tuple[int, bool]] = {}  # by match key: one lookup per address
        for record in self.records.addresses(assertion, request.entity, request.ids):
            if record.refusal is not None:
                detail = ("you may not read this record in CRM" if record.refusal == NOT_ALLOWED
                          else "no such record in CRM")
                for program_id in programs:
                    report(record.record_id, program_id, record.refusal, detail)
                continue
            key = match_key(record.email)
            if record.email is None or not isinstance(key, str):
                for program_id in programs:
                    report(record.record_id, program_id, NO_EMAIL)
                continue
            if key not in known:
                found = self.platform.contact(account, record.email.strip())
                if found is None:
                    found = self.platform.create_contact(account, record.email.strip())
                known[key] = (found.contact_id, found.subscribed)
            contact_id, subscribed = known[key]
            if not subscribed:
                for program_id in programs:
                    report(record.record_id, program_id, SUPPRESSED)
                continue
            contacts[record.record_id] = contact_id
        return contacts

    def _enrol_program(
        self, account: EmailAccount, program_id: int, contacts: dict[str, int],
        report: Callable[..., None],
    ) -> None:
        by_contact: dict[int, list[str]] = {}
        for record_id, contact_id in contacts.items():
            by_contact.setdefault(contact_id, []).append(record_id)
        contact_ids = sorted(by_contact)
        submitted: list[tuple[str, list[int]]] = []
        for start in range(0, len(contact_ids), CHUNK):
            chunk = contact_ids[start:start + CHUNK]
            answer = self.platform.enrol(account, program_id, chunk)
            if answer.enrolment_id is None:
                outcome = ALLOWANCE_EXHAUSTED if answer.refusal == "allowance" else (
                    NOT_ALLOWED if answer.refusal == "inactive" else FAILED)
                for contact_id in chunk:
                    for record_id in by_contact[contact_id]:
                        report(record_id, program_id, outcome, answer.detail)
                continue
            submitted.append((answer.enrolment_id, chunk))
        deadline = self.monotonic() + self.max_wait_s
        for enrolment_id, chunk in submitted:
            faults = self.platform.faults(account, enrolment_id)
            while faults is None and self.monotonic() < deadline:
                self.sleep(self.poll_s)
                faults = self.platform.faults(account, enrolment_id)
            for contact_id in chunk:
                if faults is None:
                    outcome, detail = PENDING, "dotdigital is still processing the enrolment"
                elif contact_id in faults:
                    outcome, detail = fault_outcome(faults[contact_id]), faults[contact_id]
                else:
                    outcome, detail = ENROLLED, ""
                for record_id in by_contact[contact_id]:
                    report(record_id, program_id, outcome, detail)


def _active(row: ProgramRow) -> bool:
    return row.active and row.status.casefold() == ACTIVE
