"""Log lines an operator can read during a flood or an outage.

Two primitives, both pure apart from the logger they write to and the monotonic clock they
are given:

- :class:`Throttle`: the same cause (a key such as ``"bad-signature"``) is logged at most once
  per ``interval_s``; the line that ends a quiet spell says how many were suppressed since.
- :class:`Outage`: a dependency (Redis, Slack) being down gives one error line when it begins,
  a reminder at most once per ``interval_s`` while it lasts (with the failure count), and one
  line when it ends (with its duration). Never a traceback per failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

#: Operators asked for "at most once a minute".
DEFAULT_INTERVAL_S: Final = 60.0
#: Distinct keys a Throttle remembers; beyond this the oldest are forgotten (the keys come
#: from our own code, but a bound keeps a mistake from growing memory without end).
MAX_KEYS: Final = 1024


@dataclass(slots=True)
class _Seen:
    last_logged_at: float
    suppressed: int = 0


class Throttle:
    """``log(key, msg, ...)`` writes ``msg`` at most once per ``interval_s`` for each ``key``.

    The first line for a key is written at once. Calls inside the interval only count; the
    next line written for that key carries ``suppressed=N`` (the count since the last line)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        level: int = logging.WARNING,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._level = level
        self._interval_s = interval_s
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def log(
        self,
        key: str,
        msg: str,
        *args: Any,
        extra: dict[str, Any] | None = None,
        exc_info: BaseException | None = None,
    ) -> bool:
        """Log ``msg % args`` for ``key`` unless it was logged less than ``interval_s`` ago
        (with ``exc_info``'s traceback, so a bug shows its traceback once a minute, not once
        per occurrence). Returns whether a line was written."""
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.last_logged_at < self._interval_s:
            seen.suppressed += 1
            return False
        fields = dict(extra or {})
        if seen is not None and seen.suppressed:
            fields["suppressed"] = seen.suppressed
        self._seen.pop(key, None)
        self._seen[key] = _Seen(last_logged_at=now)
        while len(self._seen) > MAX_KEYS:
            del self._seen[next(iter(self._seen))]
        self._logger.log(self._level, msg, *args, extra=fields, exc_info=exc_info)
        return True


class OutageReport(Protocol):
    """What a component that only reports to an :class:`Outage` needs of it."""

    def failed(self, cause: BaseException | str) -> None: ...

    def succeeded(self) -> None: ...


class Outage:
    """The state of one dependency as the log tells it.

    Call :meth:`failed` on every failed attempt and :meth:`succeeded` on every good one.
    The first failure logs ``"<what> unavailable: <cause>"`` at ERROR; further failures log
    ``"<what> still unavailable"`` at most once per ``interval_s`` with the count; the first
    success after failures logs ``"<what> available again"`` at WARNING with the duration."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self.what = what
        self._interval_s = interval_s
        self._clock = clock
        self._began_at: float | None = None
        self._last_logged_at = 0.0
        self.failures = 0

    @property
    def down(self) -> bool:
        return self._began_at is not None

    def failed(self, cause: BaseException | str) -> None:
        now = self._clock()
        reason = cause if isinstance(cause, str) else _describe(cause)
        self.failures += 1
        if self._began_at is None:
            self._began_at = self._last_logged_at = now
            self.failures = 1
            self._logger.error("%s unavailable: %s", self.what, reason)
            return
        if now - self._last_logged_at >= self._interval_s:
            self._last_logged_at = now
            self._logger.error(
                "%s still unavailable: %s",
                self.what,
                reason,
                extra={"down_s": round(now - self._began_at, 1), "failures": self.failures},
            )

    def succeeded(self) -> None:
        if self._began_at is None:
            return
        down_s = self._clock() - self._began_at
        self._logger.warning(
            "%s available again",
            self.what,
            extra={"down_s": round(down_s, 1), "failures": self.failures},
        )
        self._began_at = None
        self.failures = 0


def _describe(error: BaseException) -> str:
    """The error's type and first line: enough to tell causes apart, never a traceback."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__
