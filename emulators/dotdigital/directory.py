"""``ContactDirectory`` over the core's account stores, for the feature modules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.dotdigital.account_store import AccountStore
from emulators.dotdigital.contact_model import api_contact


class StoreContactDirectory:
    """Reads only; callers already hold the emulator's (re-entrant) lock."""

    def __init__(self, stores: Mapping[int, AccountStore]) -> None:
        self._stores = stores

    def contact_by_id(self, account_id: int, contact_id: int) -> dict[str, Any] | None:
        store = self._stores.get(account_id)
        contact = store.contacts.get(contact_id) if store is not None else None
        if store is None or contact is None:
            return None
        return api_contact(contact, store.sorted_field_names())

    def contact_by_email(self, account_id: int, email: str) -> dict[str, Any] | None:
        store = self._stores.get(account_id)
        contact = store.contact_by_email(email) if store is not None else None
        if store is None or contact is None:
            return None
        return api_contact(contact, store.sorted_field_names())

    def is_suppressed(self, account_id: int, email: str) -> bool:
        store = self._stores.get(account_id)
        contact = store.contact_by_email(email) if store is not None else None
        return contact is not None and contact.is_suppressed

    def address_book_exists(self, account_id: int, address_book_id: int) -> bool:
        store = self._stores.get(account_id)
        return store is not None and address_book_id in store.address_books
