"""Retention: state that only grows (run headers and per-batch outcome rows, run summaries) is
purged once older than the configured period, and engagement events once older than theirs.
Watermarks, cursors and open runs are kept."""

from __future__ import annotations

import datetime as dt
import logging

from shared.services.ports import EventStore, RunJournal, SyncStateStore

logger = logging.getLogger(__name__)


def purge_old_state(
    state: SyncStateStore, journal: RunJournal, *, now: dt.datetime, retention_days: float,
    events: EventStore | None = None, events_retention_days: float | None = None,
) -> dict[str, object]:
    """Delete what is older than ``retention_days``; returns what was removed (for the log)."""
    if retention_days < 1:
        raise ValueError("retention must be at least one day")
    cutoff = now - dt.timedelta(days=retention_days)
    runs = state.purge_runs(cutoff)
    summaries = journal.purge(cutoff)
    logger.info("retention: removed %d completed runs and %d run summaries before %s",
                runs, summaries, cutoff.isoformat())
    removed: dict[str, object] = {"cutoff": cutoff.isoformat(), "runs": runs,
                                  "summaries": summaries}
    if events is not None and events_retention_days is not None:
        if events_retention_days < 1:
            raise ValueError("event retention must be at least one day")
        events_cutoff = now - dt.timedelta(days=events_retention_days)
        removed["events"] = events.purge(events_cutoff)
        logger.info("retention: removed %d engagement events before %s", removed["events"],
                    events_cutoff.isoformat())
    return removed
