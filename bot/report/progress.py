"""Progress of a long report on a terminal: ``entries read / total``, rate and time left.
Written to stderr, rewritten in place on a TTY; with ``--progress`` to a file or pipe, one
line every few seconds instead."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    def __init__(
        self,
        stream: TextIO | None,
        *,
        total: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._total = max(total, 1)
        self._clock = clock
        self._tty = bool(stream is not None and stream.isatty())
        self._every_s = 0.25 if self._tty else 5.0
        self._started = clock()
        self._last = 0.0

    def update(self, done: int) -> None:
        if self._stream is None:
            return
        now = self._clock()
        if now - self._last < self._every_s:
            return
        self._last = now
        self._write(done, now)

    def finish(self, done: int) -> None:
        if self._stream is None:
            return
        self._write(done, self._clock())
        if self._tty:
            self._stream.write("\n")
        self._stream.flush()

    def _write(self, done: int, now: float) -> None:
        assert self._stream is not None
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        left = (self._total - done) / rate if rate > 0 and done < self._total else 0.0
        pct = min(100.0, 100.0 * done / self._total)
        line = (
            f"report: {done:,}/{self._total:,} audit entries ({pct:.0f}%), "
            f"{rate:,.0f}/s, {left:.0f}s left"
        )
        self._stream.write(("\r" + line + "   ") if self._tty else line + "\n")
        self._stream.flush()
