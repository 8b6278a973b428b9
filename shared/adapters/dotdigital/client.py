"""dotdigital API v2 client on ``requests``: Basic auth per email account, region discovery,
``select``/``skip`` paging as generators, typed errors that keep dotdigital's error code.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from shared.adapters.http.policy import CallStats, RetryPolicy, ServiceCaller
from shared.config import HttpSettings
from shared.errors import BadRequest, System

MAX_SELECT = 1000


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    api_user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account_id: int
    api_endpoint: str  # regional base, always ending in "/"
    properties: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ContactPage:
    """One page of a ``select``/``skip`` read; ``skip`` is where it started (a resumable cursor)."""

    skip: int
    items: list[dict[str, Any]]
    last: bool


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

    def iter_pages(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        select: int = MAX_SELECT,
        start_skip: int = 0,
        operation: str,
    ) -> Iterator[ContactPage]:
        """Pages of a v2 list endpoint from ``start_skip`` on; a short page is the last one."""
        if not 1 <= select <= MAX_SELECT:
            raise ValueError(f"select must be between 1 and {MAX_SELECT}")
        if start_skip < 0:
            raise ValueError("skip must not be negative")
        skip = start_skip
        while True:
            query = {**(params or {}), "select": str(select), "skip": str(skip)}
            items = self._send("GET", self._url(path), operation, params=query).json()
            if not isinstance(items, list):
                raise BadRequest(System.DOTDIGITAL, f"{operation} did not return a list")
            last = len(items) < select
            yield ContactPage(skip=skip, items=items, last=last)
            del items  # not held while the next page is fetched and decoded
            if last:
                return
            skip += select

    def modified_contacts(
        self, since: dt.datetime, *, start_skip: int = 0, with_full_data: bool = False
    ) -> Iterator[ContactPage]:
        """Contacts modified at or after ``since``, in pages of 1000 (``ApiContact`` dicts)."""
        path = f"v2/contacts/modified-since/{quote(format_since(since), safe='')}"
        params = {"withFullData": "true" if with_full_data else "false"}
        return self.iter_pages(
            path, params=params, start_skip=start_skip, operation="contacts modified-since"
        )


_PROCESS_REGIONS = RegionCache()
