"""Durations as people type them in Slack: ``90s``, ``15m``, ``2h``, ``1h30m``, ``1d``; and
the moments they end at, as the CLI and the report print them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from bot.errors import UsageError

_UNIT_SECONDS: Final = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
# Units must come largest first and at most once: "1h30m" yes, "30m1h" and "1h1h" no.
_DURATION_RE: Final = re.compile(
    r"(?:(\d{1,5})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?", re.ASCII
)
MAX_DURATION_S: Final = 366 * 86_400


def parse_duration(text: str) -> int:
    """Return the number of seconds ``text`` denotes.

    Raises :class:`UsageError` naming the text when it is not a positive duration of at most
    a year written with the units d, h, m, s (e.g. ``90s``, ``15m``, ``1h30m``, ``1d``).
    """
    raw = text.strip().lower()
    match = _DURATION_RE.fullmatch(raw) if raw and len(raw) <= 32 else None
    if match is None or not any(match.groups()):
        shown = text if len(text) <= 32 else text[:29] + "..."
        raise UsageError(
            f'"{shown}" is not a duration; use a number with d, h, m or s, e.g. 15m, 2h, 1h30m, 1d'
        )
    seconds = sum(
        int(value) * _UNIT_SECONDS[unit]
        for value, unit in zip(match.groups(), "dhms", strict=True)
        if value is not None
    )
    if seconds <= 0:
        raise UsageError(f'"{text}" is not a positive duration')
    if seconds > MAX_DURATION_S:
        raise UsageError(f'"{text}" is longer than a year')
    return seconds


def format_duration(seconds: int | float) -> str:
    """Render seconds compactly, largest units first: 5400 -> ``1h30m``; 0 -> ``0s``."""
    remaining = max(0, int(seconds))
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_utc(ts: float | None, *, missing: str = "") -> str:
    """A moment as operators and auditors read it, to the second in UTC:
    ``2026-11-30 08:56:11Z``; ``missing`` when there is none."""
    if ts is None:
        return missing
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
