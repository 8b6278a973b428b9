"""The SuppressionLists reader: one account's suppressions and resubscribers into batches.

A run first carries what CRM users asked for to dotdigital (``crm_side``), then reads, since
the watermark less a small overlap, dotdigital's suppressions (every reason) and its
resubscribers (contacts subscribed again, by their last subscription date, up to the run's
``until``), and publishes ``ApplySuppressionBatch`` commands, one Service Bus session per shard
of addresses, with the run bookkeeping every sync shares (``shared/services/sync/paged_run.py``).

``until`` is taken after the CRM step, so a resubscription that dotdigital granted at once to a
request of this run is read by this run. Resubscriptions after ``until`` are left to the next
run: within one run an address's resubscription can then never be older than its suppression
(see ``EmailPlatform.suppression_events``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from shared.domain.commands import ApplySuppressionBatch, BatchRef, SuppressionEvent
from shared.domain.model import EmailAccount, SyncSchedule, SyncType
from shared.services.ports import (
    CrmSettings,
    CrmSuppressions,
    PageCursor,
    SyncKey,
    Versioned,
)
from shared.services.suppression.crm_side import CrmSide
from shared.services.sync.paged_run import (
    Feed,
    PagedReader,
    ReaderProgress,
    open_run,
    read_since,
)

SUPPRESSION_SYNC_TYPE = "SuppressionLists"
SUPPRESSION_DRY_SYNC_TYPE = "SuppressionLists.dry"
PAGE_SIZE = 1000
# As for opt-in batches: about 1000 per shard and flush, room for shares that vary a little.
MAX_BATCH_ITEMS = 1200


def suppression_sync_key(email_account_id: str, *, dry_run: bool) -> SyncKey:
    """Where an account's SuppressionLists state lives; dry runs are kept apart."""
    return SyncKey(email_account_id,
                   SUPPRESSION_DRY_SYNC_TYPE if dry_run else SUPPRESSION_SYNC_TYPE)


@dataclass(frozen=True, kw_only=True)
class SuppressionReader(PagedReader[SuppressionEvent]):
    """What a SuppressionLists reader run needs; one per timer invocation."""

    crm: CrmSuppressions
    crm_settings: CrmSettings
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    # The CRM step's counts of the runs started by this reader (one per timer invocation), per
    # account, until the same invocation's read reports them in the run journal.
    start_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    _dnbe_accounts: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "suppression"

    @property
    def sync_type(self) -> SyncType:
        return SyncType.SUPPRESSION_LISTS

    def start(
        self, account: EmailAccount, schedule: SyncSchedule, run_id: str, now: dt.datetime
    ) -> tuple[Versioned[PageCursor], SyncSchedule] | None:
        """Carry CRM's requests to dotdigital, then open a run; None if another instance
        opened one first (the CRM step is safe to have run twice)."""
        window = dt.timedelta(hours=self.settings.resubscribe_resend_hours)
        counts = CrmSide(self.crm, self.platform, window, self.settings.dry_run).run(account, now)
        self.start_counts[account.row_id] = counts.as_counters()
        until = max(self.clock(), now)
        deps, feed = self._deps(), self._feed(account)
        since = read_since(deps, feed, until, self.settings.read_overlap_s)
        return open_run(deps, feed, account, schedule, run_id, since=since, until=until,
                        now=now)

    def resume(
        self, account: EmailAccount, schedule: SyncSchedule, cursor: Versioned[PageCursor],
        now: dt.datetime, *, deadline: float,
    ) -> ReaderProgress:
        progress = super().resume(account, schedule, cursor, now, deadline=deadline)
        progress.extra.update(self.start_counts.pop(account.row_id, {}))
        return progress

    def email_of(self, item: SuppressionEvent) -> str:
        return item.email

    def _accounts_setting_flag(self) -> tuple[str, ...]:
        """The active accounts whose "update Do not bulk email" option is on, read once per
        reader (one timer invocation)."""
        if not self._dnbe_accounts:
            accounts = self.crm_settings.email_accounts()
            self._dnbe_accounts.append(tuple(sorted(
                account.row_id for account in accounts if account.update_do_not_bulk_email
            )))
        return self._dnbe_accounts[0]

    def _feed(self, account: EmailAccount) -> Feed[SuppressionEvent]:
        dry_run = self.settings.dry_run

        def pages(cursor: PageCursor) -> Iterator[tuple[Sequence[SuppressionEvent], str | None]]:
            for page in self.platform.suppression_events(
                account, cursor.since, cursor.until, marker=cursor.marker, page_size=PAGE_SIZE
            ):
                yield page.events, page.next_marker

        def command(ref: BatchRef, items: tuple[SuppressionEvent, ...]) -> ApplySuppressionBatch:
            return ApplySuppressionBatch(ref, account.name, account.update_do_not_bulk_email,
                                         items, self._accounts_setting_flag())

        return Feed(
            label=self.label, sync_type=SyncType.SUPPRESSION_LISTS,
            key=suppression_sync_key(account.row_id, dry_run=dry_run),
            real_key=suppression_sync_key(account.row_id, dry_run=False),
            pages=pages, command=command, session_prefix="suppression",
            # A flush gives every shard about one batch of 1000, as the opt-in reader's does.
            shards=self.settings.suppression_shards,
            pages_per_flush=self.settings.suppression_shards,
            max_batch_items=MAX_BATCH_ITEMS,
        )
