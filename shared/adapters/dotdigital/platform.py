"""``EmailPlatform`` over dotdigital: a client per email account, secrets from app settings."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from shared.adapters.dotdigital.client import ApiCredentials, DotdigitalClient
from shared.adapters.http.policy import CallStats
from shared.config import DotdigitalSettings, HttpSettings, resolve_secret
from shared.domain.model import EmailAccount, OptInType
from shared.services.ports import ContactOptIn, ContactOptInPage, EmailPlatformAccount


class DotdigitalEmailPlatform:
    def __init__(
        self,
        settings: DotdigitalSettings,
        http: HttpSettings,
        environ: Mapping[str, str],
        *,
        stats: CallStats | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
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
                    stats=self.stats,
                )
                self._clients[account.row_id] = client
            return client

    def describe_account(self, account: EmailAccount) -> EmailPlatformAccount:
        info = self.client_for(account).account_info()
        return EmailPlatformAccount(account_id=info.account_id, api_endpoint=info.api_endpoint)

    def modified_contacts(
        self, account: EmailAccount, since: dt.datetime, *, start_skip: int = 0
    ) -> Iterator[ContactOptInPage]:
        client = self.client_for(account)
        for page in client.modified_contacts(since, start_skip=start_skip):
            converted = ContactOptInPage(
                skip=page.skip, contacts=[_contact_opt_in(item) for item in page.items],
                last=page.last,
            )
            del page  # the decoded JSON goes before the next page is fetched
            yield converted
            del converted


_KNOWN_OPT_IN_NAMES = {t.dotdigital_name: t.dotdigital_name for t in OptInType}


def _contact_opt_in(item: Any) -> ContactOptIn:
    # A null or missing field becomes blank: the applier counts such contacts, never fails on them.
    if not isinstance(item, dict):
        return ContactOptIn(email="", opt_in_type="")
    email, opt_in = item.get("email"), item.get("optInType")
    if not isinstance(opt_in, str):
        opt_in = ""
    return ContactOptIn(
        email=email if isinstance(email, str) else "",
        # One shared string per known name: a flush buffers tens of thousands of contacts.
        opt_in_type=_KNOWN_OPT_IN_NAMES.get(opt_in, opt_in),
    )
