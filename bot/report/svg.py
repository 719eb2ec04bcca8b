"""The report's charts as inline SVG, drawn here (no script, nothing fetched). Pure.

Every chart is an ``<svg class="chart" data-chart=NAME data-points=N>`` whose N data points
are elements of class ``pt`` (a bar, a marker), each with a ``<title>`` for its value: the
browser test checks that each chart drew exactly its points, each with a visible size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Final

WIDTH: Final = 900
HEIGHT: Final = 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 44
PALETTE: Final = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
#: Resources beyond this many are stacked together as "others".
MAX_STACKED: Final = len(PALETTE) - 1


def nice_max(value: float) -> float:
    """An axis top at or above ``value`` whose quarters (the grid lines) are round."""
    if value <= 0:
        return 1.0
    quarter = value / 4
    if value >= 1 and quarter < 1:
        return 4.0  # counts: whole-number grid lines
    exp = 10.0 ** math.floor(math.log10(quarter))
    for step in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if quarter <= step * exp:
            return 4 * step * exp
    return 40.0 * exp


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2f}".rstrip("0")


def _open(name: str, points: int, label: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{escape(name)}" data-points="{points}" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    ]


def _y_axis(top_value: float, *, plot_h: int, unit: str = "") -> list[str]:
    parts = []
    for i in range(5):
        value = top_value * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_fmt(value)}{unit}</text>"
        )
    return parts


def _legend(names: Sequence[str], *, y: float) -> list[str]:
    parts, x = [], float(LEFT)
    for i, name in enumerate(names):
        color = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{x:.0f}" y="{y - 9:.0f}" width="10" height="10" fill="{color}"/>'
            f'<text class="legend" x="{x + 14:.0f}" y="{y:.0f}">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return parts


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%MZ")


def stacked_bars(
    starts: Sequence[float],
    width_s: float,
    series: dict[str, list[float]],
    *,
    peak_level: int,
    peak_at: float,
) -> str:
    """Standing access: per bucket, the average live grants of each resource, stacked; a
    line at the peak (the most live at once)."""
    names = sorted(series, key=lambda r: -max(series[r], default=0.0))
    if len(names) > MAX_STACKED + 1:
        kept, rest = names[:MAX_STACKED], names[MAX_STACKED:]
        merged = [sum(series[r][i] for r in rest) for i in range(len(starts))]
        series = {**{r: series[r] for r in kept}, "others": merged}
        names = [*kept, "others"]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum(series[r][i] for r in names) for i in range(len(starts))]
    top = nice_max(max([*totals, float(peak_level), 1.0]))
    bar_w = plot_w / max(1, len(starts))
    body: list[str] = []
    points = 0
    for i, start in enumerate(starts):
        y = float(TOP + plot_h)
        for j, name in enumerate(names):
            value = series[name][i]
            if value <= 0.0005:
                continue
            h = plot_h * value / top
            y -= h
            points += 1
            body.append(
                f'<rect class="pt" x="{LEFT + i * bar_w:.2f}" y="{y:.2f}" '
                f'width="{max(bar_w - 0.5, 0.5):.2f}" height="{max(h, 0.5):.2f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(name)}: {value:.2f} '
                f"on average from {_stamp(start)}</title></rect>"
            )
    peak_y = TOP + plot_h - plot_h * peak_level / top
    body.append(
        f'<line class="peak" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{peak_y:.1f}" '
        f'y2="{peak_y:.1f}"/><text class="peak-label" x="{WIDTH - RIGHT}" '
        f'y="{peak_y - 4:.1f}" text-anchor="end">peak {peak_level} at {_stamp(peak_at)}</text>'
    )
    parts = _open("standing", points, "standing access over time, stacked by resource")
    parts += _y_axis(top, plot_h=plot_h)
    parts += body
    parts += _time_labels(starts, width_s, plot_w=plot_w, plot_h=plot_h)
    parts += _legend(names, y=HEIGHT - 6)
    parts.append("</svg>")
    return "".join(parts)


def _time_labels(starts: Sequence[float], width_s: float, *, plot_w: int, plot_h: int) -> list[str]:
    if not starts:
        return []
    span = len(starts) * width_s
    parts = []
    for k in range(6):
        ts = starts[0] + span * k / 5
        x = LEFT + plot_w * k / 5
        anchor = "start" if k == 0 else "end" if k == 5 else "middle"
        label = _day(ts) if span >= 3 * 86400 else _stamp(ts)
        parts.append(
            f'<text class="tick" x="{x:.0f}" y="{TOP + plot_h + 16}" '
            f'text-anchor="{anchor}">{label}</text>'
        )
    return parts


def line_chart(days: Sequence[float], series: dict[str, list[int]]) -> str:
    """Counts per day, one line with a marker per day for each series."""
    names = list(series)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_max(max([max(v, default=0) for v in series.values()] + [1]))
    step = plot_w / max(1, len(days) - 1) if len(days) > 1 else 0.0
    body: list[str] = []
    points = 0
    for j, name in enumerate(names):
        color = PALETTE[j % len(PALETTE)]
        coords = []
        for i, value in enumerate(series[name]):
            x = LEFT + (step * i if len(days) > 1 else plot_w / 2)
            y = TOP + plot_h - plot_h * value / top
            coords.append(f"{x:.1f},{y:.1f}")
            points += 1
            body.append(
                f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                f"<title>{escape(name)} on {_day(days[i])}: {value}</title></circle>"
            )
        body.insert(
            0,
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
            f'points="{" ".join(coords)}"/>',
        )
    parts = _open("daily", points, "requests and decisions per day")
    parts += _y_axis(top, plot_h=plot_h)
    parts += body
    for k in sorted({round(i * (len(days) - 1) / 5) for i in range(6)} if days else set()):
        x = LEFT + (step * k if len(days) > 1 else plot_w / 2)
        anchor = "start" if k == 0 else "end" if k == len(days) - 1 else "middle"
        parts.append(
            f'<text class="tick" x="{x:.0f}" y="{TOP + plot_h + 16}" text-anchor="{anchor}">'
            f"{_day(days[k])}</text>"
        )
    parts += _legend(names, y=HEIGHT - 6)
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    name: str, labels: Sequence[str], counts: Sequence[int], *, caption: str, color: str
) -> str:
    """Counts per bucket as columns (empty buckets draw nothing)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_max(max([*counts, 1]))
    bar_w = plot_w / max(1, len(labels))
    body: list[str] = []
    points = 0
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        x = LEFT + i * bar_w
        body.append(
            f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{TOP + plot_h + 16}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
        if count <= 0:
            continue
        h = max(plot_h * count / top, 1.0)
        points += 1
        body.append(
            f'<rect class="pt" x="{x + 2:.1f}" y="{TOP + plot_h - h:.1f}" '
            f'width="{max(bar_w - 4, 1):.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(label)}: {count}</title></rect>"
        )
    parts = _open(name, points, caption)
    parts += _y_axis(top, plot_h=plot_h)
    parts += body
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(name: str, items: Sequence[tuple[str, float]], *, caption: str) -> str:
    """One bar per item (label, seconds), longest first; hours on the axis."""
    row_h = 16
    height = TOP + BOTTOM + row_h * max(1, len(items))
    left = 200
    plot_w = WIDTH - left - RIGHT
    top_h = nice_max(max([s / 3600 for _, s in items] + [0.001]))
    body: list[str] = []
    for i, (label, seconds) in enumerate(items):
        y = TOP + i * row_h
        w = max(plot_w * (seconds / 3600) / top_h, 1.0)
        body.append(
            f'<text class="tick" x="{left - 6}" y="{y + 12}" text-anchor="end">'
            f'{escape(label)}</text><rect class="pt" x="{left}" y="{y + 2}" width="{w:.1f}" '
            f'height="{row_h - 4}" fill="{PALETTE[3]}"><title>{escape(label)}: '
            f"{seconds / 3600:.2f} h</title></rect>"
        )
    base = TOP + row_h * max(1, len(items))
    for k in range(5):
        x = left + plot_w * k / 4
        body.append(
            f'<text class="tick" x="{x:.0f}" y="{base + 16}" text-anchor="middle">'
            f"{_fmt(top_h * k / 4)} h</text>"
        )
    parts = _open(name, len(items), caption, height=height)
    parts += body
    parts.append("</svg>")
    return "".join(parts)
