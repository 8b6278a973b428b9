"""The seed format of dotdigital accounts: strict parsing (errors name the bad field) and export.

``export_account`` writes exactly what ``parse_account`` reads, so state survives a round trip.
Keys this module does not know are left for the feature modules (programs, campaigns, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from emulators.clock import Clock
from emulators.dotdigital.account_store import (
    ALL_CONTACTS,
    AccountSettings,
    AccountStore,
    AddressBook,
    ApiUser,
)
from emulators.dotdigital.contact_model import (
    CONTACT_STATUSES,
    EMAIL_TYPES,
    OPT_IN_TYPES,
    SUPPRESSION_REASONS,
    Contact,
    PendingConfirmation,
    Suppression,
    canonical_enum,
    email_key,
    is_valid_email,
    normalise_data_fields,
    timestamp_text,
)
from emulators.dotdigital.contracts import parse_date

REGIONS = ("r1", "r2", "r3")
CORE_ACCOUNT_KEYS = frozenset({
    "id", "apiUser", "password", "apiUsers", "region", "name", "mainEmail", "settings",
    "addressBooks", "dataFields", "contacts", "suppressions", "challengeEmails",
})
_CONTACT_KEYS = frozenset({
    "id", "email", "optInType", "emailType", "status", "dataFields", "created", "modified",
    "suppression", "resubscribable", "pendingConfirmation", "addressBooks",
})
_SETTINGS = {"enforceDoubleOptIn": "enforce_double_opt_in"}


class SeedError(ValueError):
    pass


def parse_account(raw: Any, where: str, clock: Clock) -> AccountStore:
    account = _mapping(raw, where)
    account_id = _int(account.get("id"), f"{where}.id")
    region = account.get("region", "r1")
    if region not in REGIONS:
        raise SeedError(f"{where}.region must be one of {', '.join(REGIONS)}, not {region!r}")
    store = AccountStore(
        account_id=account_id, name=_text(account.get("name", f"Account {account_id}"),
                                          f"{where}.name"),
        region=region, users=_users(account, where), settings=_settings(account, where),
        clock=clock, main_email=_optional_text(account.get("mainEmail"), f"{where}.mainEmail"),
    )
    raw_books = _list(account.get("addressBooks", []), f"{where}.addressBooks")
    for index, raw_book in enumerate(raw_books):
        book = _book(raw_book, f"{where}.addressBooks[{index}]")
        if book.id in store.address_books:
            raise SeedError(f"{where}.addressBooks[{index}].id {book.id} is used twice")
        store.add_address_book(book)
    store.ensure_system_books()
    for index, name in enumerate(_list(account.get("dataFields", []), f"{where}.dataFields")):
        store.field_names.add(_text(name, f"{where}.dataFields[{index}]").upper())
    now = clock.time()
    for index, raw_contact in enumerate(_list(account.get("contacts", []), f"{where}.contacts")):
        _add_contact(store, raw_contact, f"{where}.contacts[{index}]", now)
    for index, raw in enumerate(_list(account.get("suppressions", []), f"{where}.suppressions")):
        _add_suppression(store, raw, f"{where}.suppressions[{index}]", now)
    emails = _list(account.get("challengeEmails", []), f"{where}.challengeEmails")
    store.challenge_emails = [dict(_mapping(item, f"{where}.challengeEmails")) for item in emails]
    return store


def export_account(store: AccountStore, only_email: str | None = None) -> dict[str, Any]:
    contacts: Iterable[Contact] = store.contacts.values()
    if only_email is not None:
        found = store.contact_by_email(only_email)
        contacts = [found] if found is not None else []
    key = email_key(only_email) if only_email is not None else None
    return {
        "id": store.account_id, "name": store.name, "region": store.region,
        "mainEmail": store.main_email,
        "apiUsers": [{"apiUser": user.username, "password": user.password} for user in store.users],
        "settings": {"enforceDoubleOptIn": store.settings.enforce_double_opt_in},
        "addressBooks": [
            {"id": book.id, "name": book.name, "visibility": book.visibility}
            for book in store.address_books.values()
        ],
        "dataFields": list(store.sorted_field_names()),
        "contacts": [_export_contact(store, contact) for contact in contacts],
        "challengeEmails": [
            email for email in store.challenge_emails
            if key is None or email_key(email.get("email", "")) == key
        ],
    }


def _export_contact(store: AccountStore, contact: Contact) -> dict[str, Any]:
    exported: dict[str, Any] = {
        "id": contact.id, "email": contact.email, "optInType": contact.opt_in_type,
        "emailType": contact.email_type, "status": contact.status,
        "dataFields": dict(contact.data_fields), "created": timestamp_text(contact.created),
        "modified": timestamp_text(contact.modified),
        "addressBooks": [
            book.id for book in store.books_of(contact) if book.name != ALL_CONTACTS
        ],
    }
    if contact.suppression is not None:
        exported["suppression"] = {
            "reason": contact.suppression.reason,
            "dateRemoved": timestamp_text(contact.suppression.date_removed),
        }
    if contact.resubscribable is not None:
        exported["resubscribable"] = contact.resubscribable
    if contact.pending is not None:
        exported["pendingConfirmation"] = {
            "kind": contact.pending.kind, "sentAt": timestamp_text(contact.pending.sent_at),
            "addressBookId": contact.pending.address_book_id,
            "dataFields": dict(contact.pending.data_fields),
        }
    return exported


def _add_contact(store: AccountStore, raw: Any, where: str, now: float) -> None:
    item = _mapping(raw, where)
    unknown = set(item) - _CONTACT_KEYS
    if unknown:
        raise SeedError(f"{where} has unknown keys: {sorted(unknown)}")
    email = _text(item.get("email"), f"{where}.email")
    if not is_valid_email(email):
        raise SeedError(f"{where}.email {email!r} is not a valid email address")
    if store.contact_by_email(email) is not None:
        raise SeedError(f"{where}.email {email!r} is already a contact of this account")
    contact_id = _int(item["id"], f"{where}.id") if "id" in item else store.next_contact_id()
    if contact_id in store.contacts:
        raise SeedError(f"{where}.id {contact_id} is used twice")
    created = _date(item.get("created"), f"{where}.created", now)
    suppression = _suppression(item.get("suppression"), f"{where}.suppression", created)
    status = _enum(item.get("status", suppression.reason if suppression else "Subscribed"),
                   CONTACT_STATUSES, f"{where}.status")
    if suppression is None and status not in ("Subscribed", "PendingOptIn"):
        suppression = Suppression(status, _date(item.get("modified"), f"{where}.modified", created))
    if suppression is not None and status != suppression.reason:
        raise SeedError(f"{where}.status {status!r} differs from suppression reason "
                        f"{suppression.reason!r}")
    resubscribable = item.get("resubscribable")
    if resubscribable is not None and not isinstance(resubscribable, bool):
        raise SeedError(f"{where}.resubscribable must be true or false")
    contact = Contact(
        id=contact_id, email=email,
        opt_in_type=_enum(item.get("optInType", "Unknown"), OPT_IN_TYPES, f"{where}.optInType"),
        email_type=_enum(item.get("emailType", "Html"), EMAIL_TYPES, f"{where}.emailType"),
        status=status, created=created, modified=_date(item.get("modified"), f"{where}.modified",
                                                       created),
        data_fields=_data_fields(item.get("dataFields", {}), f"{where}.dataFields"),
        suppression=suppression, resubscribable=resubscribable,
        pending=_pending(item.get("pendingConfirmation"), f"{where}.pendingConfirmation", now),
    )
    books = [_int(book_id, f"{where}.addressBooks") for book_id in
             _list(item.get("addressBooks", []), f"{where}.addressBooks")]
    for book_id in books:
        if book_id not in store.address_books:
            raise SeedError(f"{where}.addressBooks names unknown address book {book_id}")
    store.add_contact(contact)
    if not contact.is_suppressed:
        for book_id in books:
            store.address_books[book_id].members.add(contact.id)


def _add_suppression(store: AccountStore, raw: Any, where: str, now: float) -> None:
    item = _mapping(raw, where)
    unknown = set(item) - {"email", "reason", "dateRemoved"}
    if unknown:
        raise SeedError(f"{where} has unknown keys: {sorted(unknown)}")
    email = _text(item.get("email"), f"{where}.email")
    if not is_valid_email(email):
        raise SeedError(f"{where}.email {email!r} is not a valid email address")
    reason = _enum(item.get("reason", "Suppressed"), SUPPRESSION_REASONS, f"{where}.reason")
    removed = _date(item.get("dateRemoved"), f"{where}.dateRemoved", now)
    existing = store.contact_by_email(email)
    if existing is not None:
        if existing.suppression is not None and existing.suppression.reason != reason:
            raise SeedError(f"{where}: {email!r} is already suppressed as "
                            f"{existing.suppression.reason}")
        if existing.suppression is None:
            raise SeedError(f"{where}: contact {email!r} is {existing.status}; give it a "
                            "suppression instead")
        return
    store.add_contact(Contact(
        id=store.next_contact_id(), email=email, opt_in_type="Unknown", email_type="Html",
        status=reason, created=removed, modified=removed, suppression=Suppression(reason, removed),
    ))


def _users(account: Mapping[str, Any], where: str) -> list[ApiUser]:
    users: list[ApiUser] = []
    if "apiUser" in account or "password" in account:
        users.append(ApiUser(_text(account.get("apiUser"), f"{where}.apiUser"),
                             _text(account.get("password"), f"{where}.password")))
    for index, raw in enumerate(_list(account.get("apiUsers", []), f"{where}.apiUsers")):
        item = _mapping(raw, f"{where}.apiUsers[{index}]")
        users.append(ApiUser(_text(item.get("apiUser"), f"{where}.apiUsers[{index}].apiUser"),
                             _text(item.get("password"), f"{where}.apiUsers[{index}].password")))
    if not users:
        raise SeedError(f"{where} needs apiUser and password (or apiUsers)")
    return users


def _settings(account: Mapping[str, Any], where: str) -> AccountSettings:
    raw = _mapping(account.get("settings", {}), f"{where}.settings")
    settings = AccountSettings()
    for name, value in raw.items():
        if name not in _SETTINGS:
            raise SeedError(f"{where}.settings.{name} is not a known setting")
        if not isinstance(value, bool):
            raise SeedError(f"{where}.settings.{name} must be true or false")
        setattr(settings, _SETTINGS[name], value)
    return settings


def _book(raw: Any, where: str) -> AddressBook:
    item = _mapping(raw, where)
    visibility = _enum(item.get("visibility", "Private"), ("Private", "Public"),
                       f"{where}.visibility")
    return AddressBook(_int(item.get("id"), f"{where}.id"), _text(item.get("name"),
                                                                   f"{where}.name"), visibility)


def _suppression(raw: Any, where: str, default_at: float) -> Suppression | None:
    if raw is None:
        return None
    item = _mapping(raw, where)
    reason = _enum(item.get("reason"), SUPPRESSION_REASONS, f"{where}.reason")
    return Suppression(reason, _date(item.get("dateRemoved"), f"{where}.dateRemoved", default_at))


def _pending(raw: Any, where: str, now: float) -> PendingConfirmation | None:
    if raw is None:
        return None
    item = _mapping(raw, where)
    kind = _enum(item.get("kind"), ("resubscribe", "optIn"), f"{where}.kind")
    book = item.get("addressBookId")
    return PendingConfirmation(
        kind, _date(item.get("sentAt"), f"{where}.sentAt", now),
        _int(book, f"{where}.addressBookId") if book is not None else None,
        _data_fields(item.get("dataFields", {}), f"{where}.dataFields"),
    )


def _data_fields(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, list):  # the v2 [{key, value}] shape is accepted too
        pairs = {}
        for entry in raw:
            entry = _mapping(entry, where)
            pairs[_text(entry.get("key"), f"{where}.key")] = entry.get("value")
        raw = pairs
    return normalise_data_fields(_mapping(raw, where))


def _date(raw: Any, where: str, default: float) -> float:
    if raw is None:
        return default
    try:
        return parse_date(_text(raw, where)).timestamp()
    except ValueError as exc:
        raise SeedError(f"{where}: {exc}") from None


def _enum(raw: Any, allowed: tuple[str, ...], where: str) -> str:
    value = canonical_enum(raw, allowed)
    if value is None:
        raise SeedError(f"{where} must be one of {', '.join(allowed)}, not {raw!r}")
    return value


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise SeedError(f"{where} must be an object")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise SeedError(f"{where} must be a list")
    return raw


def _text(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise SeedError(f"{where} must be a non-empty string")
    return raw


def _optional_text(raw: Any, where: str) -> str:
    return "" if raw in (None, "") else _text(raw, where)


def _int(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise SeedError(f"{where} must be a positive integer")
    return int(raw)
