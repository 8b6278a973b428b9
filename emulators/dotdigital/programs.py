"""Automation programs and enrolments (v2 only): ``/v2/programs`` and ``/v2/programs/enrolments``.

Enrolment is asynchronous as in the real service: a created enrolment is ``Processing`` until
``enrolment_processing_seconds`` of shared-clock time have passed (or an admin call finishes it),
and only then are its contacts checked, put into the program or reported as faults. Work is done
lazily when anything reads the account, so nothing runs in the background.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from emulators.clock import Clock
from emulators.dotdigital.contracts import (
    AccountContext,
    AccountRoute,
    ContactDirectory,
    account_route,
)
from emulators.dotdigital.feature_input import (
    RequestRejected,
    normalise_guid,
    path_id,
    read_page,
    rejecting,
    seed_items,
)
from emulators.dotdigital.programs_input import (
    ProgramsSettings,
    check_setting,
    read_enrolment_body,
)
from emulators.dotdigital.programs_model import (
    FAULT_ALREADY_IN_PROGRAM,
    FAULT_CONTACT_NOT_FOUND,
    FAULT_NOT_SUBSCRIBED,
    AccountPrograms,
    Enrolment,
    EnrolmentFault,
    parse_enrolments,
    parse_programs,
)
from emulators.http import Request, Response, Route, route

ALLOWANCE_WINDOW = dt.timedelta(hours=1)
# The documented message carries a trailing space (the official extensions compare against it).
ALLOWANCE_EXCEEDED = "Error: ERROR_ENROLMENT_ALLOWANCE_EXCEEDED "
_ENROLMENT_STATUS_NAMES = {"processing": "Processing", "finished": "Finished",
                           "notavailableinthisversion": "NotAvailableInThisVersion"}
_IDS_NAMESPACE = uuid.UUID("5f0c2a43-7d0e-4c55-9a57-0d5c1f3b9e21")


class ProgramsFeature:
    def __init__(self, clock: Clock, contacts: ContactDirectory) -> None:
        self.clock = clock
        self.contacts = contacts
        # Admin routes may arrive outside the core's lock; account handlers arrive inside it.
        self._lock = threading.RLock()
        self._accounts: dict[int, AccountPrograms] = {}
        self.settings = ProgramsSettings()

    # --- contract ------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._accounts.clear()
            self.settings = ProgramsSettings()

    def seed_account(self, account_id: int, raw_account: Mapping[str, Any]) -> dict[str, int]:
        where = f"account {account_id}"
        with self._lock:
            now = self.clock.now()
            program_items = seed_items(raw_account, "programs", where)
            enrolment_items = seed_items(raw_account, "enrolments", where)
            current = self._accounts.get(account_id, AccountPrograms())
            programs = (
                current.programs if program_items is None else parse_programs(program_items, now)
            )
            enrolments = current.enrolments
            if enrolment_items is not None:
                enrolments = parse_enrolments(
                    enrolment_items, set(programs), self._processing_delay(), now
                )
            current.programs, current.enrolments = programs, enrolments
            self._accounts[account_id] = current
            return {"programs": len(programs), "enrolments": len(enrolments)}

    def export_account(self, account_id: int) -> dict[str, Any]:
        with self._lock:
            account = self._accounts.get(account_id)
            if account is None:
                return {}
            return {
                "programs": [program.to_seed() for program in account.programs.values()],
                "enrolments": [item.to_seed() for item in account.enrolments.values()],
            }

    def state(self, account_id: int) -> dict[str, Any]:
        with self._lock:
            account = self._settled(account_id)
            return {
                **self.export_account(account_id),
                "enrolmentsInLastHour": len(self._recent_creations(account)),
            }

    def routes(self) -> list[AccountRoute]:
        return [
            account_route("GET", r"/v2/programs", "GET /v2/programs", rejecting(self._list)),
            account_route(
                "POST", r"/v2/programs/enrolments", "POST /v2/programs/enrolments",
                rejecting(self._enrol),
            ),
            account_route(
                "GET", r"/v2/programs/enrolments/(?P<key>[^/]+)/report-faults",
                "GET /v2/programs/enrolments/{id}/report-faults", rejecting(self._report_faults),
            ),
            account_route(
                "GET", r"/v2/programs/enrolments/(?P<key>[^/]+)",
                "GET /v2/programs/enrolments/{id|status}", rejecting(self._enrolment_or_status),
            ),
            account_route(
                "GET", r"/v2/programs/(?P<id>(?!enrolments$)[^/]+)", "GET /v2/programs/{id}",
                rejecting(self._get),
            ),
        ]

    def admin_routes(self) -> list[Route]:
        return [
            route("POST", r"/programs/enrolments/finish", "programs finish", self._admin_finish),
            route("GET", r"/programs/config", "programs config", self._admin_config),
            route("POST", r"/programs/config", "programs config", self._admin_config),
        ]

    # --- handlers ------------------------------------------------------------------------------
    def _list(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        page = read_page(request)
        with self._lock:
            programs = list(self._settled(ctx.account_id).programs.values())
            return Response.json(200, [program.to_api() for program in page.of(programs)])

    def _get(self, ctx: AccountContext, request: Request, match: re.Match[str]) -> Response:
        program_id = path_id(match["id"], "Error: ERROR_PROGRAM_NOT_FOUND")
        with self._lock:
            program = self._settled(ctx.account_id).programs.get(program_id)
            if program is None:
                raise RequestRejected(404, "Error: ERROR_PROGRAM_NOT_FOUND")
            return Response.json(200, program.to_api())

    def _enrolment_or_status(
        self, ctx: AccountContext, request: Request, match: re.Match[str]
    ) -> Response:
        status = _ENROLMENT_STATUS_NAMES.get(match["key"].lower())
        with self._lock:
            account = self._settled(ctx.account_id)
            if status is None:
                return Response.json(200, self._enrolment(account, match["key"]).to_api())
            page = read_page(request)
            chosen = [item for item in account.enrolments.values() if item.status == status]
            return Response.json(200, [item.to_api() for item in page.of(chosen)])

    def _report_faults(
        self, ctx: AccountContext, request: Request, match: re.Match[str]
    ) -> Response:
        with self._lock:
            enrolment = self._enrolment(self._settled(ctx.account_id), match["key"])
            if enrolment.status == "Processing":
                raise RequestRejected(400, "Error: ERROR_ENROLMENT_IS_PROCESSING")
            return Response.text(200, enrolment.faults_csv(), "text/csv; charset=utf-8")

    def _enrol(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        program_id, contact_ids, address_book_ids = read_enrolment_body(request)
        with self._lock:
            account = self._settled(ctx.account_id)
            now = self.clock.now()
            if len(self._recent_creations(account)) >= self.settings.enrolments_per_hour:
                raise RequestRejected(400, ALLOWANCE_EXCEEDED)
            program = account.programs.get(program_id)
            if program is None:
                raise RequestRejected(404, "Error: ERROR_PROGRAM_NOT_FOUND")
            if program.status != "Active":
                raise RequestRejected(422, "Error: ERROR_PROGRAM_NOT_ACTIVE")
            self._check_targets(ctx.account_id, contact_ids, address_book_ids)
            enrolment = Enrolment(
                id=self._next_id(ctx.account_id, account), program_id=program_id,
                status="Processing", date_created=now, contacts=contact_ids,
                address_books=address_book_ids, finish_at=now + self._processing_delay(),
            )
            account.enrolments[enrolment.id] = enrolment
            account.creations.append(now)
            # The documented create response leaves both lists null.
            created = {**enrolment.to_api(), "contacts": None, "addressBooks": None}
            return Response.json(201, created)

    # --- enrolment rules -----------------------------------------------------------------------
    def _check_targets(
        self, account_id: int, contact_ids: list[int] | None, address_book_ids: list[int] | None
    ) -> None:
        contacts, books = contact_ids or [], address_book_ids or []
        if bool(contacts) == bool(books):
            raise RequestRejected(400, "Error: ERROR_ENROLMENT_INVALID")
        if len(books) > self.settings.max_address_books_per_enrolment:
            raise RequestRejected(400, "Error: ERROR_ADDRESSBOOK_TOOMANY")
        if len(contacts) > self.settings.max_contacts_per_enrolment:
            raise RequestRejected(400, "Error: ERROR_ENROLMENT_INVALID")
        if any(not self.contacts.address_book_exists(account_id, book) for book in books):
            raise RequestRejected(400, "Error: ERROR_ADDRESSBOOK_NOT_FOUND")
        if any(self.contacts.contact_by_id(account_id, contact) is None for contact in contacts):
            raise RequestRejected(400, "Error: ERROR_CONTACT_NOT_FOUND")

    def _finish(self, account_id: int, account: AccountPrograms, enrolment: Enrolment) -> None:
        program = account.programs.get(enrolment.program_id)
        for contact_id in self._targets(account_id, enrolment):
            contact = self.contacts.contact_by_id(account_id, contact_id)
            if contact is None:
                enrolment.faults.append(EnrolmentFault(contact_id, "", FAULT_CONTACT_NOT_FOUND))
                continue
            email = str(contact.get("email") or "")
            if contact.get("status") != "Subscribed" or self.contacts.is_suppressed(
                account_id, email
            ):
                enrolment.faults.append(EnrolmentFault(contact_id, email, FAULT_NOT_SUBSCRIBED))
            elif program is None or contact_id in program.members:
                enrolment.faults.append(
                    EnrolmentFault(contact_id, email, FAULT_ALREADY_IN_PROGRAM)
                )
            else:
                program.members.add(contact_id)
                enrolment.enrolled.append(contact_id)
        enrolment.status = "Finished"

    def _targets(self, account_id: int, enrolment: Enrolment) -> list[int]:
        targets = list(dict.fromkeys(enrolment.contacts or []))
        # Address-book members are only known if the contact directory offers them.
        members_of = getattr(self.contacts, "address_book_contact_ids", None)
        if members_of is not None:
            for book in enrolment.address_books or []:
                targets.extend(members_of(account_id, book))
        return list(dict.fromkeys(targets))

    def _settled(self, account_id: int) -> AccountPrograms:
        """The account with every enrolment whose processing time has passed finished."""
        account = self._accounts.setdefault(account_id, AccountPrograms())
        now = self.clock.now()
        for enrolment in account.processing():
            if enrolment.finish_at <= now:
                self._finish(account_id, account, enrolment)
        return account

    def _recent_creations(self, account: AccountPrograms) -> list[dt.datetime]:
        cutoff = self.clock.now() - ALLOWANCE_WINDOW
        while account.creations and account.creations[0] <= cutoff:
            account.creations.popleft()
        return list(account.creations)

    def _enrolment(self, account: AccountPrograms, raw_id: str) -> Enrolment:
        enrolment_id = normalise_guid(raw_id)
        if enrolment_id is None:
            raise RequestRejected(400, "Error: ERROR_ENROLMENT_INVALID")
        enrolment = account.enrolments.get(enrolment_id)
        if enrolment is None:
            raise RequestRejected(404, "Error: ERROR_ENROLMENT_NOT_FOUND")
        return enrolment

    def _next_id(self, account_id: int, account: AccountPrograms) -> str:
        # Derived from a counter, not random, so that runs with the same inputs repeat exactly.
        while True:
            candidate = str(uuid.uuid5(_IDS_NAMESPACE, f"{account_id}:{account.next_sequence}"))
            account.next_sequence += 1
            if candidate not in account.enrolments:
                return candidate

    def _processing_delay(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.settings.enrolment_processing_seconds)

    # --- admin ---------------------------------------------------------------------------------
    def _admin_finish(self, request: Request, _: re.Match[str]) -> Response:
        """Finish processing enrolments now: all of them, one account's, or one by ``id``."""
        payload = request.json() or {}
        if not isinstance(payload, dict) or set(payload) - {"accountId", "id"}:
            raise ValueError("body must be an object with optional accountId and id")
        wanted_id = normalise_guid(str(payload["id"])) if "id" in payload else None
        finished: list[str] = []
        with self._lock:
            for account_id, account in self._accounts.items():
                if "accountId" in payload and account_id != payload["accountId"]:
                    continue
                for enrolment in account.processing():
                    if wanted_id is None or enrolment.id == wanted_id:
                        self._finish(account_id, account, enrolment)
                        finished.append(enrolment.id)
        return Response.json(200, {"finished": finished})

    def _admin_config(self, request: Request, _: re.Match[str]) -> Response:
        payload = (request.json() or {}) if request.method == "POST" else {}
        if not isinstance(payload, dict):
            raise ValueError("config body must be a JSON object")
        with self._lock:
            current = asdict(self.settings)
            unknown = sorted(set(payload) - set(current))
            if unknown:
                raise ValueError(f"unknown programs settings {unknown}; known: {sorted(current)}")
            for name, value in payload.items():
                check_setting(name, value)
            self.settings = ProgramsSettings(**{**current, **payload})
            return Response.json(200, asdict(self.settings))
