"""A REST API faked at the wire, with whole-server fault modes and a record of calls: what the
PagerDuty and Opsgenie emulators share (their routes and formats are their own).

Faults: :meth:`FakeApiServer.fail` (every call answers 5xx), :meth:`FakeApiServer.slow`
(answers after a delay), :meth:`FakeApiServer.refuse` (the port refuses connections), until
:meth:`FakeApiServer.heal`. Every call is recorded, without its Authorization header.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.devtools.loopback import LoopbackServer


class FaultMode(StrEnum):
    NONE = "none"
    ERROR = "error"  # every API call answers error_status
    SLOW = "slow"  # every API call answers after slow_delay_s
    REFUSE = "refuse"  # the listener is closed; open connections are dropped


@dataclass(frozen=True, slots=True)
class Recorded:
    """One API call the fake received (its Authorization header is never kept)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    at: float

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


class FakeApiServer(LoopbackServer):
    """A :class:`LoopbackServer` with fault modes and a record of calls. Subclasses add their
    routes in :meth:`routes` and speak their API's error format in :meth:`error_response`."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(host=host, port=port)
        self.clock = clock
        self.mode = FaultMode.NONE
        self.error_status = 500
        self.slow_delay_s = 0.0
        self.recorded: list[Recorded] = []

    def middlewares(self) -> list[Middleware]:
        return [self._middleware]

    @property
    def url(self) -> str:
        """The API's base URL (no trailing slash), for a policy's ``base_url``."""
        return self.origin

    # --- faults ---
    def fail(self, *, status: int = 500) -> None:
        """Every API call answers ``status`` until :meth:`heal`."""
        self.mode, self.error_status = FaultMode.ERROR, status

    def slow(self, *, delay_s: float) -> None:
        """Every API call answers only after ``delay_s`` (or at stop) until :meth:`heal`."""
        self.mode, self.slow_delay_s = FaultMode.SLOW, delay_s

    async def refuse(self) -> None:
        """Close the listener: new connections are refused, open ones dropped."""
        self.mode = FaultMode.REFUSE
        await self._stop_listening()

    async def heal(self) -> None:
        """Back to normal answers (listening again on the same port after :meth:`refuse`)."""
        self.mode = FaultMode.NONE
        if self._site is None and self._runner is not None:
            await self._listen()

    # --- recording ---
    def calls(self, path: str | None = None) -> list[Recorded]:
        """Recorded calls, optionally only those to ``path`` (e.g. ``/oncalls``)."""
        return [c for c in self.recorded if path is None or c.path == path]

    def reset(self) -> None:
        self.recorded.clear()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.mode is FaultMode.REFUSE:
            # A keep-alive connection opened before refuse(): drop it like a dead host would.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)  # never reaches the client
        if self.mode is FaultMode.SLOW:
            await self.hold(self.slow_delay_s)
        if self.mode is FaultMode.ERROR:
            response: web.StreamResponse = self.error_response(self.error_status)
        else:
            response = await handler(request)
        query = tuple((k, v) for k, v in request.query.items())
        self.recorded.append(
            Recorded(request.method, request.path, query, response.status, self.clock())
        )
        return response

    def error_response(self, status: int) -> web.Response:
        """How the service answers a server error; subclasses speak their API's format."""
        return web.json_response({"message": "Internal Server Error"}, status=status)
