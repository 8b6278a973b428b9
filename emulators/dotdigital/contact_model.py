"""A dotdigital contact, its enums, and how v2 and v3 render it.

Statuses are kept in v2 PascalCase; v3 names are derived when rendering. A contact is suppressed
when its status is anything but ``Subscribed`` or ``PendingOptIn``; then ``suppression`` holds the
reason (equal to the status) and the date it was removed.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.dotdigital.contracts import format_date

OPT_IN_TYPES = ("Unknown", "Single", "Double", "VerifiedDouble")
EMAIL_TYPES = ("PlainText", "Html")
ACTIVE_STATUSES = ("Subscribed", "PendingOptIn")
SUPPRESSION_REASONS = (
    "Unsubscribed", "SoftBounced", "HardBounced", "IspComplained", "MailBlocked",
    "DirectComplaint", "Suppressed", "NotAllowed", "DomainSuppression", "NoMxRecord",
    "SharedSuppression", "Deleted",
)
CONTACT_STATUSES = ACTIVE_STATUSES + SUPPRESSION_REASONS
# Only what the account itself or the contact chose can be undone by a resubscribe; bounces,
# complaints and global/domain lists cannot (a seed may override this per contact).
RESUBSCRIBABLE_REASONS = frozenset({"Unsubscribed", "Suppressed"})

LAST_SUBSCRIBED = "LASTSUBSCRIBED"
DEFAULT_DATA_FIELDS = ("FIRSTNAME", "FULLNAME", "GENDER", LAST_SUBSCRIBED, "LASTNAME", "POSTCODE")

_V3_EMAIL_STATUS = {
    "Subscribed": "subscribed", "PendingOptIn": "pendingOptIn", "Unsubscribed": "unsubscribed",
    "SoftBounced": "softBounced", "HardBounced": "hardBounced", "IspComplained": "ispComplained",
    "MailBlocked": "blockedlocalpart", "DirectComplaint": "directComplaint",
    "Suppressed": "suppressed", "NotAllowed": "suppressed", "DomainSuppression": "domainSuppressed",
    "NoMxRecord": "suppressed", "SharedSuppression": "sharedsuppression", "Deleted": "deleted",
}
_V3_CONTACT_STATUS = {
    "Subscribed": "subscribed", "PendingOptIn": "pendingOptIn", "Unsubscribed": "unsubscribed",
    "Deleted": "deleted",
}

# What the real service rejects as "not a valid email address": it needs a dotted domain
# (``demo@apiconnector`` fails) and no whitespace.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$")


def is_valid_email(email: str) -> bool:
    return len(email) <= 254 and _EMAIL.match(email) is not None


def email_key(email: str) -> str:
    """One contact per address regardless of case."""
    return email.strip().lower()


def canonical_enum(value: Any, allowed: Iterable[str]) -> str | None:
    """``value`` spelled as in ``allowed`` (v2 accepts enums in any case), or None."""
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    for candidate in allowed:
        if candidate.lower() == lowered:
            return candidate
    return None


@dataclass
class Suppression:
    reason: str
    date_removed: float


@dataclass
class PendingConfirmation:
    """A challenge (resubscribe or double opt-in) the contact has not confirmed yet."""

    kind: str  # "resubscribe" | "optIn"
    sent_at: float
    address_book_id: int | None = None
    data_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Contact:
    id: int
    email: str
    opt_in_type: str
    email_type: str
    status: str
    created: float
    modified: float
    data_fields: dict[str, Any] = field(default_factory=dict)
    suppression: Suppression | None = None
    resubscribable: bool | None = None  # None: decided by the suppression reason
    pending: PendingConfirmation | None = None

    @property
    def key(self) -> str:
        return email_key(self.email)

    @property
    def is_suppressed(self) -> bool:
        return self.suppression is not None

    def can_be_unsuppressed(self) -> bool:
        if self.suppression is None:
            return True
        if self.resubscribable is not None:
            return self.resubscribable
        return self.suppression.reason in RESUBSCRIBABLE_REASONS


@functools.lru_cache(maxsize=1 << 19)
def timestamp_text(seconds: float) -> str:
    # Cached: v3 pages render two timestamps per contact and strftime dominated their cost.
    return format_date(dt.datetime.fromtimestamp(seconds, tz=dt.UTC))


def api_contact(contact: Contact, field_names: Iterable[str] | None) -> dict[str, Any]:
    """v2 ``ApiContact``; ``field_names`` None renders ``dataFields: null`` as list calls do."""
    data: list[dict[str, Any]] | None = None
    if field_names is not None:
        data = [{"key": name, "value": contact.data_fields.get(name)} for name in field_names]
    return {
        "id": contact.id, "email": contact.email, "optInType": contact.opt_in_type,
        "emailType": contact.email_type, "dataFields": data, "status": contact.status,
    }


def api_suppression(contact: Contact) -> dict[str, Any]:
    """v2 ``ApiContactSuppression`` of a suppressed contact."""
    assert contact.suppression is not None
    return {
        "suppressedContact": api_contact(contact, None),
        "dateRemoved": timestamp_text(contact.suppression.date_removed),
        "reason": contact.suppression.reason,
    }


def v3_contact(
    contact: Contact, data_fields: Iterable[str] | None, include: frozenset[str],
    lists: list[dict[str, Any]],
) -> dict[str, Any]:
    """v3 ``contact``; ``data_fields`` None means none were asked for."""
    body: dict[str, Any] = {
        "contactId": contact.id,
        "status": _V3_CONTACT_STATUS.get(contact.status, "suppressed"),
        "created": timestamp_text(contact.created),
        "updated": timestamp_text(contact.modified),
        "identifiers": {"email": contact.email},
    }
    if data_fields is not None:
        body["dataFields"] = {name: contact.data_fields.get(name) for name in data_fields}
    if "channelProperties" in include:
        body["channelProperties"] = {"email": {
            "emailType": contact.email_type, "optInType": contact.opt_in_type,
            "status": _V3_EMAIL_STATUS[contact.status],
        }}
    if "lists" in include:
        body["lists"] = lists
    if "preferences" in include:
        body["preferences"] = []
    if "consentRecords" in include:
        body["consentRecords"] = []
    return body


def normalise_data_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Data field names are case-insensitive in dotdigital and shown upper-case."""
    return {str(name).upper(): value for name, value in raw.items()}
