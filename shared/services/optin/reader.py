"""The opt-in reader: pages dotdigital's modified contacts of one email account into batches.

One run reads the contacts modified since ``since`` (the watermark minus a small overlap) and
publishes ``ApplyOptInBatch`` commands, one Service Bus session per shard of addresses, with the
run bookkeeping every sync shares (``shared/services/sync/paged_run.py``). Pages are addressed by
marker (a position in the result's order), never by offset, so no contact can slide into a page
already read, however many ticks the run spans: a contact edited while the run reads is read
again later in the run when the order is by change time (as the emulator's is), and by the next
run otherwise (its change is after this run's ``until``).

Dry runs keep their runs and cursor under their own sync key (``optin_sync_key``) and read from
the real watermark, which they never move.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.domain.model import EmailAccount, SyncType
from shared.services.ports import (
    PageCursor,
    SyncKey,
)
from shared.services.sync.paged_run import (
    FIRST_SINCE,
    Feed,
    PagedReader,
    ReaderProgress,
)

__all__ = ["FIRST_SINCE", "OptInReader", "ReaderProgress", "optin_sync_key"]

OPTIN_SYNC_TYPE = "ContactOptIn"
# Table keys allow letters, digits, '.', '_' and '-' only.
OPTIN_DRY_SYNC_TYPE = "ContactOptIn.dry"
PAGE_SIZE = 1000
# A batch costs a lookup and a write request whatever its size, and every session holds one
# batch, so batches are about 1000 changes: a flush (``OPTIN_PAGES_PER_FLUSH`` pages of 1000 over
# as many shards) gives each shard about 1000, and this cap leaves room for the shards' shares to
# vary by a few percent without a second, nearly empty batch.
MAX_BATCH_ITEMS = 1200


def optin_sync_key(email_account_id: str, *, dry_run: bool) -> SyncKey:
    """Where an account's opt-in state lives; dry runs are kept apart from real ones."""
    return SyncKey(email_account_id, OPTIN_DRY_SYNC_TYPE if dry_run else OPTIN_SYNC_TYPE)


@dataclass(frozen=True, kw_only=True)
class OptInReader(PagedReader[OptInChange]):
    """The opt-in sync's timer side (its fields are ``PagedReader``'s)."""

    @property
    def label(self) -> str:
        return "opt-in"

    @property
    def sync_type(self) -> SyncType:
        return SyncType.CONTACT_OPT_IN

    def email_of(self, item: OptInChange) -> str:
        return item.email

    def _feed(self, account: EmailAccount) -> Feed[OptInChange]:
        dry_run = self.settings.dry_run

        def pages(cursor: PageCursor) -> Iterator[tuple[Sequence[OptInChange], str | None]]:
            for page in self.platform.modified_contacts(
                account, cursor.since, marker=cursor.marker, page_size=PAGE_SIZE
            ):
                yield page.contacts, page.next_marker

        return Feed(
            label=self.label, sync_type=SyncType.CONTACT_OPT_IN,
            key=optin_sync_key(account.row_id, dry_run=dry_run),
            real_key=optin_sync_key(account.row_id, dry_run=False),
            pages=pages, command=_command, session_prefix="optin",
            shards=self.settings.optin_shards,
            pages_per_flush=self.settings.optin_pages_per_flush,
            max_batch_items=MAX_BATCH_ITEMS,
        )


def _command(ref: BatchRef, items: tuple[OptInChange, ...]) -> ApplyOptInBatch:
    return ApplyOptInBatch(ref, items)
