"""In-memory ``EmailPlatform``: per-account contacts with change times, paged like dotdigital."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shared.domain.model import EmailAccount
from shared.errors import AppError
from shared.services.ports import ContactOptIn, ContactOptInPage, EmailPlatformAccount

PAGE_SIZE = 1000


@dataclass(frozen=True)
class StoredContact:
    email: str
    opt_in_type: str
    modified: dt.datetime


class FakeEmailPlatform:
    def __init__(self) -> None:
        self.contacts: dict[str, list[StoredContact]] = {}
        self.requests: list[tuple[str, dt.datetime, int]] = []  # (account, since, skip)
        self.fail_describe: dict[str, AppError] = {}
        self.fail_at_request: int | None = None  # 1-based request number that raises
        self.failure: AppError | None = None
        self.on_request: Callable[[], None] = lambda: None  # e.g. to move a fake clock on

    def add(self, account: str, email: str, opt_in_type: str, modified: dt.datetime) -> None:
        self.contacts.setdefault(account, []).append(StoredContact(email, opt_in_type, modified))

    def describe_account(self, account: EmailAccount) -> EmailPlatformAccount:
        if account.row_id in self.fail_describe:
            raise self.fail_describe[account.row_id]
        return EmailPlatformAccount(account_id=1001, api_endpoint="https://r1-api.example/")

    def modified_contacts(
        self, account: EmailAccount, since: dt.datetime, *, start_skip: int = 0
    ) -> Iterator[ContactOptInPage]:
        skip = start_skip
        while True:
            self.requests.append((account.row_id, since, skip))
            self.on_request()
            if self.fail_at_request == len(self.requests) and self.failure is not None:
                raise self.failure
            matching = sorted((c for c in self.contacts.get(account.row_id, [])
                               if c.modified >= since), key=lambda c: c.modified)
            page = matching[skip:skip + PAGE_SIZE]
            last = len(page) < PAGE_SIZE
            yield ContactOptInPage(
                skip=skip, contacts=[ContactOptIn(c.email, c.opt_in_type) for c in page],
                last=last,
            )
            if last:
                return
            skip += PAGE_SIZE
