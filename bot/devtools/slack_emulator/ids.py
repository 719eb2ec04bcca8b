"""Slack-shaped ids the emulator mints: message timestamps, view ids and hashes, trigger_ids,
response_url tokens."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable


class SlackIds:
    """Mints Slack-shaped ids: message ts (unique, increasing), view ids, triggers, hashes."""

    _TS_STEP_US = 100

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last_ts = (0, 0)
        self._seq = itertools.count(1)

    def ts(self) -> str:
        """Like ``1732352400.000100``: seconds, then a micro part that never repeats."""
        seconds, micros = int(self._clock()), self._TS_STEP_US
        last_s, last_us = self._last_ts
        if seconds <= last_s:
            seconds, micros = last_s, last_us + self._TS_STEP_US
            if micros > 999_999:
                seconds, micros = seconds + 1, self._TS_STEP_US
        self._last_ts = (seconds, micros)
        return f"{seconds}.{micros:06d}"

    def view_id(self) -> str:
        return f"V{next(self._seq):08X}"

    def view_hash(self) -> str:
        return f"{int(self._clock())}.{secrets.token_hex(4)}"

    def trigger_id(self) -> str:
        """Like ``13345224609.738474920.8088930838d88f008e0``."""
        return f"{10_000_000_000 + next(self._seq)}.{738474920}.{secrets.token_hex(10)}"

    def response_token(self) -> str:
        return secrets.token_urlsafe(18)
