"""Admin actions that play the contact's side, and the ``state`` view.

- ``POST /_emulator/confirm-resubscribe {"accountId", "email"}``: the contact clicks the link in
  their resubscribe (or double opt-in) email.
- ``POST /_emulator/suppress {"accountId", "email", "reason"}``: the contact unsubscribes, bounces
  or complains (any suppression reason), as campaign traffic would cause.
- ``GET /_emulator/state?accountId=&email=``: accounts in seed format, optionally narrowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from emulators.dotdigital.account_seed import export_account
from emulators.dotdigital.account_store import AccountStore
from emulators.dotdigital.contact_model import SUPPRESSION_REASONS, api_contact, canonical_enum
from emulators.dotdigital.resubscribe import confirm
from emulators.http import Request, Response, Route, route

if TYPE_CHECKING:
    from emulators.dotdigital.emulator import DotdigitalEmulator


class AdminActions:
    def __init__(self, emulator: DotdigitalEmulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[Route]:
        return [
            route("POST", r"/confirm-resubscribe", "confirm-resubscribe", self.confirm_resubscribe),
            route("POST", r"/suppress", "suppress", self.suppress),
        ]

    def confirm_resubscribe(self, request: Request, _: re.Match[str]) -> Response:
        body = _body(request, {"accountId", "email"})
        with self.emulator.lock:
            store = self._store(body)
            if store is None:
                return _unknown_account(body)
            try:
                contact = confirm(store, str(body["email"]))
            except LookupError as missing:
                return Response.json(404, {"error": str(missing)})
            except ValueError as nothing_pending:
                return Response.json(409, {"error": str(nothing_pending)})
            return Response.json(200, {"contact": api_contact(contact, store.sorted_field_names())})

    def suppress(self, request: Request, _: re.Match[str]) -> Response:
        body = _body(request, {"accountId", "email", "reason"})
        reason = canonical_enum(body["reason"], SUPPRESSION_REASONS)
        if reason is None:
            raise ValueError(f"reason must be one of {', '.join(SUPPRESSION_REASONS)}")
        with self.emulator.lock:
            store = self._store(body)
            if store is None:
                return _unknown_account(body)
            contact = store.contact_by_email(str(body["email"]))
            if contact is None:
                return Response.json(404, {"error": f"no contact {body['email']!r}"})
            store.suppress(contact, reason)
            return Response.json(200, {"contact": api_contact(contact, None)})

    def state(self, query: Mapping[str, str], *, for_export: bool) -> dict[str, Any]:
        """Seed format (features add their live view unless exporting); narrowed by
        ``accountId`` and ``email`` when given."""
        wanted: int | None = None
        if query.get("accountId"):
            if not query["accountId"].isdigit():
                raise ValueError("accountId must be an integer")
            wanted = int(query["accountId"])
        email = query.get("email") or None
        accounts = []
        for account_id, store in self.emulator.stores.items():
            if wanted is not None and account_id != wanted:
                continue
            exported = export_account(store, email)
            if email is None:
                for feature in self.emulator.features:
                    exported.update(feature.export_account(account_id) if for_export
                                    else feature.state(account_id))
            accounts.append(exported)
        return {"accounts": accounts}

    def _store(self, body: Mapping[str, Any]) -> AccountStore | None:
        return self.emulator.stores.get(body["accountId"])


def _body(request: Request, required: set[str]) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict) or set(body) != required:
        raise ValueError(f"body must be an object with exactly {sorted(required)}")
    if isinstance(body["accountId"], bool) or not isinstance(body["accountId"], int):
        raise ValueError("accountId must be an integer")
    if not isinstance(body["email"], str):
        raise ValueError("email must be a string")
    return body


def _unknown_account(body: Mapping[str, Any]) -> Response:
    return Response.json(404, {"error": f"no account {body['accountId']}"})
