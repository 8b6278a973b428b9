"""``EmailPlatform`` over dotdigital: a client per email account, secrets from app settings."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests

from shared.adapters.dotdigital import suppressions
from shared.adapters.dotdigital.client import MAX_V2_SELECT, ApiCredentials, DotdigitalClient
from shared.adapters.http.policy import CallStats, RetryPolicy
from shared.config import DotdigitalSettings, HttpSettings, resolve_secret
from shared.domain.commands import OptInChange
from shared.domain.model import EmailAccount, OptInType
from shared.domain.programs import PlatformProgram
from shared.services.ports import ContactPage, EmailPlatformAccount, EventPage

logger = logging.getLogger(__name__)
# dotdigital's ids are int32; a larger one could not be stored in ``ec_dotdigitalprogramid``.
MAX_PROGRAM_ID = 2_147_483_647


class DotdigitalEmailPlatform:
    def __init__(
        self,
        settings: DotdigitalSettings,
        http: HttpSettings,
        environ: Mapping[str, str],
        *,
        stats: CallStats | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
        self._policy = policy  # None: each client's default, from ``http``
        self._environ = environ
        self._session = requests.Session()
        self.stats = stats or CallStats()
        self._clients: dict[str, DotdigitalClient] = {}
        self._lock = threading.Lock()

    def client_for(self, account: EmailAccount) -> DotdigitalClient:
        """The client of an email account (created once; the secret is read from app settings)."""
        with self._lock:
            client = self._clients.get(account.row_id)
            if client is None:
                credentials = ApiCredentials(
                    api_user=account.api_user,
                    password=resolve_secret(self._environ, account.secret_name),
                )
                client = DotdigitalClient(
                    self._settings.account_info_url,
                    credentials,
                    self._http,
                    session=self._session,
                    policy=self._policy,
                    stats=self.stats,
                )
                self._clients[account.row_id] = client
            return client

    def describe_account(self, account: EmailAccount) -> EmailPlatformAccount:
        info = self.client_for(account).account_info()
        return EmailPlatformAccount(account_id=info.account_id, api_endpoint=info.api_endpoint)

    def modified_contacts(
        self, account: EmailAccount, since: dt.datetime, *, marker: str | None = None,
        page_size: int = 1000,
    ) -> Iterator[ContactPage]:
        client = self.client_for(account)
        for page in client.modified_contacts(since, marker=marker, limit=page_size):
            converted = ContactPage(
                contacts=[_opt_in_change(item) for item in page.items],
                next_marker=page.next_marker,
            )
            del page  # the decoded JSON goes before the next page is fetched
            yield converted
            del converted

    def suppression_events(
        self, account: EmailAccount, since: dt.datetime, until: dt.datetime, *,
        marker: str | None = None, page_size: int = 1000,
    ) -> Iterator[EventPage]:
        """See ``EmailPlatform``; the paging is explained in ``suppressions``. Arguments and the
        marker are checked at the call, before any request (a malformed marker is a
        ``ValueError``), not when the first page is asked for."""
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("since and until must be timezone-aware")
        if since > until:
            raise ValueError("since must not be after until")
        if not 1 <= page_size <= MAX_V2_SELECT:
            raise ValueError(f"page_size must be between 1 and {MAX_V2_SELECT}")
        position = (suppressions.first_position(since) if marker is None
                    else suppressions.decode_marker(marker))
        return suppressions.event_pages(
            self.client_for(account), since.astimezone(dt.UTC), until.astimezone(dt.UTC),
            position, page_size,
        )

    def suppress(self, account: EmailAccount, emails: Sequence[str]) -> set[str]:
        return suppressions.suppress_all(self.client_for(account), emails)

    def resubscribe(
        self, account: EmailAccount, email: str, *, preferred_locale: str | None,
        return_url: str | None,
    ) -> str:
        return self.client_for(account).resubscribe(
            email, preferred_locale=preferred_locale, return_url=return_url
        )

    def programs(
        self, account: EmailAccount, *, page_size: int = MAX_V2_SELECT
    ) -> list[PlatformProgram]:
        """Every program of the account, whatever its status: ``select``/``skip`` pages until a
        short one (one request per 1000 programs). Offset paging can skip a program when one
        before it is deleted during the read; the mirror then deactivates it and the next
        refresh makes it active again, keeping the administrator's ``ec_enabled``."""
        if not 1 <= page_size <= MAX_V2_SELECT:
            raise ValueError(f"page_size must be between 1 and {MAX_V2_SELECT}")
        client = self.client_for(account)
        programs: list[PlatformProgram] = []
        skip = 0
        while True:
            page = client.programs_page(select=page_size, skip=skip)
            for item in page:
                program = _program(item)
                if program is None:
                    # One malformed entry must not hide the account's other programs.
                    logger.warning("account=%s: a program without a usable id was ignored",
                                   account.row_id)
                    continue
                programs.append(program)
            if len(page) < page_size:
                return programs
            skip += page_size


def _program(item: Any) -> PlatformProgram | None:
    """An ``ApiProgram`` as decoded, or None without a usable id (name and status default to
    blank: the rules give a blank name a placeholder)."""
    if not isinstance(item, dict):
        return None
    program_id = item.get("id")
    if isinstance(program_id, bool) or not isinstance(program_id, int):
        return None
    if not 1 <= program_id <= MAX_PROGRAM_ID:
        return None
    name, status = item.get("name"), item.get("status")
    return PlatformProgram(
        program_id=program_id,
        name=name if isinstance(name, str) else "",
        status=status if isinstance(status, str) else "",
    )


# One shared string per known name (a flush buffers tens of thousands of contacts); v3 may
# answer in the request casing (``verifiedDouble``), so names are matched case-insensitively.
_KNOWN_OPT_IN_NAMES = {t.dotdigital_name.casefold(): t.dotdigital_name for t in OptInType}


def _opt_in_change(item: Any) -> OptInChange:
    # A null or missing field becomes blank: the applier counts such contacts, never fails on them.
    if not isinstance(item, dict):
        return OptInChange(email="", opt_in_type="")
    identifiers = item.get("identifiers")
    email = identifiers.get("email") if isinstance(identifiers, dict) else None
    channels = item.get("channelProperties")
    channel = channels.get("email") if isinstance(channels, dict) else None
    opt_in = channel.get("optInType") if isinstance(channel, dict) else None
    if not isinstance(opt_in, str):
        opt_in = ""
    return OptInChange(
        email=email if isinstance(email, str) else "",
        opt_in_type=_KNOWN_OPT_IN_NAMES.get(opt_in.casefold(), opt_in),
    )
