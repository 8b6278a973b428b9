"""v2 ``select``/``skip`` paging for engagement reads: whole lists, plain pages, and pages of
lists ordered by latest activity that re-read the previous page's last entries (``OVERLAP``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.adapters.dotdigital.client import DotdigitalClient
from shared.adapters.dotdigital.engagement_items import Source, entry_id, sources
from shared.adapters.dotdigital.engagement_marker import Position
from shared.errors import BadRequest, System

# Re-read entries per request (at most half a page, so every request moves on): 20 rows cost 1%
# of a 2000-row page and keep the marker short.
OVERLAP = 20


@dataclass(frozen=True, slots=True)
class Batch:
    fresh: list[Any]  # the entries not read before
    full: bool  # a full page: the list may go on
    read: int  # entries of the list read, this page included
    tail: tuple[int, ...]  # the ids the next request re-reads and drops


def past_overlap(
    client: DotdigitalClient, path: str, operation: str, position: Position, select: int,
    id_name: str,
) -> Batch:
    """One page of a list ordered by latest activity, starting ``len(overlap)`` entries early
    and without the entries whose ids the previous page ended with."""
    # Never more than half a page again, so a smaller page size after a resume still advances.
    overlap = position.seen[len(position.seen) - min(len(position.seen), select // 2) :]
    skip = position.skip - len(overlap)
    items = page(client, path, operation, select, skip)
    fresh = [item for item in items if entry_id(item, id_name) not in overlap] \
        if overlap else items
    tail: list[int] = []
    for item in reversed(items[len(items) - min(OVERLAP, len(items) // 2) :]):
        item_id = entry_id(item, id_name)
        if item_id is None:
            break  # the overlap must be the page's last entries, without a gap
        tail.append(item_id)
    tail.reverse()
    return Batch(fresh, len(items) >= select, skip + len(items), tuple(tail))


def page(client: DotdigitalClient, path: str, operation: str, select: int, skip: int
          ) -> list[Any]:
    body = client.send_json("GET", path, operation,
                            params={"select": str(select), "skip": str(skip)})
    if not isinstance(body, list):
        raise BadRequest(System.DOTDIGITAL, f"{operation} did not return a list")
    return body


def every(client: DotdigitalClient, path: str, operation: str, select: int) -> list[Source]:
    """Every campaign or survey of a list (a short page ends it), ascending by id."""
    found: list[Source] = []
    skip = 0
    while True:
        items = page(client, path, operation, select, skip)
        found.extend(sources(items))  # ids and names only: the rest of each entry goes
        skip += len(items)
        if len(items) < select:
            return sorted({source.id: source for source in found}.values(),
                          key=lambda source: source.id)
