"""Weighted draws, cheaper than ``random.choices`` (which rebuilds its table on every call)."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class WeightedChoice(Generic[T]):
    def __init__(self, values: Sequence[T], weights: Sequence[float]) -> None:
        if len(values) != len(weights) or not values:
            raise ValueError("one weight per value, at least one value")
        self.values = tuple(values)
        self._cumulative = tuple(itertools.accumulate(weights))
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        return self.values[bisect.bisect_right(self._cumulative, rng.random() * self._total)]
