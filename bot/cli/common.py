"""What the ``grantbot`` subcommands' modules share; it imports none of them."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.duration import parse_duration
from bot.errors import UsageError


def parse_since(text: str, *, now: float) -> float:
    """``--since``: an ISO date/time (UTC if no zone), epoch seconds, or a duration ago (2h)."""
    raw = text.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        parsed = None
    if parsed is not None:
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    try:
        return now - parse_duration(raw)
    except UsageError:
        raise UsageError(
            f'--since "{raw[:40]}" is not a time; '
            "use 2026-11-01, 2026-11-01T09:00Z, epoch seconds or 2h"
        ) from None
