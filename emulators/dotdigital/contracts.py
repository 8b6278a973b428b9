"""What the dotdigital emulator's parts agree on: account routes, contact lookups, errors, dates.

The core (``emulator.py``) authenticates, checks the region and applies rate limits, then calls an
``AccountRoute`` handler with the resolved account. Feature modules (programs, engagement) only
see ``AccountContext`` and the ``ContactDirectory`` protocol, never the core's storage.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from emulators.http import Request, Response


@dataclass(frozen=True)
class AccountContext:
    """The authenticated account a request runs as."""

    account_id: int
    region: str


AccountHandler = Callable[[AccountContext, Request, "re.Match[str]"], Response]


@dataclass(frozen=True)
class AccountRoute:
    """``pattern`` is matched against the path after the region prefix, e.g. ``/v2/programs``."""

    method: str
    pattern: re.Pattern[str]
    name: str
    handler: AccountHandler


def account_route(method: str, pattern: str, name: str, handler: AccountHandler) -> AccountRoute:
    return AccountRoute(method.upper(), re.compile(pattern), name, handler)


class ContactDirectory(Protocol):
    """Read access to one account's contacts, as the feature modules need it."""

    def contact_by_id(self, account_id: int, contact_id: int) -> dict[str, Any] | None:
        """The contact in v2 ``ApiContact`` shape, or None."""

    def contact_by_email(self, account_id: int, email: str) -> dict[str, Any] | None:
        """Case-insensitive lookup; the contact in v2 ``ApiContact`` shape, or None."""

    def is_suppressed(self, account_id: int, email: str) -> bool:
        """Whether the address is on the account's suppression list."""

    def address_book_exists(self, account_id: int, address_book_id: int) -> bool:
        """Whether the account has this address book."""


def v2_error(status: int, message: str) -> Response:
    """A v2 error: ``{"message": "..."}`` with the documented text, e.g. ``Error: ERROR_X``."""
    return Response.json(status, {"message": message})


def v3_error(
    status: int, error_code: str, description: str, details: list[dict[str, str]] | None = None
) -> Response:
    body: dict[str, Any] = {"errorCode": error_code, "description": description}
    if details:
        body["details"] = details
    return Response.json(status, body)


def format_date(value: dt.datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``, as the documented examples show."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_date(text: str) -> dt.datetime:
    """Parse the date forms v2 accepts: date only, ``T`` or space, optional fraction and zone.

    A ``+`` that arrived unencoded in a path was decoded to a space by then; it is read back as
    ``+``. Zone-less values are UTC. Raises ``ValueError`` for anything else.
    """
    candidate = text.strip()
    candidate = re.sub(r" (\d{2}:?\d{2})$", r"+\1", candidate)
    match = _DATE.match(candidate)
    if match is None:
        raise ValueError(f"not a date: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    tz = dt.UTC
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    parsed = dt.datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
        micro, tzinfo=tz,
    )
    return parsed.astimezone(dt.UTC)
