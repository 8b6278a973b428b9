"""The Engagement reader: one account's sends, opens, clicks, page views and form responses
since the watermark, in batches for the event store (architecture §1.1 C4).

The run bookkeeping is every sync's (``shared/services/sync/paged_run.py``): a killed run resumes
at its cursor, the watermark moves only once every batch is published, and message ids depend on
the batch only. A large backlog spreads over ticks (``SYNC_READER_MAX_SECONDS``) instead of
failing, and the source reads within dotdigital's hourly limit by reading lists, never a contact
at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared.domain.commands import ApplyEngagementBatch, BatchRef
from shared.domain.engagement import EngagementEvent
from shared.domain.model import EmailAccount, SyncType
from shared.services.ports import EngagementSource, PageCursor, SyncKey
from shared.services.sync.paged_run import Feed, PagedReader

ENGAGEMENT_SYNC_TYPE = "Engagement"
ENGAGEMENT_DRY_SYNC_TYPE = "Engagement.dry"
# The largest page any engagement list serves (activity rows, 2000); the adapter caps each
# endpoint at its own maximum.
PAGE_SIZE = 2000
MAX_BATCH_ITEMS = 1000  # events are larger than opt-in changes: the codec splits by size too


def engagement_sync_key(email_account_id: str, *, dry_run: bool) -> SyncKey:
    """Where an account's Engagement state lives; dry runs are kept apart."""
    return SyncKey(email_account_id,
                   ENGAGEMENT_DRY_SYNC_TYPE if dry_run else ENGAGEMENT_SYNC_TYPE)


@dataclass(frozen=True, kw_only=True)
class EngagementReader(PagedReader[EngagementEvent]):
    """The Engagement sync's timer side (``PagedReader``'s fields and the event source)."""

    source: EngagementSource

    @property
    def label(self) -> str:
        return "engagement"

    @property
    def sync_type(self) -> SyncType:
        return SyncType.ENGAGEMENT

    def email_of(self, item: EngagementEvent) -> str:
        return item.email

    def _feed(self, account: EmailAccount) -> Feed[EngagementEvent]:
        dry_run = self.settings.dry_run

        def pages(cursor: PageCursor) -> Iterator[tuple[Sequence[EngagementEvent], str | None]]:
            for page in self.source.events(account, cursor.since, cursor.until,
                                           marker=cursor.marker, page_size=PAGE_SIZE):
                yield page.events, page.next_marker

        def command(ref: BatchRef, items: tuple[EngagementEvent, ...]) -> ApplyEngagementBatch:
            return ApplyEngagementBatch(ref, items)

        return Feed(
            label=self.label, sync_type=SyncType.ENGAGEMENT,
            key=engagement_sync_key(account.row_id, dry_run=dry_run),
            real_key=engagement_sync_key(account.row_id, dry_run=False),
            pages=pages, command=command, session_prefix="engagement",
            # One person's events in one session: their summary row is written by one
            # consumer at a time (the store's transactions keep it exact regardless).
            shards=self.settings.engagement_shards,
            pages_per_flush=self.settings.engagement_shards,
            max_batch_items=MAX_BATCH_ITEMS,
        )
