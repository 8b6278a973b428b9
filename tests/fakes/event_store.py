"""In-memory ``EventStore`` with the Table Storage adapter's semantics, for service unit tests.

Same keys and rules (``shared.domain.engagement``): one partition per person, an event stored
once per row key (the first reading wins), the summary counting exactly the stored events, pages
newest first with the summary on the first page only, and an opaque continuation.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from datetime import datetime

from shared.domain.engagement import (
    EMPTY_SUMMARY,
    EngagementEvent,
    EventKind,
    PersonSummary,
    TimelineEntry,
    TimelinePage,
    WriteResult,
    add,
    first_row_key_before,
    row_key,
    summarise,
    timeline_kinds,
)


class InMemoryEventStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, TimelineEntry]] = {}
        self._summaries: dict[str, PersonSummary] = {}
        self.queries = 0

    def write(self, events: Iterable[EngagementEvent]) -> WriteResult:
        batch = list(events)
        for event in batch:
            if not isinstance(event, EngagementEvent):
                raise ValueError(f"not an engagement event: {event!r}")
        new = 0
        with self._lock:
            for event in batch:
                rows = self._rows.setdefault(event.person_key, {})
                key = row_key(event)
                if key in rows:
                    continue
                rows[key] = event.entry()
                summary = self._summaries.get(event.person_key, EMPTY_SUMMARY)
                self._summaries[event.person_key] = add(summary, [event])
                new += 1
        return WriteResult(new=new, existing=len(batch) - new)

    def timeline(
        self,
        person_key: str,
        *,
        kinds: Collection[EventKind] | None = None,
        limit: int = 50,
        continuation: str | None = None,
    ) -> TimelinePage:
        wanted = timeline_kinds(person_key, kinds, limit) or frozenset(EventKind)
        if continuation is not None and (not isinstance(continuation, str) or not continuation):
            raise ValueError("invalid continuation")
        with self._lock:
            self.queries += 1
            rows = self._rows.get(person_key, {})
            keys = [key for key in sorted(rows)
                    if (continuation is None or key >= continuation)
                    and rows[key].kind in wanted]
            summary = (self._summaries.get(person_key, EMPTY_SUMMARY)
                       if continuation is None else None)
            page = tuple(rows[key] for key in keys[:limit])
            following = keys[limit] if len(keys) > limit else None
        return TimelinePage(summary, page, following)

    def purge(self, before: datetime) -> int:
        low = first_row_key_before(before)
        deleted = 0
        with self._lock:
            for partition, rows in list(self._rows.items()):
                old = [key for key in rows if key >= low]
                for key in old:
                    del rows[key]
                deleted += len(old)
                if old:
                    # Summaries count what is kept, as after the adapter's purge.
                    self._summaries[partition] = summarise(rows.values())
                if not rows:
                    del self._rows[partition]
                    self._summaries.pop(partition, None)
        return deleted

    # --- for assertions ---------------------------------------------------------------------
    def entries(self, person_key: str) -> list[TimelineEntry]:
        """Every stored event of the person, newest first, without counting a query."""
        with self._lock:
            rows = self._rows.get(person_key, {})
            return [rows[key] for key in sorted(rows)]

    def summary(self, person_key: str) -> PersonSummary:
        with self._lock:
            return self._summaries.get(person_key, EMPTY_SUMMARY)
