"""A sync state store that keeps a console dry run's bookkeeping in memory.

A dry run goes through the readers' and appliers' own run bookkeeping (cursor, run, batch
outcomes), so its counts are the ones a run of the app would record; but it must leave the
store as it found it. Watermarks are read from the real store (a run reads from there) and can
never be moved; everything else lives and dies with the command. The semantics are the store's
(``shared/adapters/storage/sync_state.py``): a batch counts once, a run completes when
publishing is done and every published batch is applied.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from shared.errors import DomainError, NotFound, PreconditionFailed, System
from shared.services.ports import (
    BatchOutcome,
    C,
    RunState,
    RunStatus,
    RunUpdate,
    SyncKey,
    SyncStateStore,
    Versioned,
)


class ScratchState:
    def __init__(self, real: SyncStateStore) -> None:
        self._real = real
        self._etags = itertools.count(1)
        self._checkpoints: dict[tuple[SyncKey, str], Versioned[Any]] = {}
        self._runs: dict[tuple[SyncKey, str], RunState] = {}
        self._applied: dict[tuple[SyncKey, str], set[int]] = {}

    def _etag(self) -> str:
        return f"scratch-{next(self._etags)}"

    # --- watermarks: the real ones, read only ---------------------------------------------------
    def get_watermark(self, key: SyncKey) -> Versioned[dt.datetime] | None:
        return self._real.get_watermark(key)

    def advance_watermark(
        self, key: SyncKey, to: dt.datetime, *, etag: str | None
    ) -> Versioned[dt.datetime]:
        raise DomainError("a dry run never moves a watermark")

    # --- checkpoints ----------------------------------------------------------------------------
    def get_checkpoint(self, key: SyncKey, kind: type[C]) -> Versioned[C] | None:
        found: Versioned[C] | None = self._checkpoints.get((key, kind.STATE_NAME))
        return found

    def save_checkpoint(self, key: SyncKey, value: C, *, etag: str | None) -> Versioned[C]:
        slot = (key, type(value).STATE_NAME)
        current = self._checkpoints.get(slot)
        if (None if current is None else current.etag) != etag:
            raise PreconditionFailed(System.TABLES, "checkpoint changed",
                                     operation="save_checkpoint")
        saved = Versioned(value, self._etag())
        self._checkpoints[slot] = saved
        return saved

    def delete_checkpoint(self, key: SyncKey, kind: type[C], *, etag: str) -> None:
        self._checkpoints.pop((key, kind.STATE_NAME), None)

    # --- runs -----------------------------------------------------------------------------------
    def start_run(
        self, key: SyncKey, run_id: str, *, since: dt.datetime, until: dt.datetime,
        dry_run: bool = False,
    ) -> RunState:
        slot = (key, run_id)
        if slot not in self._runs:
            self._runs[slot] = RunState(
                key=key, run_id=run_id, status=RunStatus.PUBLISHING, since=since, until=until,
                dry_run=dry_run, started_at=dt.datetime.now(dt.UTC), batches_published=0,
                batches_applied=0, completed_at=None, counters={}, etag=self._etag())
            self._applied[slot] = set()
        return self._runs[slot]

    def get_run(self, key: SyncKey, run_id: str) -> RunState | None:
        return self._runs.get((key, run_id))

    def record_published(
        self, key: SyncKey, run_id: str, *, batches: int, done: bool = False
    ) -> RunUpdate:
        run = self._run(key, run_id)
        published = max(run.batches_published, batches)
        status = run.status
        if status is RunStatus.PUBLISHING and done:
            complete = run.batches_applied == published
            status = RunStatus.COMPLETED if complete else RunStatus.APPLYING
        if (status, published) == (run.status, run.batches_published):
            return RunUpdate(run, completed_now=False)
        run = self._save(replace(run, status=status, batches_published=published))
        return RunUpdate(run, completed_now=status is RunStatus.COMPLETED)

    def mark_batch_applied(
        self, key: SyncKey, run_id: str, batch: int, counters: Mapping[str, int]
    ) -> BatchOutcome:
        run = self._run(key, run_id)
        applied = self._applied[(key, run_id)]
        if batch in applied:
            return BatchOutcome(applied_now=False, run=run, completed_now=False)
        applied.add(batch)
        complete = (run.status is RunStatus.APPLYING
                    and run.batches_applied + 1 == run.batches_published)
        totals = {name: run.counters.get(name, 0) + counters.get(name, 0)
                  for name in sorted({*run.counters, *counters})}
        run = self._save(replace(
            run, batches_applied=run.batches_applied + 1, counters=totals,
            status=RunStatus.COMPLETED if complete else run.status))
        return BatchOutcome(applied_now=True, run=run, completed_now=complete)

    def purge_runs(self, before: dt.datetime) -> int:
        raise DomainError("a dry run purges nothing")

    def _run(self, key: SyncKey, run_id: str) -> RunState:
        run = self._runs.get((key, run_id))
        if run is None:
            raise NotFound(System.TABLES, f"run {run_id} is unknown")
        return run

    def _save(self, run: RunState) -> RunState:
        completed = dt.datetime.now(dt.UTC) if run.status is RunStatus.COMPLETED else None
        run = replace(run, etag=self._etag(), completed_at=completed)
        self._runs[(run.key, run.run_id)] = run
        return run
