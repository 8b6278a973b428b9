"""How the programs and engagement features read their input: v2 query paging, path values, seeds.

v2 runs on ASP.NET Web API, so query parameter names bind case-insensitively (official clients send
``select`` while others send ``Select``) and a value that does not bind is a 400. Seeds are checked
strictly so that a data generator's mistake fails loudly instead of loading half an account.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from emulators.dotdigital.contracts import (
    AccountContext,
    AccountHandler,
    AccountRoute,
    account_route,
    format_date,
    parse_date,
    v2_error,
)
from emulators.dotdigital.v2_input import INVALID_DATE, INVALID_REQUEST
from emulators.http import Request, Response

_INT32_MAX = 2**31 - 1

T = TypeVar("T")


class RequestRejected(Exception):
    """A request the real service answers with a v2 error; ``rejecting`` turns it into one."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def rejecting(handler: AccountHandler) -> AccountHandler:
    def guarded(ctx: AccountContext, request: Request, match: Any) -> Response:
        try:
            return handler(ctx, request, match)
        except RequestRejected as rejected:
            return v2_error(rejected.status, rejected.message)

    return guarded


def get_route(pattern: str, name: str, handler: AccountHandler) -> AccountRoute:
    """A GET route whose handler may raise ``RequestRejected``; ``name`` is the path template."""
    return account_route("GET", pattern, f"GET {name}", rejecting(handler))


# --- requests ----------------------------------------------------------------------------------
def query_params(request: Request) -> dict[str, str]:
    """Query parameters by lower-cased name; the last value wins, as ASP.NET binding does."""
    return {name.lower(): value for name, value in request.query_list}


@dataclass(frozen=True)
class Page:
    select: int
    skip: int

    def of(self, items: Sequence[T]) -> list[T]:
        return list(items[self.skip : self.skip + self.select])


def read_page(request: Request, *, default_select: int = 1000, max_select: int = 1000) -> Page:
    """``select`` 1..max and ``skip`` ≥ 0, else ``400 ERROR_PARAMETER_INVALID``.

    The maximum differs by endpoint (replies 5, forms 500, most 1000); so does the message.
    """
    params = query_params(request)
    message = (
        f"select must be between 1 and {max_select}, skip must not be negative. "
        "ERROR_PARAMETER_INVALID"
    )
    select = _int_param(params, "select", default_select, message)
    skip = _int_param(params, "skip", 0, message)
    if not 1 <= select <= max_select or not 0 <= skip <= _INT32_MAX:
        raise RequestRejected(400, message)
    return Page(select, skip)


def _int_param(params: Mapping[str, str], name: str, default: int, message: str) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise RequestRejected(400, message) from None


def read_flag(request: Request, name: str) -> bool | None:
    """An optional boolean query parameter (``true``/``false`` in any case)."""
    raw = query_params(request).get(name.lower())
    if raw is None:
        return None
    lowered = raw.strip().lower()
    if lowered == "":
        return None
    if lowered not in ("true", "false"):
        raise RequestRejected(400, INVALID_REQUEST)
    return lowered == "true"


def path_id(raw: str, not_found_message: str) -> int:
    """An id in the path; like the core, anything but a plain int32 names nothing: 404."""
    if not raw.isdigit() or int(raw) > _INT32_MAX:
        raise RequestRejected(404, not_found_message)
    return int(raw)


def path_date(raw: str) -> dt.datetime:
    """A ``{date}`` path segment in any form v2 accepts (see ``parse_date``)."""
    try:
        return parse_date(unquote(raw))
    except ValueError:
        raise RequestRejected(400, INVALID_DATE) from None


def api_date(value: dt.datetime | None) -> str | None:
    return None if value is None else format_date(value)


# --- seeds -------------------------------------------------------------------------------------
class SeedReader:
    """Typed access to one seed object; every complaint names where in the seed it is."""

    def __init__(self, raw: Any, where: str, allowed: Sequence[str]) -> None:
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: must be an object")
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
        self.raw = raw
        self.where = where

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.raw.get(key)
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{self.where}.{key}: must be an integer")
        return value

    def optional_integer(self, key: str) -> int | None:
        return self.integer(key) if self.has(key) else None

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise ValueError(f"{self.where}.{key}: must be a string")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def choice(self, key: str, choices: Sequence[str], default: str | None = None) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise ValueError(f"{self.where}.{key}: {value!r} is not one of {list(choices)}")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ValueError(f"{self.where}.{key}: must be true or false")
        return value

    def date(self, key: str, default: dt.datetime | None = None) -> dt.datetime:
        value = self.raw.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise ValueError(f"{self.where}.{key}: must be an ISO 8601 date string")
        try:
            parsed = parse_date(value)
        except ValueError:
            raise ValueError(f"{self.where}.{key}: {value!r} is not an ISO 8601 date") from None
        # The API shows milliseconds; keeping more would not survive an export round trip.
        return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)

    def optional_date(self, key: str) -> dt.datetime | None:
        return self.date(key) if self.has(key) else None

    def integers(self, key: str) -> list[int] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or any(
            isinstance(item, bool) or not isinstance(item, int) for item in value
        ):
            raise ValueError(f"{self.where}.{key}: must be a list of integers")
        return list(value)

    def objects(self, key: str) -> list[tuple[str, Any]]:
        """The items of a list of objects, each with its own location for messages."""
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(f"{self.where}.{key}: must be a list")
        return [(f"{self.where}.{key}[{index}]", item) for index, item in enumerate(value)]


def seed_items(
    raw_account: Mapping[str, Any], key: str, where: str
) -> list[tuple[str, Any]] | None:
    """The list under ``key`` of a raw account seed, or None when the key is absent."""
    if key not in raw_account:
        return None
    value = raw_account[key]
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key}: must be a list")
    return [(f"{where}.{key}[{index}]", item) for index, item in enumerate(value)]


def unique_by(items: Sequence[T], key: Callable[[T], Any], what: str, where: str) -> None:
    seen: set[Any] = set()
    for item in items:
        value = key(item)
        if value in seen:
            raise ValueError(f"{where}: duplicate {what} {value!r}")
        seen.add(value)


def normalise_guid(raw: str) -> str | None:
    """The canonical lower-case form of a GUID in any form .NET parses, or None."""
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        return None
