"""Standing access over time: how many grants were live per resource, in time buckets, and
the peak. Pure, and O(1) per event: each bucket keeps only the sum of the changes in it and
their weight (how long before the bucket's end each happened), from which the time-weighted
average of every bucket follows at the end. Changes before the window set the starting level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Bucket widths to choose from (seconds): the smallest giving at most MAX_BUCKETS.
_WIDTHS: Final = (300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BUCKETS: Final = 240


@dataclass(frozen=True, slots=True)
class Peak:
    level: int
    at: float


class _Series:
    __slots__ = ("deltas", "level", "peak", "start_level", "weights")

    def __init__(self, buckets: int) -> None:
        self.deltas = [0] * buckets
        self.weights = [0.0] * buckets
        self.start_level = 0  # at the window's start
        self.level = 0  # now, as the stream goes
        self.peak = Peak(0, 0.0)


class StandingAccess:
    """Fed ``change(resource, +1 | -1, at)`` in stream order."""

    def __init__(self, *, since: float, until: float) -> None:
        self.since = since
        self.until = until
        span = max(until - since, 1.0)
        self.width = next((w for w in _WIDTHS if span / w <= MAX_BUCKETS), _WIDTHS[-1])
        self.buckets = max(1, -int(-span // self.width))
        self._series: dict[str, _Series] = {}
        self.total = 0
        self._peak = Peak(0, since)
        self._opened = False

    def _get(self, resource: str) -> _Series:
        series = self._series.get(resource)
        if series is None:
            series = self._series[resource] = _Series(self.buckets)
            series.peak = Peak(0, self.since)
        return series

    def change(self, resource: str, delta: int, at: float) -> None:
        series = self._get(resource)
        series.level += delta
        self.total += delta
        if at < self.since:
            series.start_level += delta
            return
        self._open_window()
        if at >= self.until:
            return
        index = min(self.buckets - 1, int((at - self.since) // self.width))
        end = min(self.until, self.since + (index + 1) * self.width)
        series.deltas[index] += delta
        series.weights[index] += delta * (end - at)
        if self.total > self._peak.level:
            self._peak = Peak(self.total, at)
        if series.level > series.peak.level:
            series.peak = Peak(series.level, at)

    def _open_window(self) -> None:
        """The levels the window opens with count towards its peaks (once, at the first
        change inside it, or when the figures are read)."""
        if self._opened:
            return
        self._opened = True
        start_total = sum(s.start_level for s in self._series.values())
        if start_total > self._peak.level:
            self._peak = Peak(start_total, self.since)
        for series in self._series.values():
            if series.start_level > series.peak.level:
                series.peak = Peak(series.start_level, self.since)

    @property
    def peak(self) -> Peak:
        """The most grants live at one moment in the window, and when."""
        self._open_window()
        return self._peak

    def bucket_starts(self) -> list[float]:
        return [self.since + i * self.width for i in range(self.buckets)]

    def averages(self) -> dict[str, list[float]]:
        """Resource -> time-weighted average of live grants in each bucket."""
        self._open_window()
        out: dict[str, list[float]] = {}
        for resource, series in sorted(self._series.items()):
            level = float(series.start_level)
            values = []
            for i in range(self.buckets):
                start = self.since + i * self.width
                width = min(self.until, start + self.width) - start
                values.append(max(0.0, (level * width + series.weights[i]) / width))
                level += series.deltas[i]
            out[resource] = values
        return out

    def peaks(self) -> dict[str, Peak]:
        self._open_window()
        return {r: s.peak for r, s in sorted(self._series.items())}
