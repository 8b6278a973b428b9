"""v2 suppression list: suppressed-since, unsubscribed-since, unsubscribe and suppress-contacts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from emulators.dotdigital.contact_model import api_suppression
from emulators.dotdigital.contacts_v2 import StoreLookup
from emulators.dotdigital.contracts import AccountContext, AccountRoute, account_route
from emulators.dotdigital.time_index import TimeIndex
from emulators.dotdigital.v2_input import (
    CONTACT_NOT_FOUND,
    INVALID_REQUEST,
    bad_request,
    contact_input,
    json_body,
    paging,
    path_date,
    prop,
)
from emulators.http import Request, Response


class Suppressions:
    def __init__(self, store_of: StoreLookup) -> None:
        self.store_of = store_of

    def routes(self) -> list[AccountRoute]:
        return [
            account_route("GET", r"/v2/contacts/suppressed-since/(?P<date>[^/]+)",
                          "v2.contacts.suppressed-since", self.suppressed_since),
            account_route("GET", r"/v2/contacts/unsubscribed-since/(?P<date>[^/]+)",
                          "v2.contacts.unsubscribed-since", self.unsubscribed_since),
            account_route("POST", r"/v2/contacts/unsubscribe", "v2.contacts.unsubscribe",
                          self.unsubscribe),
            account_route("PUT", r"/v2/contacts/suppress-contacts",
                          "v2.contacts.suppress-contacts", self.suppress_contacts),
        ]

    def suppressed_since(self, ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        return self._page(store.suppressed, store.contacts, request, m)

    def unsubscribed_since(
        self, ctx: AccountContext, request: Request, m: re.Match[str]
    ) -> Response:
        store = self.store_of(ctx.account_id)
        return self._page(store.unsubscribed, store.contacts, request, m)

    def _page(
        self, index: TimeIndex, contacts: Mapping[int, Any], request: Request, m: re.Match[str]
    ) -> Response:
        since = path_date(m["date"])
        select, skip = paging(request)
        ids = index.page_since(since, skip, select)
        return Response.json(200, [api_suppression(contacts[contact_id]) for contact_id in ids])

    def unsubscribe(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        given = contact_input(json_body(request))
        contact = store.contact_by_email(given.email)
        if contact is None:
            raise bad_request(CONTACT_NOT_FOUND, 404)
        # An address already on the list keeps its first reason and date.
        store.suppress(contact, "Unsubscribed")
        return Response.json(200, api_suppression(contact))

    def suppress_contacts(
        self, ctx: AccountContext, request: Request, _: re.Match[str]
    ) -> Response:
        store = self.store_of(ctx.account_id)
        body = json_body(request)
        if not isinstance(body, list) or not body:
            raise bad_request(INVALID_REQUEST)
        wanted: list[tuple[int, str | None]] = []
        for entry in body:
            if not isinstance(entry, Mapping):
                raise bad_request(INVALID_REQUEST)
            contact_id, email = prop(entry, "id"), prop(entry, "email")
            if contact_id is not None and (isinstance(contact_id, bool)
                                           or not isinstance(contact_id, int)):
                raise bad_request(INVALID_REQUEST)
            if email is not None and not isinstance(email, str):
                raise bad_request(INVALID_REQUEST)
            if not contact_id and not email:
                raise bad_request(INVALID_REQUEST)
            wanted.append((contact_id or 0, email))
        suppressed: list[dict[str, Any]] = []
        not_found: list[dict[str, Any]] = []
        for contact_id, email in wanted:
            contact = store.contacts.get(contact_id) if contact_id else None
            if contact is None and email:
                contact = store.contact_by_email(email)
            if contact is None:
                not_found.append({"id": contact_id, "email": email})
                continue
            store.suppress(contact, "Suppressed")
            suppressed.append({"id": contact.id, "email": contact.email})
        return Response.json(200, {"suppressed": suppressed, "notFound": not_found})
