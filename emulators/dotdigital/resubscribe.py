"""The four v2 resubscribe calls and the contact confirming a challenge email.

Outcome by the contact's state:
- unknown address → created (``ContactAdded``, or ``ContactChallenged`` in ``PendingOptIn`` when
  the account enforces double opt-in);
- subscribed → data fields applied, ``ContactAdded``;
- suppressed for a reason that cannot be undone (bounce, complaint, global or domain list) →
  ``ContactCannotBeUnsuppressed``, nothing changes;
- suppressed by the account itself (reason ``Suppressed``) → resubscribed at once by every
  variant, with no email (``ContactAdded``): a platform-level rule, so enforced double opt-in
  does not change it;
- unsubscribed / pending opt-in → challenge variants (and every variant when the account
  enforces double opt-in) record a challenge email and return ``ContactChallenged``; the
  no-challenge variants resubscribe at once (``ContactAdded``).
A repeated challenge inside ``resend_after`` seconds sends no second email.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from emulators.dotdigital.account_store import TEST_BOOK, AccountStore
from emulators.dotdigital.contact_model import Contact, api_contact, is_valid_email
from emulators.dotdigital.contacts_v2 import StoreLookup
from emulators.dotdigital.contracts import (
    AccountContext,
    AccountHandler,
    AccountRoute,
    account_route,
)
from emulators.dotdigital.v2_input import (
    ADDRESSBOOK_NOT_FOUND,
    ADDRESSBOOK_NOT_WRITABLE,
    INVALID_EMAIL,
    INVALID_REQUEST,
    bad_request,
    data_fields_input,
    json_body,
    path_int,
    prop,
)
from emulators.http import Request, Response

PREFERRED_LOCALES = (
    "cs-CS", "da-DA", "de-DE", "el-EL", "en-EN", "es-ES", "es", "fi-FI", "fr-FR", "hu-HU",
    "it-IT", "nl-NL", "nb-NO", "pl-PL", "pt-PT", "ru-RU", "se-SE", "sk-SK", "tr-TR", "zh-CN",
)
DEFAULT_RESEND_AFTER = 24 * 3600.0
SUPPRESSED_BY_ACCOUNT = "Suppressed"  # the reason dotdigital shows as "suppressed by you"


class Resubscriptions:
    def __init__(self, store_of: StoreLookup) -> None:
        self.store_of = store_of
        self.resend_after = DEFAULT_RESEND_AFTER

    def routes(self) -> list[AccountRoute]:
        book = r"/v2/address-books/(?P<book>[^/]+)/contacts"
        return [
            account_route("POST", r"/v2/contacts/resubscribe", "v2.contacts.resubscribe",
                          self._handler(challenge=True)),
            account_route("POST", r"/v2/contacts/resubscribe-with-no-challenge",
                          "v2.contacts.resubscribe-with-no-challenge",
                          self._handler(challenge=False)),
            account_route("POST", book + "/resubscribe", "v2.address-books.contacts.resubscribe",
                          self._handler(challenge=True)),
            account_route("POST", book + "/resubscribe-with-no-challenge",
                          "v2.address-books.contacts.resubscribe-with-no-challenge",
                          self._handler(challenge=False)),
        ]

    def _handler(self, *, challenge: bool) -> AccountHandler:
        def handle(ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
            store = self.store_of(ctx.account_id)
            book_id = None
            if "book" in m.groupdict():
                book_id = path_int(m["book"], ADDRESSBOOK_NOT_FOUND)
                book = store.address_books.get(book_id)
                if book is None:
                    raise bad_request(ADDRESSBOOK_NOT_FOUND, 404)
                if book.name == TEST_BOOK:
                    raise bad_request(ADDRESSBOOK_NOT_WRITABLE)
            body = json_body(request)
            email, data_fields, details = _resubscription(body, challenge)
            return Response.json(200, self.resubscribe(
                store, email, data_fields, book_id, challenge=challenge, details=details,
            ))
        return handle

    def resubscribe(
        self, store: AccountStore, email: str, data_fields: Mapping[str, Any],
        book_id: int | None, *, challenge: bool, details: Mapping[str, Any],
    ) -> dict[str, Any]:
        contact = store.contact_by_email(email)
        if contact is None:
            created = store.create_contact(email, "Unknown", "Html", data_fields)
            if created.pending is not None:
                created.pending.address_book_id = book_id
                return _result(created, "ContactChallenged")
            if book_id is not None:
                store.add_to_book(created, store.address_books[book_id])
            return _result(created, "ContactAdded")
        before = api_contact(contact, None)
        if contact.status == "Subscribed":
            store.set_data_fields(contact, data_fields)
            if book_id is not None:
                store.add_to_book(contact, store.address_books[book_id])
            else:
                store.touch(contact)
            return {"contact": before, "status": "ContactAdded"}
        if not contact.can_be_unsuppressed():
            return {"contact": before, "status": "ContactCannotBeUnsuppressed"}
        if _needs_challenge(store, contact, challenge=challenge):
            store.challenge(contact, "resubscribe", book_id, data_fields, details,
                            self.resend_after)
            return {"contact": before, "status": "ContactChallenged"}
        store.set_data_fields(contact, data_fields)
        store.subscribe(contact, book_id)
        return {"contact": before, "status": "ContactAdded"}


def confirm(store: AccountStore, email: str) -> Contact:
    """The contact clicks the link in their challenge (or double opt-in) email."""
    contact = store.contact_by_email(email)
    if contact is None:
        raise LookupError(f"account {store.account_id} has no contact {email!r}")
    if contact.pending is None:
        raise ValueError(f"contact {email!r} has no confirmation pending")
    pending = contact.pending
    store.set_data_fields(contact, pending.data_fields)
    store.subscribe(contact, pending.address_book_id)
    return contact


def _needs_challenge(store: AccountStore, contact: Contact, *, challenge: bool) -> bool:
    """Whether resubscribing ``contact`` (already known to be resubscribable) asks it to confirm.

    dotdigital resubscribes "suppressed by you" contacts at once, with no confirmation email.
    The rule is stated for the platform, not per call or account, so it holds for the challenge
    variants and under enforced double opt-in too (where the documentation says nothing).
    """
    if contact.suppression is not None and contact.suppression.reason == SUPPRESSED_BY_ACCOUNT:
        return False
    return challenge or store.settings.enforce_double_opt_in


def _result(contact: Contact, status: str) -> dict[str, Any]:
    return {"contact": api_contact(contact, None), "status": status}


def _resubscription(body: Any, challenge: bool) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``ApiContactResubscription`` in camelCase or PascalCase."""
    if not isinstance(body, Mapping):
        raise bad_request(INVALID_REQUEST)
    contact = prop(body, "unsubscribedContact")
    if not isinstance(contact, Mapping):
        raise bad_request(INVALID_REQUEST)
    email = prop(contact, "email")
    if not isinstance(email, str) or not is_valid_email(email.strip()):
        raise bad_request(INVALID_EMAIL)
    details: dict[str, Any] = {}
    if challenge:
        locale = prop(body, "preferredLocale")
        if locale is not None:
            matched = [known for known in PREFERRED_LOCALES if known.lower() == str(locale).lower()]
            if not matched:
                raise bad_request(INVALID_REQUEST)
            details["preferredLocale"] = matched[0]
        return_url = prop(body, "returnUrlToUseIfChallenged")
        if return_url is not None and not isinstance(return_url, str):
            raise bad_request(INVALID_REQUEST)
        details["returnUrl"] = return_url
    return email.strip(), data_fields_input(prop(contact, "dataFields")), details
