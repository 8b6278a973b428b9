"""The opt-in reader: pages dotdigital's modified contacts of one email account into batches.

One run reads the contacts modified since ``since`` (the watermark minus a small overlap) and
publishes ``ApplyOptInBatch`` commands, one Service Bus session per shard of addresses. Pages are
addressed by marker (a position in the result's order), never by offset, so no contact can slide
into a page already read, however many ticks the run spans: a contact edited while the run reads
is read again later in the run when the order is by change time (as the emulator's is), and by
the next run otherwise (its change is after this run's ``until``).

Every step is safe to repeat, so a run killed anywhere, or a timer that fires twice, converges:

1. start: save a fresh ``PageCursor`` (``etag=None``: a second instance loses the race and
   stops), ``start_run``, then the schedule row goes to ``Added to Queue``;
2. per flush (``optin_pages_per_flush`` pages, or fewer when time is up): publish, save the
   cursor (the marker after the flush, next batch), ``record_published``. Message ids depend
   only on (account, run, batch number), so pages re-read after a crash are re-published under
   the same ids and dropped by duplicate detection;
3. end: ``Synchronising In Progress`` (before publishing is declared done, so an applier that
   completes the run right after cannot be overwritten), ``record_published(done=True)``, the
   watermark moves to ``until`` (never for dry runs), the schedule completes if nothing is left
   to apply, and the cursor is deleted last, so an unfinished end is redone on the next tick.

Dry runs keep their runs and cursor under their own sync key (``optin_sync_key``) and read from
the real watermark, which they never move.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from shared.config import SyncSettings
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.domain.email import match_key
from shared.domain.model import EmailAccount, SyncSchedule, SyncStatus, SyncType
from shared.domain.optin import shard_of
from shared.errors import PreconditionFailed
from shared.services.ports import (
    BatchPublisher,
    EmailPlatform,
    PageCursor,
    RunStatus,
    SyncKey,
    SyncStateStore,
    Versioned,
)
from shared.services.sync.schedules import ScheduleKeeper

logger = logging.getLogger(__name__)

OPTIN_SYNC_TYPE = "ContactOptIn"
# Table keys allow letters, digits, '.', '_' and '-' only.
OPTIN_DRY_SYNC_TYPE = "ContactOptIn.dry"
FIRST_SINCE = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
PAGE_SIZE = 1000
# A batch costs a lookup and a write request whatever its size, and every session holds one
# batch, so batches are about 1000 changes: a flush (``OPTIN_PAGES_PER_FLUSH`` pages of 1000 over
# as many shards) gives each shard about 1000, and this cap leaves room for the shards' shares to
# vary by a few percent without a second, nearly empty batch.
MAX_BATCH_ITEMS = 1200


def optin_sync_key(email_account_id: str, *, dry_run: bool) -> SyncKey:
    """Where an account's opt-in state lives; dry runs are kept apart from real ones."""
    return SyncKey(email_account_id, OPTIN_DRY_SYNC_TYPE if dry_run else OPTIN_SYNC_TYPE)


def session_for_shard(shard: int) -> str:
    return f"optin-{shard}"


@dataclass(frozen=True)
class OptInReader:
    """What a reader run needs; one per timer invocation."""

    platform: EmailPlatform
    state: SyncStateStore
    publisher: BatchPublisher
    schedules: ScheduleKeeper
    queue: str
    settings: SyncSettings
    monotonic: Callable[[], float] = time.monotonic

    def open_run(self, account: EmailAccount) -> Versioned[PageCursor] | None:
        """The cursor of the account's unfinished run, if there is one."""
        key = optin_sync_key(account.row_id, dry_run=self.settings.dry_run)
        return self.state.get_checkpoint(key, PageCursor)

    def start(
        self, account: EmailAccount, schedule: SyncSchedule, run_id: str, now: dt.datetime
    ) -> tuple[Versioned[PageCursor], SyncSchedule] | None:
        """Open a run reading up to ``now``; None if another instance opened one first."""
        dry_run = self.settings.dry_run
        key = optin_sync_key(account.row_id, dry_run=dry_run)
        watermark = self.state.get_watermark(optin_sync_key(account.row_id, dry_run=False))
        since = FIRST_SINCE
        if watermark is not None:
            # Overlap: changes stamped just before the last `until` may have been committed late.
            since = watermark.value - dt.timedelta(seconds=self.settings.read_overlap_s)
        since = min(since, now)
        cursor = PageCursor(run_id=run_id, since=since, until=now, marker=None, pages_read=0,
                            next_batch=0)
        try:
            saved = self.state.save_checkpoint(key, cursor, etag=None)
        except PreconditionFailed:
            logger.info("account=%s another instance opened an opt-in run first", account.row_id)
            return None
        self.state.start_run(key, run_id, since=since, until=now, dry_run=dry_run)
        schedule = self.schedules.started(schedule, now)
        logger.info("account=%s opt-in run %s started since=%s dry_run=%s",
                    account.row_id, run_id, since.isoformat(), dry_run)
        return saved, schedule

    def resume(
        self, account: EmailAccount, schedule: SyncSchedule, cursor: Versioned[PageCursor],
        now: dt.datetime, *, deadline: float,
    ) -> ReaderProgress:
        """Read on from ``cursor`` until the last page or ``deadline`` (a ``monotonic`` time)."""
        run = _RunInFlight(self, account, schedule, cursor)
        return run.read(now, deadline)


@dataclass
class ReaderProgress:
    """What one invocation did for one account's run (for the log and the run journal)."""

    account: str
    run_id: str
    pages: int = 0
    contacts: int = 0
    batches: int = 0
    finished: bool = False
    completed: bool = False
    yielded: bool = False  # another instance moved the cursor on: it owns the run now


