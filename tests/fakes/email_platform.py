"""In-memory ``EmailPlatform``: per-account contacts with change times, paged like dotdigital v3.

``GET /contacts/v3?~modified=gte::<since>`` lists contacts in ascending (modified, id) order and
pages by marker: a page's ``next`` marker is the key of the last contact it served, and the next
page starts after that key. So a contact modified while a read goes on moves behind the marker
and is read again, and no other contact shifts past a page boundary (an offset, such as the index
of the next contact, would skip one whenever an earlier contact moved to the end). The last page
is the one without a ``next`` marker, as the emulator answers.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from shared.domain.commands import OptInChange
from shared.domain.model import EmailAccount
from shared.errors import AppError
from shared.services.ports import ContactPage, EmailPlatformAccount

PAGE_SIZE = 1000


@dataclass(frozen=True)
class StoredContact:
    email: str
    opt_in_type: str
    modified: dt.datetime
    contact_id: int  # dotdigital's id: breaks ties between equal change times

    @property
    def key(self) -> tuple[dt.datetime, int]:
        return (self.modified, self.contact_id)


def marker_after(contact: StoredContact) -> str:
    """The marker of the page that ends with ``contact`` (opaque to the app)."""
    return f"{contact.modified.isoformat()}|{contact.contact_id}"


def _key_of(marker: str) -> tuple[dt.datetime, int]:
    modified, _, contact_id = marker.rpartition("|")
    return dt.datetime.fromisoformat(modified), int(contact_id)


class FakeEmailPlatform:
    def __init__(self) -> None:
        self.contacts: dict[str, list[StoredContact]] = {}
        self.requests: list[tuple[str, dt.datetime, str | None]] = []  # (account, since, marker)
        self.fail_describe: dict[str, AppError] = {}
        self.fail_at_request: int | None = None  # 1-based request number that raises
        self.failure: AppError | None = None
        self.on_request: Callable[[], None] = lambda: None  # e.g. to move a fake clock on
        self._ids = itertools.count(1)

    def add(self, account: str, email: str, opt_in_type: str, modified: dt.datetime) -> None:
        self.contacts.setdefault(account, []).append(
            StoredContact(email, opt_in_type, modified, next(self._ids))
        )

    def modify(self, account: str, email: str, opt_in_type: str, modified: dt.datetime) -> None:
        """Change a contact as dotdigital would: same id, a new change time (so a later place in
        the change order)."""
        stored = self.contacts[account]
        (index,) = [n for n, contact in enumerate(stored) if contact.email == email]
        stored[index] = replace(stored[index], opt_in_type=opt_in_type, modified=modified)

    def describe_account(self, account: EmailAccount) -> EmailPlatformAccount:
        if account.row_id in self.fail_describe:
            raise self.fail_describe[account.row_id]
        return EmailPlatformAccount(account_id=1001, api_endpoint="https://r1-api.example/")

    def modified_contacts(
        self, account: EmailAccount, since: dt.datetime, *, marker: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[ContactPage]:
        while True:
            self.requests.append((account.row_id, since, marker))
            self.on_request()
            if self.fail_at_request == len(self.requests) and self.failure is not None:
                raise self.failure
            after = None if marker is None else _key_of(marker)
            # Sorted per request: contacts modified since the last page are in their new place.
            matching = sorted(
                (c for c in self.contacts.get(account.row_id, [])
                 if c.modified >= since and (after is None or c.key > after)),
                key=lambda c: c.key,
            )
            page = matching[:page_size]
            marker = marker_after(page[-1]) if len(matching) > page_size else None
            yield ContactPage(
                contacts=[OptInChange(c.email, c.opt_in_type) for c in page], next_marker=marker,
            )
            if marker is None:
                return
