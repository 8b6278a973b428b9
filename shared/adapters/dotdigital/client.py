"""dotdigital API client on ``requests``: Basic auth per email account, region discovery, v3
marker paging as generators, the v2 suppression list and resubscribe calls, typed errors that
keep dotdigital's error code.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from shared.adapters.http.policy import CallStats, RetryPolicy, ServiceCaller
from shared.config import HttpSettings
from shared.errors import BadRequest, System

DEFAULT_PAGE_SIZE = 1000
MAX_V3_LIMIT = 5000
MAX_V2_SELECT = 1000  # v2 list reads take ``select`` 1..1000


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    api_user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account_id: int
    api_endpoint: str  # regional base, always ending in "/"
    properties: Mapping[str, str]


class RegionCache:
    """Account-info results per API user, shared by every client of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._infos: dict[tuple[str, str], AccountInfo] = {}

    def get(self, key: tuple[str, str]) -> AccountInfo | None:
        with self._lock:
            return self._infos.get(key)

    def put(self, key: tuple[str, str], info: AccountInfo) -> None:
        with self._lock:
            self._infos[key] = info


@dataclass(frozen=True, slots=True)
class MarkerPage:
    """One page of a v3 list; ``next_marker`` resumes after it (None: this is the last page)."""

    items: list[dict[str, Any]]
    next_marker: str | None


