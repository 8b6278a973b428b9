"""In-memory ``SyncStateStore`` with the Table Storage adapter's behaviour, for unit tests.

The contract tests in ``tests/state`` run the same suite against this fake and against the real
adapter on Azurite, so the two cannot drift apart. Validation is shared (``table_codec``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from shared.adapters.storage import codec
from shared.errors import DomainError, NotFound, PreconditionFailed, System
from shared.services.ports import (
    BatchOutcome,
    C,
    RunState,
    RunStatus,
    RunUpdate,
    SyncKey,
    Versioned,
)


@dataclass
class _Run:
    state: RunState
    highest: int
    applied: set[int]


class InMemorySyncStateStore:
    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._etags = itertools.count(1)
        self.watermarks: dict[str, Versioned[datetime]] = {}
        self.checkpoints: dict[tuple[str, str], Versioned[Any]] = {}
        self.runs: dict[tuple[str, str], _Run] = {}

    def _etag(self) -> str:
        return f'W/"fake-{next(self._etags)}"'

    def get_watermark(self, key: SyncKey) -> Versioned[datetime] | None:
        return self.watermarks.get(codec.partition_key(key))

    def advance_watermark(
        self, key: SyncKey, to: datetime, *, etag: str | None
    ) -> Versioned[datetime]:
        partition = codec.partition_key(key)
        to = codec.plain_utc(codec.utc(to, "watermark"))
        with self._lock:
            current = self.watermarks.get(partition)
            if (current.etag if current else None) != etag:
                raise _lost("advance_watermark")
            if current is not None and to < current.value:
                raise DomainError(f"watermark would move back from {current.value} to {to}")
            if current is not None and to == current.value:
                return current
            self.watermarks[partition] = Versioned(to, self._etag())
            return self.watermarks[partition]

    def get_checkpoint(self, key: SyncKey, kind: type[C]) -> Versioned[C] | None:
        found = self.checkpoints.get((codec.partition_key(key), codec.checkpoint_row_key(kind)))
        return found

    def save_checkpoint(self, key: SyncKey, value: C, *, etag: str | None) -> Versioned[C]:
        slot = (codec.partition_key(key), codec.checkpoint_row_key(type(value)))
        encoded = codec.encode_checkpoint(value)  # the adapter's validation, and its UTC view
        stored = replace(value, **{  # type: ignore[type-var]
            name: codec.plain_utc(item) for name, item in encoded.items()
            if isinstance(item, datetime)
        })
        with self._lock:
            current = self.checkpoints.get(slot)
            if (current.etag if current else None) != etag:
                raise _lost("save_checkpoint")
            self.checkpoints[slot] = Versioned(stored, self._etag())
            return self.checkpoints[slot]

    def delete_checkpoint(self, key: SyncKey, kind: type[C], *, etag: str) -> None:
        slot = (codec.partition_key(key), codec.checkpoint_row_key(kind))
        with self._lock:
            current = self.checkpoints.get(slot)
            if current is None:
                return
            if current.etag != etag:
                raise _lost("delete_checkpoint")
            del self.checkpoints[slot]

    def start_run(
        self, key: SyncKey, run_id: str, *, since: datetime, until: datetime, dry_run: bool = False
    ) -> RunState:
        slot = (codec.partition_key(key), codec.check_run_id(run_id))
        since = codec.plain_utc(codec.utc(since, "since"))
        until = codec.plain_utc(codec.utc(until, "until"))
        if since > until:
            raise ValueError(f"run {run_id}: since is after until")
        with self._lock:
            existing = self.runs.get(slot)
            if existing is not None:
                old = existing.state
                if (old.since, old.until, old.dry_run) != (since, until, bool(dry_run)):
                    raise DomainError(f"run {run_id} already exists with another window or mode")
                return old
            state = RunState(
                key=key, run_id=run_id, status=RunStatus.PUBLISHING, since=since, until=until,
                dry_run=bool(dry_run), started_at=codec.plain_utc(self._clock()),
                batches_published=0, batches_applied=0, completed_at=None, counters={},
                etag=self._etag(),
            )
            self.runs[slot] = _Run(state, -1, set())
            return state

    def get_run(self, key: SyncKey, run_id: str) -> RunState | None:
        run = self.runs.get((codec.partition_key(key), codec.check_run_id(run_id)))
        return None if run is None else run.state

    def record_published(
        self, key: SyncKey, run_id: str, *, batches: int, done: bool = False
    ) -> RunUpdate:
        codec.check_count("batch count", batches)
        with self._lock:
            run = self._run(key, run_id)
            state = run.state
            if state.status is not RunStatus.PUBLISHING and batches > state.batches_published:
                raise DomainError(f"run {run_id} finished publishing")
            published = max(state.batches_published, batches)
            status = state.status
            if status is RunStatus.PUBLISHING and done:
                if run.highest >= published:
                    raise DomainError(f"run {run_id} has applied a batch beyond {published - 1}")
                complete = state.batches_applied == published
                status = RunStatus.COMPLETED if complete else RunStatus.APPLYING
            if (status, published) == (state.status, state.batches_published):
                return RunUpdate(state, completed_now=False)
            run.state = replace(
                state, status=status, batches_published=published, etag=self._etag(),
                completed_at=self._completed_at(status),
            )
            return RunUpdate(run.state, completed_now=status is RunStatus.COMPLETED)

    def mark_batch_applied(
        self, key: SyncKey, run_id: str, batch: int, counters: Mapping[str, int]
    ) -> BatchOutcome:
        codec.check_batch_number(batch)
        counts = codec.check_counters(counters)
        with self._lock:
            run = self._run(key, run_id)
            state = run.state
            if batch in run.applied:
                return BatchOutcome(applied_now=False, run=state, completed_now=False)
            if state.status is not RunStatus.PUBLISHING and batch >= state.batches_published:
                raise DomainError(f"batch {batch} is beyond run {run_id}'s last batch")
            applied = state.batches_applied + 1
            complete = state.status is RunStatus.APPLYING and applied == state.batches_published
            status = RunStatus.COMPLETED if complete else state.status
            totals = {name: state.counters.get(name, 0) + counts.get(name, 0)
                      for name in sorted({*state.counters, *counts})}
            run.applied.add(batch)
            run.highest = max(run.highest, batch)
            run.state = replace(
                state, status=status, batches_applied=applied, counters=totals,
                etag=self._etag(), completed_at=self._completed_at(status),
            )
            return BatchOutcome(applied_now=True, run=run.state, completed_now=complete)

    def purge_runs(self, before: datetime) -> int:
        before = codec.plain_utc(codec.utc(before, "before"))
        with self._lock:
            old = [slot for slot, run in self.runs.items()
                   if run.state.completed_at is not None and run.state.completed_at < before]
            for slot in old:
                del self.runs[slot]
            return len(old)

    def _run(self, key: SyncKey, run_id: str) -> _Run:
        run = self.runs.get((codec.partition_key(key), codec.check_run_id(run_id)))
        if run is None:
            raise NotFound(System.TABLES, f"run {run_id} is unknown")
        return run

    def _completed_at(self, status: RunStatus) -> datetime | None:
        return codec.plain_utc(self._clock()) if status is RunStatus.COMPLETED else None


def _lost(operation: str) -> PreconditionFailed:
    return PreconditionFailed(System.TABLES, "ETag no longer matches", operation=operation)
