"""dotdigital's side of enrolling CRM records in programs (v2 only): contacts by address, new
contacts, enrolments and the faults reported once they finish.

Enrolment is asynchronous: ``POST /v2/programs/enrolments`` answers ``Processing`` and the
per-contact faults (``report-faults``, CSV) exist only once it is ``Finished``. A create call is
not repeated after a lost answer (it would enrol twice and use the hourly allowance twice); every
read is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from urllib.parse import quote

from shared.adapters.dotdigital.client import DotdigitalClient
from shared.adapters.dotdigital.platform import DotdigitalEmailPlatform
from shared.domain.enrolment import PlatformContact, Submitted
from shared.domain.model import EmailAccount
from shared.errors import BadRequest, NotFound, System

# The documented maximum of contacts per enrolment call.
MAX_CONTACTS_PER_ENROLMENT = 25
ALLOWANCE_EXCEEDED = "ERROR_ENROLMENT_ALLOWANCE_EXCEEDED"
PROGRAM_NOT_ACTIVE = "ERROR_PROGRAM_NOT_ACTIVE"
# Statuses under which dotdigital sends a contact email (its official clients' reading).
_SUBSCRIBED = {"subscribed", "pendingoptin"}


class DotdigitalEnrolments:
    def __init__(self, platform: DotdigitalEmailPlatform) -> None:
        self._platform = platform

    def _client(self, account: EmailAccount) -> DotdigitalClient:
        return self._platform.client_for(account)

    def contact(self, account: EmailAccount, email: str) -> PlatformContact | None:
        """The account's contact with this address; None if it has none."""
        client = self._client(account)
        try:
            body = client.send_json(
                "GET", f"v2/contacts/{quote(email, safe='')}", "contact by email")
        except NotFound:
            return None
        return _contact(body)

    def create_contact(self, account: EmailAccount, email: str) -> PlatformContact:
        """Create the contact (it lands in "All contacts"); an address that exists meanwhile is
        answered with that contact, as ``POST /v2/contacts`` upserts by address."""
        body = self._client(account).send_json(
            "POST", "v2/contacts", "create contact", idempotent=False,
            json={"email": email, "optInType": "Unknown", "emailType": "Html"},
        )
        return _contact(body)

    def enrol(
        self, account: EmailAccount, program_id: int, contact_ids: Sequence[int]
    ) -> Submitted:
        if not 1 <= len(contact_ids) <= MAX_CONTACTS_PER_ENROLMENT:
            raise ValueError(f"an enrolment takes 1 to {MAX_CONTACTS_PER_ENROLMENT} contacts")
        try:
            body = self._client(account).send_json(
                "POST", "v2/programs/enrolments", "create enrolment", idempotent=False,
                json={"programId": program_id, "contacts": list(contact_ids), "addressBooks": []},
            )
        except BadRequest as refused:
            text = f"{refused.code or ''} {refused.detail}"
            if ALLOWANCE_EXCEEDED in text:
                return Submitted(None, "allowance", refused.detail)
            if PROGRAM_NOT_ACTIVE in text:
                return Submitted(None, "inactive", refused.detail)
            return Submitted(None, "refused", refused.detail)
        enrolment_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(enrolment_id, str) or not enrolment_id:
            raise BadRequest(System.DOTDIGITAL, "create enrolment returned no id")
        return Submitted(enrolment_id)

    def faults(self, account: EmailAccount, enrolment_id: str) -> dict[int, str] | None:
        """Each faulted contact's reason once the enrolment has finished; None while it is
        still processing."""
        client = self._client(account)
        path = f"v2/programs/enrolments/{quote(enrolment_id, safe='')}"
        body = client.send_json("GET", path, "enrolment")
        if not isinstance(body, dict) or str(body.get("status")).casefold() != "finished":
            return None
        text = client.send_text("GET", f"{path}/report-faults", "enrolment faults")
        faults: dict[int, str] = {}
        for row in csv.DictReader(io.StringIO(text)):
            try:
                faults[int(row.get("Id") or 0)] = str(row.get("Reason") or "")
            except ValueError:
                continue
        return faults


def _contact(body: object) -> PlatformContact:
    if not isinstance(body, dict) or not isinstance(body.get("id"), int):
        raise BadRequest(System.DOTDIGITAL, "a contact without an id")
    status = str(body.get("status") or "").casefold()
    return PlatformContact(int(body["id"]), status in _SUBSCRIBED)
