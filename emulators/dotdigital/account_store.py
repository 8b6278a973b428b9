"""One dotdigital account's data: contacts with their indexes, address books, challenge emails.

Every change goes through a method here so the indexes (email, id order, modified, created,
suppressed, unsubscribed, address-book members) never drift from the contacts, and every change
bumps the contact's modified time from the shared clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.clock import Clock
from emulators.dotdigital.contact_model import (
    ACTIVE_STATUSES,
    DEFAULT_DATA_FIELDS,
    LAST_SUBSCRIBED,
    Contact,
    PendingConfirmation,
    Suppression,
    email_key,
    timestamp_text,
)
from emulators.dotdigital.time_index import IdIndex, TimeIndex

ALL_CONTACTS = "All contacts"
TEST_BOOK = "Test"
SYSTEM_BOOKS = (ALL_CONTACTS, TEST_BOOK)


@dataclass(frozen=True)
class ApiUser:
    username: str
    password: str = field(repr=False)


@dataclass
class AddressBook:
    id: int
    name: str
    visibility: str
    members: IdIndex = field(default_factory=IdIndex)

    @property
    def is_system(self) -> bool:
        return self.name in SYSTEM_BOOKS

    def api_shape(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "visibility": self.visibility,
            "contacts": len(self.members),
        }


@dataclass
class AccountSettings:
    enforce_double_opt_in: bool = False


class AccountStore:
    def __init__(
        self, *, account_id: int, name: str, region: str, users: list[ApiUser],
        settings: AccountSettings, clock: Clock, main_email: str = "",
    ) -> None:
        self.account_id = account_id
        self.name = name
        self.region = region
        self.users = users
        self.settings = settings
        self.main_email = main_email
        self.clock = clock
        self.contacts: dict[int, Contact] = {}
        self.by_email: dict[str, Contact] = {}
        self.ids = IdIndex()
        self.modified = TimeIndex()
        self.created = TimeIndex()
        self.suppressed = TimeIndex()
        self.unsubscribed = TimeIndex()
        self.address_books: dict[int, AddressBook] = {}
        self.field_names: set[str] = set(DEFAULT_DATA_FIELDS)
        self._sorted_fields: tuple[str, ...] | None = None
        self.challenge_emails: list[dict[str, Any]] = []
        self._last_contact_id = 0

    # --- lookups ---------------------------------------------------------------------------------
    def contact_by_email(self, email: str) -> Contact | None:
        return self.by_email.get(email_key(email))

    def sorted_field_names(self) -> tuple[str, ...]:
        if self._sorted_fields is None:
            self._sorted_fields = tuple(sorted(self.field_names))
        return self._sorted_fields

    def book_named(self, name: str) -> AddressBook:
        for book in self.address_books.values():
            if book.name == name:
                return book
        raise KeyError(name)

    @property
    def all_contacts(self) -> AddressBook:
        return self.book_named(ALL_CONTACTS)

    def books_of(self, contact: Contact) -> list[AddressBook]:
        return [book for book in self.address_books.values() if contact.id in book.members]

    # --- building (seed and create) --------------------------------------------------------------
    def add_address_book(self, book: AddressBook) -> None:
        self.address_books[book.id] = book

    def ensure_system_books(self) -> None:
        for name in SYSTEM_BOOKS:
            try:
                self.book_named(name)
            except KeyError:
                self.add_address_book(AddressBook(self.next_book_id(), name, "Private"))

    def next_book_id(self) -> int:
        return max(self.address_books, default=0) + 1

    def next_contact_id(self) -> int:
        return self._last_contact_id + 1

    def add_contact(self, contact: Contact) -> None:
        """Index a fully built contact (from a seed or a create)."""
        self.contacts[contact.id] = contact
        self._last_contact_id = max(self._last_contact_id, contact.id)
        self.by_email[contact.key] = contact
        self.ids.add(contact.id)
        self.modified.add(contact.modified, contact.id)
        self.created.add(contact.created, contact.id)
        self._index_suppression(contact)
        if not contact.is_suppressed:
            self.all_contacts.members.add(contact.id)
        self._note_fields(contact.data_fields)

    def create_contact(
        self, email: str, opt_in_type: str, email_type: str, data_fields: Mapping[str, Any],
    ) -> Contact:
        now = self.clock.time()
        pending_opt_in = opt_in_type == "VerifiedDouble" or self.settings.enforce_double_opt_in
        contact = Contact(
            id=self.next_contact_id(), email=email.strip(), opt_in_type=opt_in_type,
            email_type=email_type, status="PendingOptIn" if pending_opt_in else "Subscribed",
            created=now, modified=now, data_fields=dict(data_fields),
        )
        contact.data_fields.pop(LAST_SUBSCRIBED, None)
        if pending_opt_in:
            contact.pending = PendingConfirmation("optIn", now)
        else:
            contact.data_fields[LAST_SUBSCRIBED] = timestamp_text(now)
        self.add_contact(contact)
        if pending_opt_in:
            self._record_email(contact, "optIn", None, {})
        return contact

    # --- changes ---------------------------------------------------------------------------------
    def update_contact(
        self, contact: Contact, *, opt_in_type: str | None, email_type: str | None,
        data_fields: Mapping[str, Any],
    ) -> None:
        """Overwrite what was supplied; the status never changes through an update."""
        if opt_in_type is not None:
            contact.opt_in_type = opt_in_type
        if email_type is not None:
            contact.email_type = email_type
        self.set_data_fields(contact, data_fields)
        self.touch(contact)

    def set_data_fields(self, contact: Contact, data_fields: Mapping[str, Any]) -> None:
        for name, value in data_fields.items():
            if name != LAST_SUBSCRIBED:  # a system field: only subscribing sets it
                contact.data_fields[name] = value
        self._note_fields(data_fields)

    def touch(self, contact: Contact) -> None:
        now = self.clock.time()
        self.modified.move(contact.modified, now, contact.id)
        contact.modified = now

    def suppress(self, contact: Contact, reason: str) -> None:
        """Put the contact on the suppression list; it leaves every address book."""
        if contact.suppression is not None:
            return
        contact.suppression = Suppression(reason, self.clock.time())
        contact.status = reason
        contact.pending = None
        self._index_suppression(contact)
        for book in self.books_of(contact):
            book.members.discard(contact.id)
        self.touch(contact)

    def subscribe(self, contact: Contact, address_book_id: int | None) -> None:
        """Resubscribe or confirm: off the suppression list, into "All contacts" (and a list)."""
        if contact.suppression is not None:
            self._unindex_suppression(contact)
            contact.suppression = None
        contact.status = "Subscribed"
        contact.pending = None
        contact.data_fields[LAST_SUBSCRIBED] = timestamp_text(self.clock.time())
        self.all_contacts.members.add(contact.id)
        if address_book_id is not None and address_book_id in self.address_books:
            self.address_books[address_book_id].members.add(contact.id)
        self.touch(contact)

    def add_to_book(self, contact: Contact, book: AddressBook) -> None:
        book.members.add(contact.id)
        if contact.status in ACTIVE_STATUSES:
            self.all_contacts.members.add(contact.id)
        self.touch(contact)

    def challenge(
        self, contact: Contact, kind: str, address_book_id: int | None,
        data_fields: Mapping[str, Any], details: Mapping[str, Any], resend_after: float,
    ) -> None:
        """Send (record) a confirmation email unless one went out within ``resend_after``."""
        now = self.clock.time()
        previous = contact.pending
        contact.pending = PendingConfirmation(kind, now, address_book_id, dict(data_fields))
        if previous is not None and now - previous.sent_at < resend_after:
            contact.pending.sent_at = previous.sent_at
            return
        self._record_email(contact, kind, address_book_id, details)

    def _record_email(
        self, contact: Contact, kind: str, address_book_id: int | None,
        details: Mapping[str, Any],
    ) -> None:
        self.challenge_emails.append({
            "email": contact.email, "contactId": contact.id, "kind": kind,
            "addressBookId": address_book_id, "sent": timestamp_text(self.clock.time()),
            **{key: value for key, value in details.items() if value is not None},
        })

    # --- index bookkeeping -----------------------------------------------------------------------
    def _index_suppression(self, contact: Contact) -> None:
        if contact.suppression is None:
            return
        self.suppressed.add(contact.suppression.date_removed, contact.id)
        if contact.suppression.reason == "Unsubscribed":
            self.unsubscribed.add(contact.suppression.date_removed, contact.id)

    def _unindex_suppression(self, contact: Contact) -> None:
        assert contact.suppression is not None
        self.suppressed.remove(contact.suppression.date_removed, contact.id)
        self.unsubscribed.remove(contact.suppression.date_removed, contact.id)

    def _note_fields(self, data_fields: Mapping[str, Any]) -> None:
        new = set(data_fields) - self.field_names
        if new:
            self.field_names |= new
            self._sorted_fields = None
