"""v3 contact reads: ``GET /contacts/v3`` with seek paging, and single lookups.

Order is ascending by (modified, id) under ``~modified``, by (created, id) under ``~created`` and
by id otherwise. The marker is an opaque token holding the last key served, so a page request
costs a bisect plus the page, and contacts changed while a client pages move behind the marker
(a change feed sees them again) instead of shifting offsets.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Container, Iterator
from typing import Any
from urllib.parse import quote, unquote, urlencode

from emulators.dotdigital.account_store import AccountStore
from emulators.dotdigital.contact_model import Contact, is_valid_email, v3_contact
from emulators.dotdigital.contacts_v2 import StoreLookup
from emulators.dotdigital.contracts import (
    AccountContext,
    AccountRoute,
    account_route,
    parse_date,
    v3_error,
)
from emulators.dotdigital.v2_input import ApiError
from emulators.http import Request, Response

DEFAULT_LIMIT = 5000
MAX_LIMIT = 5000
INCLUDES = frozenset({"channelProperties", "lists", "preferences", "consentRecords"})
_FILTER = re.compile(r"^gte::(\d{4}-\d{2}-\d{2}T.+)$")


def invalid(code: str, description: str, status: int = 400) -> ApiError:
    return ApiError(v3_error(status, f"contacts:{code}", description))


class ContactsV3:
    def __init__(self, store_of: StoreLookup) -> None:
        self.store_of = store_of

    def routes(self) -> list[AccountRoute]:
        return [
            account_route("GET", r"/contacts/v3", "v3.contacts.list", self.list_contacts),
            account_route("GET", r"/contacts/v3/(?P<identifier>[^/]+)/(?P<value>[^/]+)",
                          "v3.contacts.get", self.get),
        ]

    def list_contacts(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        query = request.query
        for first, second in (("~created", "~modified"), ("~listId", "~segmentId")):
            if first in query and second in query:
                raise invalid("invalidFilter",
                              f"The filters '{first}' and '{second}' cannot be combined")
        order, since = "id", 0.0
        for name in ("~modified", "~created"):
            if name in query:
                order, since = name[1:], _filter_time(query[name])
        limit = _limit(query.get("limit"))
        fields, include = _rendering(store, query)
        members = _list_filter(store, query)
        marker = query.get("marker") or None
        keys = _keys_after(store, order, since, _decode_marker(marker, order), members)
        page = [key for key, _ in zip(keys, range(limit + 1), strict=False)]
        has_next = len(page) > limit
        page = page[:limit]
        items = [_render(store, store.contacts[key[1]], fields, include) for key in page]
        base = f"{request.base_url}/{ctx.region}/contacts/v3"
        kept = [(name, value) for name, value in request.query_list if name != "marker"]
        links: dict[str, Any] = {
            "self": {"marker": marker or "", "link": _link(base, kept, marker)},
            "first": {"marker": "", "link": _link(base, kept, None)},
        }
        if has_next:
            next_marker = _encode_marker(order, page[-1])
            links["next"] = {"marker": next_marker, "link": _link(base, kept, next_marker)}
        return Response.json(200, {"_links": links, "_items": items})

    def get(self, ctx: AccountContext, request: Request, m: re.Match[str]) -> Response:
        store = self.store_of(ctx.account_id)
        identifier, value = unquote(m["identifier"]), unquote(m["value"])
        contact: Contact | None = None
        if identifier == "contactId":
            if not value.isdigit():
                raise invalid("invalidId",
                              f"The id value '{value}' is invalid for the identifier 'contactId'")
            contact = store.contacts.get(int(value))
        elif identifier == "email":
            if not is_valid_email(value):
                raise invalid("invalidId",
                              f"The id value '{value}' is invalid for the identifier 'email'")
            contact = store.contact_by_email(value)
        if contact is None:
            raise ApiError(v3_error(
                404, "contacts:contactNotFound", "The following contacts could not be found",
                [{"item": value, "description": f"Not found using the identifier '{identifier}'"}],
            ))
        fields, include = _rendering(store, request.query)
        return Response.json(200, _render(store, contact, fields, include))


def _filter_time(raw: str) -> float:
    # A raw "+" in a query string arrives as a space; read it back as the offset sign.
    match = _FILTER.match(raw.strip())
    try:
        if match is None:
            raise ValueError(raw)
        return parse_date(match.group(1)).timestamp()
    except ValueError:
        raise invalid("invalidFilter", f"The filter value '{raw}' is invalid") from None


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid("invalidFilter", f"The limit value '{raw}' is invalid; use 1 to {MAX_LIMIT}")
    return int(raw)


def _rendering(store: AccountStore, query: dict[str, str]) -> tuple[tuple[str, ...] | None,
                                                                     frozenset[str]]:
    raw_fields = query.get("data-fields")
    fields: tuple[str, ...] | None = None
    if raw_fields:
        names = [name.strip().upper() for name in raw_fields.split("|") if name.strip()]
        fields = store.sorted_field_names() if "[[ALL]]" in names else tuple(names)
    raw_include = query.get("include", "").split("|")
    include = frozenset(item.strip() for item in raw_include if item.strip())
    unknown = include - INCLUDES
    if unknown:
        raise invalid("invalidFilter", f"The include value '{sorted(unknown)[0]}' is invalid")
    return fields, include


def _list_filter(store: AccountStore, query: dict[str, str]) -> Container[int] | None:
    """Member ids when ``~listId`` or ``~segmentId`` narrows the read (no segments exist here)."""
    if "~segmentId" in query:
        if not query["~segmentId"].isdigit():
            raise invalid("invalidFilter", f"The filter value '{query['~segmentId']}' is invalid")
        return frozenset()
    if "~listId" not in query:
        return None
    raw = query["~listId"]
    if not raw.isdigit():
        raise invalid("invalidFilter", f"The filter value '{raw}' is invalid")
    book = store.address_books.get(int(raw))
    return book.members if book is not None else frozenset()


def _keys_after(
    store: AccountStore, order: str, since: float, after: tuple[float, int] | None,
    members: Container[int] | None,
) -> Iterator[tuple[float, int]]:
    start = after if after is not None else (since, -1)
    while True:
        if order == "id":
            chunk = [(0.0, cid) for cid in store.ids.after(int(start[1]), 1000)]
        else:
            index = store.modified if order == "modified" else store.created
            chunk = index.after(start, 1000)
        for key in chunk:
            if members is None or key[1] in members:
                yield key
        if len(chunk) < 1000:
            return
        start = chunk[-1]


def _encode_marker(order: str, key: tuple[float, int]) -> str:
    raw = json.dumps({"o": order, "k": [key[0], key[1]]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_marker(marker: str | None, order: str) -> tuple[float, int] | None:
    if marker is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)))
        if decoded["o"] != order:
            raise ValueError("marker of another query")
        return float(decoded["k"][0]), int(decoded["k"][1])
    except (ValueError, KeyError, TypeError, IndexError):
        raise invalid("invalidMarker", f"The marker value '{marker}' is invalid") from None


def _link(base: str, query: list[tuple[str, str]], marker: str | None) -> str:
    pairs = query + ([("marker", marker)] if marker else [])
    if not pairs:
        return base
    return base + "?" + urlencode(pairs, quote_via=quote, safe=":~|[]")


def _render(
    store: AccountStore, contact: Contact, fields: tuple[str, ...] | None,
    include: frozenset[str],
) -> dict[str, Any]:
    lists: list[dict[str, Any]] = []
    if "lists" in include:
        lists = [
            {"id": book.id, "name": book.name, "status": "subscribed"}
            for book in store.books_of(contact) if not book.is_system
        ]
    return v3_contact(contact, fields, include, lists)
