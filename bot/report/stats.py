"""Distributions in bounded memory. Pure.

:class:`Sketch` answers quantiles within 1 % of the true value (relative), whatever the number
of values, in at most a few thousand counters: values fall into logarithmic buckets
(DDSketch's scheme, Masson et al., VLDB 2019). The maximum and minimum are exact.
:class:`Histogram` counts values between fixed edges, for the charts.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Final

RELATIVE_ACCURACY: Final = 0.01
_GAMMA: Final = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA: Final = math.log(_GAMMA)
#: Values closer to zero than this count as zero (a microsecond, for durations in seconds).
_TINY: Final = 1e-6


class Sketch:
    """Quantiles of a stream of floats, within :data:`RELATIVE_ACCURACY`."""

    __slots__ = ("_neg", "_pos", "_zero", "count", "max", "min")

    def __init__(self) -> None:
        self._pos: dict[int, int] = {}
        self._neg: dict[int, int] = {}
        self._zero = 0
        self.count = 0
        self.max = -math.inf
        self.min = math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.max = max(self.max, value)
        self.min = min(self.min, value)
        if abs(value) < _TINY:
            self._zero += 1
            return
        store = self._pos if value > 0 else self._neg
        index = math.ceil(math.log(abs(value)) / _LOG_GAMMA)
        store[index] = store.get(index, 0) + 1

    def quantile(self, q: float) -> float | None:
        """The value below which a fraction ``q`` of values fall (None when empty)."""
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for index in sorted(self._neg, reverse=True):
            seen += self._neg[index]
            if seen > rank:
                return max(self.min, -_value(index))
        seen += self._zero
        if seen > rank:
            return 0.0
        for index in sorted(self._pos):
            seen += self._pos[index]
            if seen > rank:
                return min(self.max, _value(index))
        return self.max


def _value(index: int) -> float:
    return 2 * _GAMMA**index / (_GAMMA + 1)


class Histogram:
    """Counts of values in ``[edges[i], edges[i+1])``; below the first edge counts in the
    first bucket, at or above the last in the last."""

    __slots__ = ("counts", "edges", "labels")

    def __init__(self, edges: Sequence[float], labels: Sequence[str]) -> None:
        if len(labels) != len(edges) + 1:
            raise ValueError("one label per bucket: len(edges) + 1")
        self.edges = list(edges)
        self.labels = list(labels)
        self.counts = [0] * len(labels)

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_right(self.edges, value)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts)
