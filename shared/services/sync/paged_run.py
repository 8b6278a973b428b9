"""The timer side of every sync: page a source into batches, one run at a time per account.

A sync type says what it reads and what it publishes (a ``Feed``); the run's bookkeeping is the
same for all, and every step is safe to repeat, so a run killed anywhere, or a timer that fires
twice, converges:

1. start (``open_run``): save a fresh ``PageCursor`` (``etag=None``: a second instance loses the
   race and stops), ``start_run``, then the schedule row goes to ``Added to Queue``;
2. per flush (``pages_per_flush`` pages, or fewer when time is up): publish, save the cursor (the
   marker after the flush, next batch), ``record_published``. Message ids depend only on
   (account, run, batch number), so pages re-read after a crash are re-published under the same
   ids and dropped by duplicate detection;
3. end: ``Synchronising In Progress`` (before publishing is declared done, so an applier that
   completes the run right after cannot be overwritten), ``record_published(done=True)``, the
   watermark moves to ``until`` (never for dry runs), the schedule completes if nothing is left
   to apply, and the cursor is deleted last, so an unfinished end is redone on the next tick.

Items are routed to shards by address, one Service Bus session per shard, so no two appliers
ever write the same address at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from shared.config import SyncSettings
from shared.domain.commands import BatchRef, OptInChange, QueueCommand, SuppressionEvent
from shared.domain.email import match_key
from shared.domain.engagement import EngagementEvent
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

Item = TypeVar("Item", OptInChange, SuppressionEvent, EngagementEvent)
FIRST_SINCE = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Feed(Generic[Item]):
    """What one sync type reads for one account, and the commands it publishes."""

    label: str  # for log lines: "opt-in", "suppression"
    sync_type: SyncType
    key: SyncKey  # where this run's cursor and run live (dry runs apart)
    real_key: SyncKey  # where the watermark lives
    pages: Callable[[PageCursor], Iterator[tuple[Sequence[Item], str | None]]]
    command: Callable[[BatchRef, tuple[Item, ...]], QueueCommand]
    session_prefix: str
    shards: int
    pages_per_flush: int
    max_batch_items: int


@dataclass(frozen=True)
class RunDeps:
    """The state, queue and schedule services a reader run uses."""

    state: SyncStateStore
    publisher: BatchPublisher
    schedules: ScheduleKeeper
    queue: str
    monotonic: Callable[[], float]
    dry_run: bool


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
    extra: dict[str, int] = field(default_factory=dict)  # a sync type's own start-up counts


def read_since(deps: RunDeps, feed: Feed[Item], now: dt.datetime, overlap_s: float) -> dt.datetime:
    """Where a new run reads from: the watermark less an overlap, since changes stamped just
    before the last ``until`` may have been committed late."""
    watermark = deps.state.get_watermark(feed.real_key)
    since = FIRST_SINCE
    if watermark is not None:
        since = watermark.value - dt.timedelta(seconds=overlap_s)
    return min(since, now)


def open_run(
    deps: RunDeps, feed: Feed[Item], account: EmailAccount, schedule: SyncSchedule,
    run_id: str, *, since: dt.datetime, until: dt.datetime, now: dt.datetime,
) -> tuple[Versioned[PageCursor], SyncSchedule] | None:
    """Open a run reading ``[since, until]``; None if another instance opened one first."""
    cursor = PageCursor(run_id=run_id, since=since, until=until, marker=None, pages_read=0,
                        next_batch=0)
    try:
        saved = deps.state.save_checkpoint(feed.key, cursor, etag=None)
    except PreconditionFailed:
        logger.info("account=%s another instance opened a %s run first", account.row_id,
                    feed.label)
        return None
    deps.state.start_run(feed.key, run_id, since=since, until=until, dry_run=deps.dry_run)
    schedule = deps.schedules.started(schedule, now)
    logger.info("account=%s %s run %s started since=%s dry_run=%s", account.row_id, feed.label,
                run_id, since.isoformat(), deps.dry_run)
    return saved, schedule


@dataclass(frozen=True, kw_only=True)
class PagedReader(Generic[Item]):
    """What every sync's reader has and does the same way; a reader says what it reads in
    ``_feed`` and how it starts a run. One per timer invocation."""

    platform: EmailPlatform
    state: SyncStateStore
    publisher: BatchPublisher
    schedules: ScheduleKeeper
    queue: str
    settings: SyncSettings
    monotonic: Callable[[], float] = time.monotonic

    def _feed(self, account: EmailAccount) -> Feed[Item]:
        raise NotImplementedError

    def email_of(self, item: Item) -> str:
        raise NotImplementedError

    def start(
        self, account: EmailAccount, schedule: SyncSchedule, run_id: str, now: dt.datetime
    ) -> tuple[Versioned[PageCursor], SyncSchedule] | None:
        """Open a run reading from the watermark (less the overlap) up to ``now``; None if
        another instance opened one first."""
        deps, feed = self._deps(), self._feed(account)
        since = read_since(deps, feed, now, self.settings.read_overlap_s)
        return open_run(deps, feed, account, schedule, run_id, since=since, until=now, now=now)

    def open_run(self, account: EmailAccount) -> Versioned[PageCursor] | None:
        """The cursor of the account's unfinished run, if there is one."""
        return self.state.get_checkpoint(self._feed(account).key, PageCursor)

    def resume(
        self, account: EmailAccount, schedule: SyncSchedule, cursor: Versioned[PageCursor],
        now: dt.datetime, *, deadline: float,
    ) -> ReaderProgress:
        """Read on from ``cursor`` until the last page or ``deadline`` (a ``monotonic`` time)."""
        run = RunInFlight(self._deps(), self._feed(account), self.email_of, account, schedule,
                          cursor)
        return run.read(now, deadline)

    def _deps(self) -> RunDeps:
        return RunDeps(self.state, self.publisher, self.schedules, self.queue, self.monotonic,
                       self.settings.dry_run)


