"""The opt-in reader: pages dotdigital's modified contacts of one email account into batches.

One run reads ``/v2/contacts/modified-since/{since}`` from ``since`` (the watermark minus a small
overlap) and publishes ``OptInBatch`` messages, one Service Bus session per shard of addresses.
Every step is safe to repeat, so a run killed anywhere, or a timer that fires twice, converges:

1. start: save a fresh ``PageCursor`` (``etag=None``: a second instance loses the race and
   stops), ``start_run``, then the schedule row goes to ``Added to Queue``;
2. per flush (``optin_pages_per_flush`` pages, or fewer when time is up): publish, save the
   cursor (next page, next batch), ``record_published``. Message ids depend only on (account,
   run, batch number), so pages re-read after a crash are re-published under the same ids and
   dropped by duplicate detection;
3. end: ``Synchronising In Progress`` (before publishing is declared done, so an applier that
   completes the run right after cannot be overwritten), ``record_published(done=True)``, the
   watermark moves to ``until`` (never for dry runs), ``complete_schedule`` if nothing is left to
   apply, and the cursor is deleted last, so an unfinished end is redone on the next tick.

Dry runs keep their runs and cursor under their own sync key (``optin_sync_key``) and read from
the real watermark, which they never move.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from shared.config import SyncSettings
from shared.domain.email import match_key
from shared.domain.model import EmailAccount, SyncSchedule, SyncStatus, SyncType
from shared.domain.optin import shard_of
from shared.errors import PreconditionFailed
from shared.services.ports import (
    BatchPublisher,
    ContactOptIn,
    CrmSettings,
    EmailPlatform,
    OutboundMessage,
    PageCursor,
    RunStatus,
    SyncKey,
    SyncStateStore,
    Versioned,
)
from shared.services.sync.run_completion import complete_schedule
from shared.services.sync.schedules import mark_added_to_queue, mark_in_progress

logger = logging.getLogger(__name__)

OPTIN_SYNC_TYPE = "ContactOptIn"
# Table keys allow letters, digits, '.', '_' and '-' only.
OPTIN_DRY_SYNC_TYPE = "ContactOptIn.dry"
FIRST_SINCE = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
PAGE_SIZE = 1000


def optin_sync_key(email_account_id: str, *, dry_run: bool) -> SyncKey:
    """Where an account's opt-in state lives; dry runs are kept apart from real ones."""
    return SyncKey(email_account_id, OPTIN_DRY_SYNC_TYPE if dry_run else OPTIN_SYNC_TYPE)


def session_for_shard(shard: int) -> str:
    return f"optin-{shard}"


class OptInBatchEncoder(Protocol):
    """Turns one shard's changes into numbered queue messages (``first_batch``, +1, ...).

    The grouping must depend only on its input, so a resumed run re-creates the same batches.
    """

    def __call__(
        self, *, run_id: str, account: str, first_batch: int,
        changes: Sequence[ContactOptIn], observed_at: dt.datetime, dry_run: bool,
    ) -> list[OutboundMessage]: ...


@dataclass(frozen=True)
class OptInReader:
    """What a reader run needs; one per timer invocation."""

    crm: CrmSettings
    platform: EmailPlatform
    state: SyncStateStore
    publisher: BatchPublisher
    encode_batches: OptInBatchEncoder
    queue: str
    settings: SyncSettings
    monotonic: Callable[[], float] = time.monotonic

    def open_run(self, account: EmailAccount) -> Versioned[PageCursor] | None:
        """The cursor of the account's unfinished run, if there is one."""
        key = optin_sync_key(account.row_id, dry_run=self.settings.dry_run)
        return self.state.get_checkpoint(key, PageCursor)

    def start(
        self, account: EmailAccount, schedule: SyncSchedule, run_id: str, now: dt.datetime
    ) -> Versioned[PageCursor] | None:
        """Open a run reading up to ``now``; None if another instance opened one first."""
        dry_run = self.settings.dry_run
        key = optin_sync_key(account.row_id, dry_run=dry_run)
        watermark = self.state.get_watermark(optin_sync_key(account.row_id, dry_run=False))
        since = FIRST_SINCE
        if watermark is not None:
            # Overlap: changes stamped just before the last `until` may have been committed late.
            since = watermark.value - dt.timedelta(seconds=self.settings.read_overlap_s)
        since = min(since, now)
        cursor = PageCursor(run_id=run_id, since=since, until=now, next_page=0, next_batch=0)
        try:
            saved = self.state.save_checkpoint(key, cursor, etag=None)
        except PreconditionFailed:
            logger.info("account=%s another instance opened an opt-in run first", account.row_id)
            return None
        self.state.start_run(key, run_id, since=since, until=now, dry_run=dry_run)
        mark_added_to_queue(self.crm, schedule, now)
        logger.info("account=%s opt-in run %s started since=%s dry_run=%s",
                    account.row_id, run_id, since.isoformat(), dry_run)
        return saved

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
            mark_added_to_queue(reader.crm, self.schedule, now)
        # Routed to shards as pages arrive: the flush buffer is the shards' lists, held once.
        buffer: dict[int, list[ContactOptIn]] = {}
        buffered_pages = 0
        finished = True
        pages = reader.platform.modified_contacts(
            self.account, cursor.since, start_skip=cursor.next_page * PAGE_SIZE
        )
        for page in pages:
            self._route(page.contacts, buffer)
            buffered_pages += 1
            self.progress.pages += 1
            self.progress.contacts += len(page.contacts)
            if page.last:
                break
            out_of_time = reader.monotonic() >= deadline
            if buffered_pages >= reader.settings.optin_pages_per_flush or out_of_time:
                if not self._flush(buffer, buffered_pages):
                    return self._log(started)
                buffer, buffered_pages = {}, 0
            if out_of_time:
                finished = False
                break
        if buffered_pages and not self._flush(buffer, buffered_pages):
            return self._log(started)
        if finished:
            self._finish(now)
        return self._log(started)

    def _route(
        self, contacts: Sequence[ContactOptIn], by_shard: dict[int, list[ContactOptIn]]
    ) -> None:
        shards = self.reader.settings.optin_shards
        for contact in contacts:
            key = match_key(contact.email)
            # Invalid addresses match nothing; shard 0's applier counts them.
            shard = shard_of(key, shards) if isinstance(key, str) else 0
            by_shard.setdefault(shard, []).append(contact)

    def _flush(self, by_shard: dict[int, list[ContactOptIn]], pages: int) -> bool:
        """Publish the buffered pages and move the cursor past them; False if we lost the run."""
        reader, cursor = self.reader, self.cursor
        next_batch = cursor.next_batch
        for shard in sorted(by_shard):
            encoded = reader.encode_batches(
                run_id=cursor.run_id, account=self.account.row_id, first_batch=next_batch,
                changes=by_shard.pop(shard), observed_at=cursor.until, dry_run=self.dry_run,
            )
            # Shard by shard, each shard's contacts and bodies freed once on the queue, so a
            # flush never holds all its encoded bodies at once.
            if encoded:
                reader.publisher.publish(
                    reader.queue, [replace(m, session_id=session_for_shard(shard)) for m in encoded]
                )
            next_batch += len(encoded)
        moved = replace(cursor, next_page=cursor.next_page + pages, next_batch=next_batch)
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
            mark_in_progress(reader.crm, self.schedule)
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
            complete_schedule(reader.crm, self.account.row_id, SyncType.CONTACT_OPT_IN,
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
