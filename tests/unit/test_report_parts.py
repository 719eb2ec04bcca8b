"""The report's pure parts: quantiles within 1 %, standing access averages and peaks, the
charts' data points, and the rows spooled to disk."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.report import svg
from bot.report.spool import Spool
from bot.report.standing import StandingAccess
from bot.report.stats import Histogram, Sketch


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0.001, max_value=1e6), min_size=1, max_size=400))
def test_sketch_quantiles_are_within_one_percent(values: list[float]) -> None:
    """Every quantile the sketch gives is within 1 % of a value at that rank."""
    sketch = Sketch()
    for v in values:
        sketch.add(v)
    ordered = sorted(values)
    for q in (0.0, 0.5, 0.9, 0.99, 1.0):
        got = sketch.quantile(q)
        exact = ordered[int(q * (len(ordered) - 1))]
        assert got is not None and abs(got - exact) <= 0.0101 * exact
    assert sketch.max == max(values) and sketch.count == len(values)


def test_sketch_memory_stays_bounded() -> None:
    """A million values over nine decades use fewer than 2,500 counters."""
    sketch = Sketch()
    rng = random.Random(1)
    for _ in range(100_000):
        sketch.add(10 ** rng.uniform(-3, 6))
    assert len(sketch._pos) < 2500  # the bound is the point
    assert Sketch().quantile(0.5) is None


def test_histogram_edges() -> None:
    """Values below the first edge fall in the first bucket, at the last edge in the last."""
    h = Histogram([1, 10], ["<1", "1-10", ">=10"])
    for v in (-5, 0.5, 1, 9.99, 10, 1e9):
        h.add(v)
    assert h.counts == [2, 2, 2] and h.total == 6
    with pytest.raises(ValueError, match="one label per bucket"):
        Histogram([1], ["a"])


def test_standing_access_averages_and_peak() -> None:
    """A grant live before the window counts from its start; one live for half a bucket
    averages 0.5 there; the peak is the most live at one moment, and when."""
    s = StandingAccess(since=0.0, until=3600.0 * 240)  # ten days: hour-wide buckets
    s.change("db", +1, -100.0)  # live before the window opens
    s.change("db", +1, 900.0)  # a second one, for half of the first hour
    s.change("db", -1, 2700.0)
    s.change("cache", +1, 3600.0)
    s.change("db", -1, 7200.0)
    assert s.width == 3600
    averages = s.averages()
    assert averages["db"][:4] == pytest.approx([1.5, 1.0, 0.0, 0.0])
    assert averages["cache"][:4] == pytest.approx([0.0, 1.0, 1.0, 1.0])
    assert (s.peak.level, s.peak.at) == (2, 900.0)
    assert s.peaks()["cache"].level == 1


def test_standing_access_peak_counts_the_level_the_window_opens_with() -> None:
    """Three grants live when the window opens and none added: the peak is 3, at its start
    (not an earlier, higher level before the window)."""
    s = StandingAccess(since=1000.0, until=2000.0)
    for _ in range(5):
        s.change("db", +1, 10.0)
    s.change("db", -1, 20.0)
    s.change("db", -1, 30.0)
    assert (s.peak.level, s.peak.at) == (3, 1000.0)


def test_charts_count_their_points() -> None:
    """Each chart declares as many data points as it draws elements of class pt; text is
    escaped."""
    charts = [
        svg.stacked_bars(
            [0.0, 10.0], 10.0, {"a<b": [1.0, 0.0], "c": [2.0, 1.0]}, peak_level=3, peak_at=0.0
        ),
        svg.line_chart([0.0, 86400.0], {"x": [1, 0], "y": [0, 0]}),
        svg.histogram("h", ["a", "b", "c"], [3, 0, 1], caption="h", color="#000"),
        svg.horizontal_bars("e", [("g-1 db", 7200.0)], caption="e"),
    ]
    for chart in charts:
        declared = int(re.search(r'data-points="(\d+)"', chart).group(1))  # type: ignore[union-attr]
        assert chart.count('class="pt"') == declared > 0
    assert "a&lt;b" in charts[0] and "a<b" not in charts[0]


def test_nice_axis_tops_have_round_quarters() -> None:
    """The axis top is at least the value and its quarters are round numbers."""
    for value, top in ((25, 32), (3, 4), (100, 100), (0, 1)):
        assert svg.nice_max(value) == top


def test_spool_reads_rows_back_in_key_order() -> None:
    """Rows come back sorted by key (ties in insertion order), newlines flattened."""
    spool = Spool(["a", "b"])
    spool.append(["late", "x"], key=3.0)
    spool.append(["early", "line\nbreak"], key=1.0)
    spool.append(["mid", None], key=2.0)
    assert list(spool.rows()) == [["early", "line break"], ["mid", ""], ["late", "x"]]
    assert len(spool) == 3
    spool.close()
