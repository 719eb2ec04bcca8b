"""Machine requesters (the policy's ``clients:``) and the change windows auto-approval may
name: how a client appears as a requester, and whether a window is open at ``now``. Pure.

A client's requester id is ``client:<name>`` everywhere a Slack user id would be (the grant's
requester, the audit's actor, the per-requester indexes), so a pipeline's request is judged,
approved, counted and ended by the same code as a person's; no Slack user id has a colon.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

CLIENT_PREFIX: Final = "client:"


def client_requester(name: str) -> str:
    """The requester id of client ``name``."""
    return f"{CLIENT_PREFIX}{name}"


def client_name(requester: str) -> str | None:
    """The client's name when ``requester`` is a client's requester id, else None."""
    if requester.startswith(CLIENT_PREFIX):
        return requester[len(CLIENT_PREFIX) :]
    return None


#: Weekday names as change windows write them, Monday first (``datetime.weekday()`` order).
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def window_open(*, days: frozenset[str], start_min: int, end_min: int, now: float) -> bool:
    """Whether a window open on ``days`` from ``start_min`` to ``end_min`` (minutes after
    midnight UTC) is open at ``now``. A window whose end is not after its start runs past
    midnight: it is open from ``start_min`` on its day until ``end_min`` the next day."""
    at = datetime.fromtimestamp(now, tz=UTC)
    minute = at.hour * 60 + at.minute
    today = WEEKDAYS[at.weekday()]
    yesterday = WEEKDAYS[(at.weekday() - 1) % 7]
    if start_min < end_min:
        return today in days and start_min <= minute < end_min
    return (today in days and minute >= start_min) or (yesterday in days and minute < end_min)
