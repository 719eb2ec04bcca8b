"""Faults: every shape Slack (or a proxy in front of it) fails in, queued per method.

Pure of HTTP: :class:`FaultInjector` decides which call misbehaves and how; the server turns
the fault into an answer (``wire.fault_answer``) or a wait.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


class FaultKind(StrEnum):
    """How a call misbehaves. Each is a shape real Slack (or a proxy in front of it) shows."""

    RATELIMITED = "ratelimited"  # HTTP 429 {"ok": false, "error": "ratelimited"}, Retry-After
    SERVER_ERROR = "server_error"  # HTTP 5xx with Slack's JSON error body
    DELAY = "delay"  # a normal answer, late
    NON_JSON = "non_json"  # declared application/json, but the body is not JSON
    HTML_ERROR = "html_error"  # a proxy's HTML error page (text/html, e.g. 503)
    PLAIN_TEXT = "plain_text"  # a text/plain error body
    TIMEOUT = "timeout"  # no answer at all for delay_s (the client gives up first)
    RESET = "reset"  # the connection is reset (TCP RST) before any answer


#: Bodies of the non-JSON faults, as proxies and load balancers in front of Slack send them.
NON_JSON_BODY: Final = '{"ok": true, "channel": "C0'  # cut off mid-object
HTML_ERROR_BODY: Final = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head>"
    "<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
)
PLAIN_TEXT_BODY: Final = "upstream connect error or disconnect/reset before headers"
#: How long a TIMEOUT fault holds a call unanswered by default (clients give up long before).
DEFAULT_TIMEOUT_HOLD_S: Final = 30.0
_DEFAULT_STATUS: Final[Mapping[FaultKind, int]] = {
    FaultKind.SERVER_ERROR: 500,
    FaultKind.NON_JSON: 200,
    FaultKind.HTML_ERROR: 503,
    FaultKind.PLAIN_TEXT: 500,
}


@dataclass
class Fault:
    """One queued misbehaviour for one method, applied to its next ``times`` calls.

    ``status`` None means the kind's usual status (500, 200 for NON_JSON, 503 for
    HTML_ERROR). ``match`` limits the fault to calls whose arguments include these values
    (e.g. ``{"channel": "U0ALICE"}``: only the DMs to Alice)."""

    kind: FaultKind
    times: int = 1
    retry_after_s: int = 1
    status: int | None = None
    delay_s: float = 0.0
    match: dict[str, str] | None = None

    @property
    def http_status(self) -> int:
        return self.status if self.status is not None else _DEFAULT_STATUS.get(self.kind, 500)

    def applies_to(self, args: Mapping[str, Any]) -> bool:
        return not self.match or all(str(args.get(k)) == v for k, v in self.match.items())


class FaultInjector:
    """Queues faults per method; a call to that method consumes one use of the first queued
    fault that applies to its arguments."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def ratelimit(
        self,
        method: str,
        *,
        times: int = 1,
        retry_after_s: int = 1,
        match: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` calls answer HTTP 429 ``ratelimited`` with ``Retry-After``."""
        fault = Fault(FaultKind.RATELIMITED, times=times, retry_after_s=retry_after_s, match=match)
        self.add(method, fault)

    def server_error(
        self,
        method: str,
        *,
        times: int = 1,
        status: int = 500,
        match: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` calls answer HTTP ``status`` (500, 503...) and change nothing."""
        self.add(method, Fault(FaultKind.SERVER_ERROR, times=times, status=status, match=match))

    def delay(self, method: str, *, delay_s: float, times: int = 1) -> None:
        """The next ``times`` calls are answered normally, after ``delay_s``."""
        self.add(method, Fault(FaultKind.DELAY, times=times, delay_s=delay_s))

    def misbehave(
        self,
        method: str,
        kind: FaultKind,
        *,
        times: int = 1,
        status: int | None = None,
        retry_after_s: int = 1,
        hold_s: float = DEFAULT_TIMEOUT_HOLD_S,
        match: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` calls fail in the shape ``kind`` names; nothing changes. A
        TIMEOUT holds each call unanswered for ``hold_s`` (or until the emulator stops)."""
        delay_s = hold_s if kind is FaultKind.TIMEOUT else 0.0
        fault = Fault(
            kind,
            times=times,
            retry_after_s=retry_after_s,
            status=status,
            delay_s=delay_s,
            match=match,
        )
        self.add(method, fault)

    def add(self, method: str, fault: Fault) -> None:
        if fault.times < 1:
            raise ValueError("a fault applies to at least one call")
        self._queues.setdefault(method, deque()).append(fault)

    def take(self, method: str, args: Mapping[str, Any] | None = None) -> Fault | None:
        queue = self._queues.get(method)
        if not queue:
            return None
        fault = next((f for f in queue if f.applies_to(args or {})), None)
        if fault is None:
            return None
        fault.times -= 1
        if fault.times == 0:
            queue.remove(fault)
        return fault

    def clear(self) -> None:
        self._queues.clear()