class _RunInFlight:
    def __init__(
        self, reader: OptInReader, account: EmailAccount, schedule: SyncSchedule,
        cursor: Versioned[PageCursor],
    ) -> None:
        self.reader = reader
        self.account = account
        self.schedule = schedule
        self.dry_run = reader.settings.dry_run
        self.key = optin_sync_key(account.row_id, dry_run=self.dry_run)
        self.cursor = cursor.value
        self.etag = cursor.etag
        self.progress = ReaderProgress(account.row_id, cursor.value.run_id)

    def read(self, now: dt.datetime, deadline: float) -> ReaderProgress:
        reader, cursor = self.reader, self.cursor
        started = reader.monotonic()
        # Idempotent: repairs a run killed between saving its cursor and starting it.
        reader.state.start_run(self.key, cursor.run_id, since=cursor.since, until=cursor.until,
                               dry_run=self.dry_run)
        if self.schedule.status is SyncStatus.NONE:
            self.schedule = reader.schedules.started(self.schedule, now)
        if cursor.read_all:  # killed after publishing the last page: only the end is left
            self._finish(now)
            return self._log(started)
        # Routed to shards as pages arrive: the flush buffer is the shards' lists, held once.
        buffer: dict[int, list[OptInChange]] = {}
        buffered_pages = 0
        marker = cursor.marker
        pages = reader.platform.modified_contacts(
            self.account, cursor.since, marker=cursor.marker, page_size=PAGE_SIZE
        )
        for page in pages:
            self._route(page.contacts, buffer)
            buffered_pages += 1
            marker = page.next_marker
            self.progress.pages += 1
            self.progress.contacts += len(page.contacts)
            if marker is None:
                break
            out_of_time = reader.monotonic() >= deadline
            if buffered_pages >= reader.settings.optin_pages_per_flush or out_of_time:
                if not self._flush(buffer, buffered_pages, marker):
                    return self._log(started)
                buffer, buffered_pages = {}, 0
            if out_of_time:
                return self._log(started)
        if buffered_pages and not self._flush(buffer, buffered_pages, None):
            return self._log(started)
        self._finish(now)
        return self._log(started)

    def _route(
        self, contacts: Sequence[OptInChange], by_shard: dict[int, list[OptInChange]]
    ) -> None:
        shards = self.reader.settings.optin_shards
        for contact in contacts:
            key = match_key(contact.email)
            # Invalid addresses match nothing; shard 0's applier counts them.
            shard = shard_of(key, shards) if isinstance(key, str) else 0
            by_shard.setdefault(shard, []).append(contact)

    def _flush(
        self, by_shard: dict[int, list[OptInChange]], pages: int, marker: str | None
    ) -> bool:
        """Publish the buffered pages and move the cursor past them (to ``marker``; None once
        the last page is in); False if we lost the run."""
        reader, cursor = self.reader, self.cursor
        next_batch = cursor.next_batch
        for shard in sorted(by_shard):
            groups = reader.publisher.fit(by_shard.pop(shard), max_items=MAX_BATCH_ITEMS)
            commands = [
                ApplyOptInBatch(
                    BatchRef(self.account.row_id, cursor.run_id, next_batch + offset,
                             self.dry_run),
                    items,
                )
                for offset, items in enumerate(groups)
            ]
            # Shard by shard, each shard's contacts freed once on the queue, so a flush never
            # holds all its encoded bodies at once.
            if commands:
                reader.publisher.publish(reader.queue, commands,
                                         session_id=session_for_shard(shard))
            next_batch += len(commands)
        moved = replace(cursor, marker=marker, pages_read=cursor.pages_read + pages,
                        next_batch=next_batch)
        try:
            saved = reader.state.save_checkpoint(self.key, moved, etag=self.etag)
        except PreconditionFailed:
            logger.warning("account=%s run %s: the cursor moved under us; leaving the run to "
                           "the instance that moved it", self.account.row_id, cursor.run_id)
            self.progress.yielded = True
            return False
        self.cursor, self.etag = saved.value, saved.etag
        reader.state.record_published(self.key, cursor.run_id, batches=next_batch)
        self.progress.batches += next_batch - cursor.next_batch
        return True

    def _finish(self, now: dt.datetime) -> None:
        reader, cursor = self.reader, self.cursor
        if cursor.next_batch > 0:
            reader.schedules.publishing_done(self.schedule)
        update = reader.state.record_published(
            self.key, cursor.run_id, batches=cursor.next_batch, done=True
        )
        if not self.dry_run:
            # Only now is every change up to `until` on the queue.
            real_key = optin_sync_key(self.account.row_id, dry_run=False)
            watermark = reader.state.get_watermark(real_key)
            if watermark is None or watermark.value < cursor.until:
                reader.state.advance_watermark(
                    real_key, cursor.until, etag=None if watermark is None else watermark.etag
                )
        if update.run.status is RunStatus.COMPLETED:
            # Also when an earlier attempt completed it: writing the same result again is harmless.
            reader.schedules.completed(self.account.row_id, SyncType.CONTACT_OPT_IN,
                                       update.run, now)
            self.progress.completed = True
        reader.state.delete_checkpoint(self.key, PageCursor, etag=self.etag)
        self.progress.finished = True

    def _log(self, started: float) -> ReaderProgress:
        progress = self.progress
        logger.info(
            "account=%s opt-in run %s: %d pages, %d contacts, %d batches published in %.1fs%s",
            progress.account, progress.run_id, progress.pages, progress.contacts,
            progress.batches, self.reader.monotonic() - started,
            " (finished)" if progress.finished else "",
        )
        return progress