class RunInFlight(Generic[Item]):
    """One invocation's part of a run: read on from the cursor until done or out of time."""

    def __init__(
        self, deps: RunDeps, feed: Feed[Item], email_of: Callable[[Item], str],
        account: EmailAccount, schedule: SyncSchedule, cursor: Versioned[PageCursor],
    ) -> None:
        self.deps = deps
        self.feed: Feed[Item] = feed
        self.email_of: Callable[[Item], str] = email_of
        self.account = account
        self.schedule = schedule
        self.cursor = cursor.value
        self.etag = cursor.etag
        self.progress = ReaderProgress(account.row_id, cursor.value.run_id)

    def read(self, now: dt.datetime, deadline: float) -> ReaderProgress:
        deps, feed, cursor = self.deps, self.feed, self.cursor
        started = deps.monotonic()
        # Idempotent: repairs a run killed between saving its cursor and starting it.
        deps.state.start_run(feed.key, cursor.run_id, since=cursor.since, until=cursor.until,
                             dry_run=deps.dry_run)
        if self.schedule.status is SyncStatus.NONE:
            self.schedule = deps.schedules.started(self.schedule, now)
        if cursor.read_all:  # killed after publishing the last page: only the end is left
            self._finish(now)
            return self._log(started)
        # Routed to shards as pages arrive: the flush buffer is the shards' lists, held once.
        buffer: dict[int, list[Item]] = {}
        buffered_pages = 0
        for items, marker in feed.pages(cursor):
            self._route(items, buffer)
            buffered_pages += 1
            self.progress.pages += 1
            self.progress.contacts += len(items)
            if marker is None:
                break
            out_of_time = deps.monotonic() >= deadline
            if buffered_pages >= feed.pages_per_flush or out_of_time:
                if not self._flush(buffer, buffered_pages, marker):
                    return self._log(started)
                buffer, buffered_pages = {}, 0
            if out_of_time:
                return self._log(started)
        if buffered_pages and not self._flush(buffer, buffered_pages, None):
            return self._log(started)
        self._finish(now)
        return self._log(started)

    def _route(self, items: Sequence[Item], by_shard: dict[int, list[Item]]) -> None:
        shards = self.feed.shards
        for item in items:
            key = match_key(self.email_of(item))
            # Invalid addresses match nothing; shard 0's applier counts them.
            shard = shard_of(key, shards) if isinstance(key, str) else 0
            by_shard.setdefault(shard, []).append(item)

    def _flush(self, by_shard: dict[int, list[Item]], pages: int, marker: str | None) -> bool:
        """Publish the buffered pages and move the cursor past them (to ``marker``; None once
        the last page is in); False if we lost the run."""
        deps, feed, cursor = self.deps, self.feed, self.cursor
        next_batch = cursor.next_batch
        for shard in sorted(by_shard):
            groups = deps.publisher.fit(by_shard.pop(shard), max_items=feed.max_batch_items)
            commands = [
                feed.command(BatchRef(self.account.row_id, cursor.run_id, next_batch + offset,
                                      deps.dry_run), items)
                for offset, items in enumerate(groups)
            ]
            # Shard by shard, each shard's items freed once on the queue, so a flush never
            # holds all its encoded bodies at once.
            if commands:
                deps.publisher.publish(deps.queue, commands,
                                       session_id=f"{feed.session_prefix}-{shard}")
            next_batch += len(commands)
        moved = replace(cursor, marker=marker, pages_read=cursor.pages_read + pages,
                        next_batch=next_batch)
        try:
            saved = deps.state.save_checkpoint(feed.key, moved, etag=self.etag)
        except PreconditionFailed:
            logger.warning("account=%s run %s: the cursor moved under us; leaving the run to "
                           "the instance that moved it", self.account.row_id, cursor.run_id)
            self.progress.yielded = True
            return False
        self.cursor, self.etag = saved.value, saved.etag
        deps.state.record_published(feed.key, cursor.run_id, batches=next_batch)
        self.progress.batches += next_batch - cursor.next_batch
        return True

    def _finish(self, now: dt.datetime) -> None:
        deps, feed, cursor = self.deps, self.feed, self.cursor
        if cursor.next_batch > 0:
            deps.schedules.publishing_done(self.schedule)
        update = deps.state.record_published(
            feed.key, cursor.run_id, batches=cursor.next_batch, done=True
        )
        if not deps.dry_run:
            # Only now is every change up to `until` on the queue.
            watermark = deps.state.get_watermark(feed.real_key)
            if watermark is None or watermark.value < cursor.until:
                deps.state.advance_watermark(
                    feed.real_key, cursor.until,
                    etag=None if watermark is None else watermark.etag,
                )
        if update.run.status is RunStatus.COMPLETED:
            # Also when an earlier attempt completed it: writing the same result again is harmless.
            deps.schedules.completed(self.account.row_id, feed.sync_type, update.run, now,
                                     repeated=not update.completed_now)
            self.progress.completed = True
        deps.state.delete_checkpoint(feed.key, PageCursor, etag=self.etag)
        self.progress.finished = True

    def _log(self, started: float) -> ReaderProgress:
        progress = self.progress
        logger.info(
            "account=%s %s run %s: %d pages, %d items, %d batches published in %.1fs%s",
            progress.account, self.feed.label, progress.run_id, progress.pages,
            progress.contacts, progress.batches, self.deps.monotonic() - started,
            " (finished)" if progress.finished else "",
        )
        return progress
