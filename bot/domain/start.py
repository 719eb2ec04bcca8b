"""Scheduled starts: when a request's clock starts, read in the requester's time zone.

Three ways to write a start (the ``/access request`` grammar and the request form read the
words; this module gives them a time):

- ``at 14:00``: the next 14:00 on the requester's wall clock (today, or tomorrow once passed);
- ``in 2h``: that long from now;
- ``on 2026-12-01 09:00``: that wall-clock time on that day.

Wall-clock times are resolved with :mod:`zoneinfo` in the zone Slack has for the requester
(``users.info`` ``tz``); a time that does not exist there (the hour skipped when clocks go
forward) is refused, one that happens twice takes the first. A start is at most
``max_lead_time`` ahead (policy; 7 days unless set). The window of a scheduled grant is
``[starts_at, starts_at + duration)``: it is issued at the start (or, after downtime, as late
as the window is still open) and ends when the window closes. Pure: ``now`` is passed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.duration import format_duration
from bot.errors import PolicyDenied, UsageError

StartKind = Literal["at", "in", "on"]
START_WORDS: Final = frozenset({"at", "in", "on"})
#: The built-in ``max_lead_time``.
DEFAULT_MAX_LEAD_TIME_S: Final = 7 * 86_400
#: The zone used when Slack does not say the requester's.
FALLBACK_TZ: Final = "UTC"

_HHMM_RE: Final = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_DATE_RE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True, slots=True)
class StartSpec:
    """A start as written: ``kind`` and its words, checked for shape but not yet a time.

    ``at``: ``clock`` (hour, minute); ``in``: ``delay_s``; ``on``: ``day`` and ``clock``.
    """

    kind: StartKind
    clock: tuple[int, int] | None = None
    delay_s: int | None = None
    day: date | None = None

    def written(self) -> str:
        """How a person would write it back (``at 14:00``, ``in 2h``, ``on 2026-12-01 09:00``)."""
        if self.kind == "in":
            return f"in {format_duration(self.delay_s or 0)}"
        hh, mm = self.clock or (0, 0)
        if self.kind == "at":
            return f"at {hh:02d}:{mm:02d}"
        return f"on {self.day} {hh:02d}:{mm:02d}"


def parse_clock(text: str) -> tuple[int, int] | None:
    """``14:00`` -> (14, 0); None when ``text`` is not a 24-hour HH:MM."""
    m = _HHMM_RE.fullmatch(text)
    return None if m is None else (int(m.group(1)), int(m.group(2)))


def parse_day(text: str) -> date | None:
    """``2026-12-01`` -> that date; None when ``text`` is not a real YYYY-MM-DD date."""
    m = _DATE_RE.fullmatch(text)
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def zone(tz: str | None) -> ZoneInfo:
    """The IANA zone ``tz`` (Slack's ``users.info`` ``tz``), UTC when unknown or absent."""
    try:
        return ZoneInfo(tz or FALLBACK_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(FALLBACK_TZ)


def _exact_local(day: date, clock: tuple[int, int], tz: ZoneInfo) -> datetime:
    """``day`` at ``clock`` in ``tz``; UsageError when that wall time does not exist there."""
    naive = datetime.combine(day, clock_time(*clock))
    local = naive.replace(tzinfo=tz, fold=0)
    back = local.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if back != naive:
        raise UsageError(
            f"{day} {clock[0]:02d}:{clock[1]:02d} does not exist in {tz.key} (the clocks skip"
            " it); pick another time"
        )
    return local


def resolve_start(spec: StartSpec, *, tz: str | None, now: float) -> float:
    """The epoch seconds ``spec`` means for someone in ``tz`` at ``now``.

    ``at`` is the next such wall-clock time (today, else tomorrow); ``on`` must not be in the
    past (UsageError saying so, with the time shown in the zone).
    """
    if spec.kind == "in":
        return now + (spec.delay_s or 0)
    zinfo = zone(tz)
    clock = spec.clock or (0, 0)
    local_now = datetime.fromtimestamp(now, tz=zinfo)
    if spec.kind == "at":
        day = local_now.date()
        for _ in range(3):  # today; tomorrow; the day after when tomorrow skips that hour
            try:
                start = _exact_local(day, clock, zinfo)
            except UsageError:
                day += timedelta(days=1)
                continue
            if start.timestamp() > now:
                return start.timestamp()
            day += timedelta(days=1)
        raise UsageError(f"at {clock[0]:02d}:{clock[1]:02d} does not exist in {zinfo.key}")
    assert spec.day is not None
    start = _exact_local(spec.day, clock, zinfo)
    if start.timestamp() <= now:
        raise UsageError(
            f"{spec.written()} is in the past in {zinfo.key} (it is now"
            f" {local_now:%Y-%m-%d %H:%M}); give a time ahead"
        )
    return start.timestamp()


def check_lead_time(starts_at: float, *, now: float, max_lead_time_s: int, rule: str) -> None:
    """PolicyDenied when ``starts_at`` is further ahead than the rule's ``max_lead_time``."""
    lead = starts_at - now
    if lead > max_lead_time_s:
        raise PolicyDenied(
            f"{rule} may be scheduled at most {format_duration(max_lead_time_s)} ahead"
            f" (max_lead_time); this start is {format_duration(_shown_lead(lead, max_lead_time_s))}"
            " ahead"
        )


def _shown_lead(lead: float, max_lead_time_s: int) -> int:
    """``lead`` to the minute (starts are written to the minute; the clock has moved on a
    little since the start was read: ``in 8d`` is 8d, not 7d23h59m59s), or to the second
    when the minute would not show it is over ``max_lead_time_s``."""
    minutes = round(lead / 60) * 60
    return minutes if minutes > max_lead_time_s else math.ceil(lead)


def window_end(starts_at: float, duration_s: int) -> float:
    """When a scheduled grant's window closes: its start plus its duration."""
    return starts_at + duration_s


def issue_until(*, starts_at: float | None, duration_s: int, now: float) -> float:
    """When a grant issued at ``now`` expires: ``now + duration`` for one without a start (or
    started early), else the end of its window (its duration counts from the start, so a
    start issued late, after downtime, keeps only what is left of its window)."""
    if starts_at is None or starts_at > now:
        return now + duration_s
    return window_end(starts_at, duration_s)


def window_open(*, starts_at: float, duration_s: int, now: float) -> bool:
    """True while a scheduled grant may still be issued at ``now``."""
    return now < window_end(starts_at, duration_s)


def show_time(ts: float, tz: str | None) -> str:
    """``2026-12-01 09:00 CET (Europe/Berlin)``: a time shown back in the zone it was written
    in, with the zone named."""
    zinfo = zone(tz)
    local = datetime.fromtimestamp(ts, tz=zinfo)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({zinfo.key})"


def parse_start_text(text: str, *, parse_delay: Callable[[str], int]) -> StartSpec:
    """A start as typed in the request form: ``14:00`` / ``at 14:00``, ``in 2h``,
    ``2026-12-01 09:00`` / ``on 2026-12-01 09:00``; UsageError saying how to write it.
    ``parse_delay`` reads the duration after ``in`` (bot.domain.duration.parse_duration)."""
    words = text.split()
    if words and words[0].lower() in START_WORDS and len(words) > 1:
        head, words = words[0].lower(), words[1:]
    else:
        head = ""
    if head in ("", "at") and len(words) == 1 and (clock := parse_clock(words[0])) is not None:
        return StartSpec("at", clock=clock)
    if head == "in" and len(words) == 1:
        return StartSpec("in", delay_s=parse_delay(words[0]))
    if head in ("", "on") and len(words) == 2:
        day, clock = parse_day(words[0]), parse_clock(words[1])
        if day is not None and clock is not None:
            return StartSpec("on", clock=clock, day=day)
    raise UsageError("write the start like 14:00, in 2h or 2026-12-01 09:00 (24-hour)")
