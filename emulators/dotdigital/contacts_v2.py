"""v2 contacts and address books: upserts, lookups, since-date reads and list membership."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

from emulators.dotdigital.account_store import TEST_BOOK, AccountStore, AddressBook
from emulators.dotdigital.contact_model import Contact, api_contact
from emulators.dotdigital.contracts import AccountContext, AccountRoute, account_route
from emulators.dotdigital.v2_input import (
    ADDRESSBOOK_NOT_FOUND,
    ADDRESSBOOK_NOT_WRITABLE,
    CONTACT_NOT_FOUND,
    CONTACT_SUPPRESSED,
    ContactInput,
    bad_request,
    bool_query,
    contact_input,
    json_body,
    paging,
    path_date,
    path_int,
)
from emulators.http import Request, Response

StoreLookup = Callable[[int], AccountStore]
_DATE = r"(?P<date>[^/]+)"
_BOOK = r"/v2/address-books/(?P<book>[^/]+)"


class ContactsV2:
    def __init__(self, store_of: StoreLookup) -> None:
        self.store_of = store_of

    def routes(self) -> list[AccountRoute]:
        return [
            account_route("GET", r"/v2/contacts", "v2.contacts.list", self.list_contacts),
            account_route("POST", r"/v2/contacts", "v2.contacts.upsert", self.upsert),
            account_route("GET", rf"/v2/contacts/modified-since/{_DATE}",
                          "v2.contacts.modified-since", self.modified_since),
            account_route("GET", rf"/v2/contacts/created-since/{_DATE}",
                          "v2.contacts.created-since", self.created_since),
            account_route("GET", r"/v2/contacts/(?P<id>\d+)/address-books",
                          "v2.contacts.address-books", self.books_of_contact),
            account_route("GET", r"/v2/contacts/(?P<key>[^/]+)", "v2.contacts.get", self.get),
            account_route("GET", r"/v2/address-books", "v2.address-books.list", self.list_books),
            account_route("GET", _BOOK, "v2.address-books.get", self.get_book),
            account_route("GET", _BOOK + "/contacts", "v2.address-books.contacts",
                          self.book_contacts),
            account_route("POST", _BOOK + "/contacts", "v2.address-books.add-contact",
                          self.add_to_book),
            account_route("GET", _BOOK + rf"/contacts/modified-since/{_DATE}",
                          "v2.address-books.contacts.modified-since", self.book_modified_since),
        ]

    # --- reads -----------------------------------------------------------------------------------
    def list_contacts(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        select, skip = paging(request)
        return self._contacts(store, store.ids.page(skip, select), request)

    def modified_since(self, ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        since = path_date(m["date"])
        select, skip = paging(request)
        return self._contacts(store, store.modified.page_since(since, skip, select), request)

    def created_since(self, ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        since = path_date(m["date"])
        select, skip = paging(request)
        return self._contacts(store, store.created.page_since(since, skip, select), request)

    def get(self, ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        key = unquote(m["key"])
        if key.isdigit():
            found = store.contacts.get(int(key))
            # By id the service hides unsubscribed and suppressed contacts; by email it does not.
            if found is not None and found.is_suppressed:
                found = None
        else:
            found = store.contact_by_email(key)
        if found is None:
            raise bad_request(CONTACT_NOT_FOUND, 404)
        return Response.json(200, api_contact(found, store.sorted_field_names()))

    def books_of_contact(self, ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        select, skip = paging(request)
        contact = store.contacts.get(int(m["id"]))
        if contact is None:
            raise bad_request(CONTACT_NOT_FOUND, 404)
        books = sorted(store.books_of(contact), key=lambda book: book.id)[skip : skip + select]
        return Response.json(200, [book.api_shape() for book in books])

    def list_books(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        select, skip = paging(request)
        books = sorted(store.address_books.values(), key=lambda book: book.id)
        return Response.json(200, [book.api_shape() for book in books[skip : skip + select]])

    def get_book(self, ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
        return Response.json(200, self._book(ctx, m).api_shape())

    def book_contacts(self, ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        book = self._book(ctx, m)
        select, skip = paging(request)
        return self._contacts(store, book.members.page(skip, select), request)

    def book_modified_since(
        self, ctx: AccountContext, request: Request, m: re.Match[str]
    ) -> Response:
        store = self.store_of(ctx.account_id)
        book = self._book(ctx, m)
        since = path_date(m["date"])
        select, skip = paging(request)
        ids: list[int] = []
        seen = 0
        # Members are a subset of the modified index: walk it from ``since`` and filter.
        for chunk_start in range(0, len(store.modified), 5000):
            chunk = store.modified.page_since(since, chunk_start, 5000)
            for contact_id in chunk:
                if contact_id in book.members:
                    if seen >= skip:
                        ids.append(contact_id)
                    seen += 1
                    if len(ids) == select:
                        return self._contacts(store, ids, request)
            if len(chunk) < 5000:
                break
        return self._contacts(store, ids, request)

    def _contacts(self, store: AccountStore, ids: list[int], request: Request) -> Response:
        fields = store.sorted_field_names() if bool_query(request, "withFullData") else None
        contacts = store.contacts
        return Response.json(200, [api_contact(contacts[contact_id], fields) for contact_id in ids])

    def _book(self, ctx: AccountContext, m: re.Match[str]) -> AddressBook:
        store = self.store_of(ctx.account_id)
        book = store.address_books.get(path_int(m["book"], ADDRESSBOOK_NOT_FOUND))
        if book is None:
            raise bad_request(ADDRESSBOOK_NOT_FOUND, 404)
        return book

    # --- writes ----------------------------------------------------------------------------------
    def upsert(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        contact = upsert_contact(store, contact_input(json_body(request)))
        return Response.json(201, api_contact(contact, store.sorted_field_names()))

    def add_to_book(self, ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        book = self._book(ctx, m)
        if book.name == TEST_BOOK:
            raise bad_request(ADDRESSBOOK_NOT_WRITABLE)
        given = contact_input(json_body(request))
        existing = store.contact_by_email(given.email)
        if existing is not None and existing.is_suppressed:
            raise bad_request(CONTACT_SUPPRESSED)
        contact = upsert_contact(store, given)
        store.add_to_book(contact, book)
        return Response.json(200, api_contact(contact, store.sorted_field_names()))


def upsert_contact(store: AccountStore, given: ContactInput) -> Contact:
    """Create or update by email (case-insensitive); supplied fields overwrite."""
    existing = store.contact_by_email(given.email)
    if existing is None:
        return store.create_contact(
            given.email, given.opt_in_type or "Unknown", given.email_type or "Html",
            given.data_fields,
        )
    store.update_contact(
        existing, opt_in_type=given.opt_in_type, email_type=given.email_type,
        data_fields=given.data_fields,
    )
    return existing