def format_since(value: dt.datetime) -> str:
    """A UTC date-time for a ``*-since/{date}`` path segment."""
    if value.tzinfo is None:
        raise ValueError("since dates must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DotdigitalClient:
    """One dotdigital account, reached with one API user."""

    def __init__(
        self,
        account_info_url: str,
        credentials: ApiCredentials,
        http: HttpSettings,
        *,
        session: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        stats: CallStats | None = None,
        regions: RegionCache | None = None,
    ) -> None:
        self._account_info_url = account_info_url
        self._credentials = credentials
        self._caller = ServiceCaller(
            System.DOTDIGITAL, http, session=session, policy=policy, stats=stats
        )
        self.stats = self._caller.stats
        self._regions = regions or _PROCESS_REGIONS

    def _send(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        return self._caller.send(
            method,
            url,
            operation,
            idempotent=idempotent,
            auth=(self._credentials.api_user, self._credentials.password),
            headers={"Accept": "application/json"},
            **kwargs,
        )

    def account_info(self) -> AccountInfo:
        """The account and its regional endpoint (cached per API user for the process)."""
        key = (self._account_info_url, self._credentials.api_user)
        cached = self._regions.get(key)
        if cached is not None:
            return cached
        body = self._send("GET", self._account_info_url, "account-info").json()
        properties = {
            str(item.get("name")): str(item.get("value"))
            for item in body.get("properties") or []
            if isinstance(item, dict)
        }
        endpoint = properties.get("ApiEndpoint", "")
        if not endpoint.startswith("https://"):
            raise BadRequest(System.DOTDIGITAL, "account-info has no https ApiEndpoint")
        info = AccountInfo(
            account_id=int(body.get("id", 0)),
            api_endpoint=endpoint.rstrip("/") + "/",
            properties=properties,
        )
        self._regions.put(key, info)
        return info

    def _url(self, path: str) -> str:
        return self.account_info().api_endpoint + path.lstrip("/")

    def send_json(
        self, method: str, path: str, operation: str, *, idempotent: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """One call to the account's regional API (``path`` below it), its JSON answer."""
        return self._send(method, self._url(path), operation, idempotent=idempotent,
                          **kwargs).json()

    def send_text(self, method: str, path: str, operation: str, **kwargs: Any) -> str:
        """One call to the account's regional API, its answer as text (CSV reports)."""
        return self._send(method, self._url(path), operation, **kwargs).text

    def iter_marker_pages(
        self, path: str, *, params: Mapping[str, str], limit: int, marker: str | None,
        operation: str,
    ) -> Iterator[MarkerPage]:
        """Pages of a v3 list endpoint from ``marker`` on (None: the first page).

        Seek paging: each page's ``_links.next.marker`` names the position after it, so items
        that change while the read goes on never shift a page boundary.
        """
        if not 1 <= limit <= MAX_V3_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_V3_LIMIT}")
        while True:
            query = {**params, "limit": str(limit)}
            if marker:
                query["marker"] = marker
            body = self._send("GET", self._url(path), operation, params=query).json()
            items = body.get("_items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise BadRequest(System.DOTDIGITAL, f"{operation} did not return _items")
            marker = _next_marker(body)
            yield MarkerPage(items=items, next_marker=marker)
            del items, body  # not held while the next page is fetched and decoded
            if marker is None:
                return

    def modified_contacts(
        self, since: dt.datetime, *, marker: str | None = None, limit: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[MarkerPage]:
        """Contacts modified at or after ``since`` with their email channel (``GET
        /contacts/v3``, ascending change order), from ``marker`` on."""
        params = {"~modified": f"gte::{format_since(since)}", "include": "channelProperties"}
        return self.iter_marker_pages(
            "contacts/v3", params=params, limit=limit, marker=marker,
            operation="contacts v3 modified",
        )

    def suppressed_since(self, date: dt.datetime, *, select: int, skip: int) -> list[Any]:
        """One page of the suppression list (every reason) from ``date`` on, ascending by
        (``dateRemoved``, contact id): ``GET /v2/contacts/suppressed-since/{date}``. Entries are
        returned as decoded; the caller reads them defensively."""
        if not 1 <= select <= MAX_V2_SELECT or skip < 0:
            raise ValueError(f"select must be between 1 and {MAX_V2_SELECT}, skip not negative")
        path = f"v2/contacts/suppressed-since/{format_since(date)}"
        params = {"select": str(select), "skip": str(skip)}
        body = self._send("GET", self._url(path), "suppressed-since", params=params).json()
        if not isinstance(body, list):
            raise BadRequest(System.DOTDIGITAL, "suppressed-since did not return a list")
        return body

    def subscribed_candidates(
        self, since: dt.datetime, *, marker: str | None = None, limit: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[MarkerPage]:
        """Contacts modified at or after ``since`` with their email channel and
        ``LASTSUBSCRIBED`` (how resubscriptions are found: there is no resubscribed-since
        endpoint), from ``marker`` on."""
        params = {
            "~modified": f"gte::{format_since(since)}",
            "data-fields": "LASTSUBSCRIBED",
            "include": "channelProperties",
        }
        return self.iter_marker_pages(
            "contacts/v3", params=params, limit=limit, marker=marker,
            operation="contacts v3 resubscribers",
        )

    def programs_page(self, *, select: int, skip: int) -> list[Any]:
        """One page of the account's programs (every status): ``GET /v2/programs``. Entries are
        returned as decoded; the caller reads them defensively."""
        if not 1 <= select <= MAX_V2_SELECT or skip < 0:
            raise ValueError(f"select must be between 1 and {MAX_V2_SELECT}, skip not negative")
        params = {"select": str(select), "skip": str(skip)}
        body = self._send("GET", self._url("v2/programs"), "programs", params=params).json()
        if not isinstance(body, list):
            raise BadRequest(System.DOTDIGITAL, "programs did not return a list")
        return body

    def suppress_contacts(self, emails: Sequence[str]) -> list[Any]:
        """Put these addresses on the suppression list (reason ``Suppressed``); returns the
        ``notFound`` entries as decoded (``{"id": 0, "email": ...}``)."""
        if not emails:
            return []
        body = self._send(
            "PUT", self._url("v2/contacts/suppress-contacts"), "suppress-contacts",
            # Suppressing an address that is already suppressed changes nothing (it keeps its
            # first reason and date), so repeating the request after a lost answer is safe.
            idempotent=True,
            json=[{"email": email} for email in emails],
        ).json()
        not_found = body.get("notFound") if isinstance(body, dict) else None
        if not isinstance(not_found, list):
            raise BadRequest(System.DOTDIGITAL, "suppress-contacts did not return notFound")
        return not_found

    def resubscribe(
        self, email: str, *, preferred_locale: str | None, return_url: str | None
    ) -> str:
        """``POST /v2/contacts/resubscribe`` (with a confirmation email when dotdigital needs
        one); returns the ``ApiResubscribeStatuses`` name. A refusal (400) raises
        ``BadRequest`` with dotdigital's message."""
        payload: dict[str, Any] = {"unsubscribedContact": {"email": email}}
        if preferred_locale is not None:
            payload["preferredLocale"] = preferred_locale
        if return_url is not None:
            payload["returnUrlToUseIfChallenged"] = return_url
        body = self._send(
            "POST", self._url("v2/contacts/resubscribe"), "resubscribe",
            # Repeating the call after a lost answer is harmless: a contact already challenged
            # is challenged again without a second email (dotdigital sends none within its
            # resend window), and one already resubscribed is subscribed, which answers
            # ContactAdded and changes nothing as no data fields are sent. Not retrying would
            # instead leave a request whose email may have gone out reported as failed.
            idempotent=True,
            json=payload,
        ).json()
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str) or not status:
            raise BadRequest(System.DOTDIGITAL, "resubscribe did not return a status")
        return status


def _next_marker(body: Mapping[str, Any]) -> str | None:
    links = body.get("_links")
    link = links.get("next") if isinstance(links, dict) else None
    marker = link.get("marker") if isinstance(link, dict) else None
    return marker if isinstance(marker, str) and marker else None


_PROCESS_REGIONS = RegionCache()
