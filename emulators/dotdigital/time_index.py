"""A sorted ``(time, id)`` index: since-date reads page through it without sorting anything.

Changes arrive with the clock's current time, so an update is usually an append; bisect keeps
the rare out-of-order insert (seeds, a clock moved back) correct. A page is a slice.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator


class TimeIndex:
    def __init__(self, entries: Iterable[tuple[float, int]] = ()) -> None:
        self._keys: list[tuple[float, int]] = sorted(entries)

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, at: float, item_id: int) -> None:
        key = (at, item_id)
        if not self._keys or self._keys[-1] <= key:
            self._keys.append(key)
        else:
            insort(self._keys, key)

    def remove(self, at: float, item_id: int) -> None:
        position = bisect_left(self._keys, (at, item_id))
        if position < len(self._keys) and self._keys[position] == (at, item_id):
            del self._keys[position]

    def move(self, old_at: float, new_at: float, item_id: int) -> None:
        self.remove(old_at, item_id)
        self.add(new_at, item_id)

    def page_since(self, since: float, skip: int, select: int) -> list[int]:
        """Ids with time >= ``since``, ascending by (time, id), offset-paged."""
        start = bisect_left(self._keys, (since, -1)) + skip
        return [item_id for _, item_id in self._keys[start : start + select]]

    def after(self, key: tuple[float, int], limit: int) -> list[tuple[float, int]]:
        """Up to ``limit`` keys strictly after ``key`` (seek paging)."""
        start = bisect_right(self._keys, key)
        return self._keys[start : start + limit]


class IdIndex:
    """Ids in ascending order, for lists ordered by id (contacts, address-book members)."""

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self._ids: list[int] = sorted(set(ids))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, int):
            return False
        position = bisect_left(self._ids, item_id)
        return position < len(self._ids) and self._ids[position] == item_id

    def add(self, item_id: int) -> None:
        if not self._ids or self._ids[-1] < item_id:
            self._ids.append(item_id)
        elif item_id not in self:
            insort(self._ids, item_id)

    def discard(self, item_id: int) -> None:
        position = bisect_left(self._ids, item_id)
        if position < len(self._ids) and self._ids[position] == item_id:
            del self._ids[position]

    def page(self, skip: int, select: int) -> list[int]:
        return self._ids[skip : skip + select]

    def after(self, item_id: int, limit: int) -> list[int]:
        start = bisect_right(self._ids, item_id)
        return self._ids[start : start + limit]

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)
