"""Slack's Socket Mode, faked at the wire for the emulator.

What Slack does, and this does the same way: an app calls ``apps.connections.open`` with its
app-level token (``xapp-…``) and gets a one-time ``wss://…`` URL; on connecting, Slack sends
``{"type": "hello", …}``; then each delivery is a JSON envelope
``{"envelope_id", "type": "slash_commands" | "interactive" | "events_api", "payload",
"accepts_response_payload", "retry_attempt", "retry_reason"}``, which the app acknowledges by
sending back ``{"envelope_id": …}`` (with a ``payload`` where the ack carries a response, e.g.
a view submission's ``response_action``) within 3 seconds. Here the URL is plain ``ws://`` on
the emulator's own port.

:meth:`SocketModeHub.deliver` is Slack's side of one delivery: send the envelope to the
connected app and wait for its ack.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

JSON = dict[str, Any]

#: A fake app-level token for a fake Slack (Socket Mode needs one besides the bot token).
DEFAULT_APP_TOKEN: Final = "xapp-1-A0GRANTBOT-0001-grantbot-emulator"  # noqa: S105
#: The websocket path; the ticket in the query string is good for one connection.
SOCKET_PATH: Final = "/_emulator/socket-mode/link"
#: Slack's own limit for an ack.
ACK_TIMEOUT_S: Final = 3.0
#: How long a connection waits for an app to connect before a delivery gives up.
CONNECT_WAIT_S: Final = 10.0
ENVELOPE_TYPES: Final = frozenset({"slash_commands", "interactive", "events_api"})


class NoConnection(Exception):
    """No app is connected over Socket Mode to deliver to."""


@dataclass
class Delivered:
    """One envelope's fate: the ack the app sent (None: none within the deadline)."""

    envelope_id: str
    ack: JSON | None
    latency_s: float

    @property
    def acked(self) -> bool:
        return self.ack is not None


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    opened_at: float
    waiting: dict[str, asyncio.Future[JSON]] = field(default_factory=dict)


class SocketModeHub:
    """The Socket Mode side of the emulator: tickets, connections, deliveries, acks."""

    def __init__(self, *, app_token: str = DEFAULT_APP_TOKEN, app_id: str = "A0GRANTBOT"):
        self.app_token = app_token
        self.app_id = app_id
        self._tickets: set[str] = set()
        self._connections: list[_Connection] = []
        self._connected = asyncio.Event()
        self.delivered: list[Delivered] = []

    def register(self, app: web.Application) -> None:
        app.router.add_get(SOCKET_PATH, self._handle_ws)

    # -- Web API: apps.connections.open ---------------------------------------------------

    def open_connection(self, *, token: str | None, base_url: str) -> tuple[JSON, int]:
        """``apps.connections.open``'s answer and HTTP status, as Slack gives them."""
        if not token:
            return {"ok": False, "error": "not_authed"}, 200
        if not token.startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}, 200
        if token != self.app_token:
            return {"ok": False, "error": "invalid_auth"}, 200
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        ws_base = base_url.rstrip("/").replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_base}{SOCKET_PATH}?ticket={ticket}"}, 200

    # -- the websocket ----------------------------------------------------------------------

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            raise web.HTTPUnauthorized(text="invalid or used ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws=ws, opened_at=time.time())
        self._connections.append(conn)
        self._connected.set()
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._connections),
                "debug_info": {"host": "emulator", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._connections.remove(conn)
            if not self._connections:
                self._connected.clear()
            for fut in conn.waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionResetError("the app disconnected"))
        return ws

    def _on_text(self, conn: _Connection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("socket mode: the app sent something that is not JSON")
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        fut = conn.waiting.get(envelope_id) if isinstance(envelope_id, str) else None
        if fut is not None and not fut.done():
            fut.set_result(message)

    # -- Slack's side of a delivery -----------------------------------------------------------

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def deliver(
        self,
        envelope_type: str,
        payload: JSON,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        timeout_s: float = ACK_TIMEOUT_S,
    ) -> Delivered:
        """Send one envelope to a connected app and wait up to ``timeout_s`` for its ack.
        Raises :class:`NoConnection` when no app connects within :data:`CONNECT_WAIT_S`."""
        if envelope_type not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {envelope_type!r}")
        try:
            await asyncio.wait_for(self._connected.wait(), timeout=CONNECT_WAIT_S)
        except TimeoutError as e:
            raise NoConnection("no app is connected over Socket Mode") from e
        conn = self._connections[-1]
        envelope_id = secrets.token_hex(16)
        fut: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        conn.waiting[envelope_id] = fut
        started = time.perf_counter()
        await conn.ws.send_json(
            {
                "envelope_id": envelope_id,
                "type": envelope_type,
                "payload": payload,
                "accepts_response_payload": accepts_response_payload,
                "retry_attempt": retry_attempt,
                "retry_reason": "" if retry_attempt == 0 else "timeout",
            }
        )
        try:
            ack: JSON | None = await asyncio.wait_for(fut, timeout=timeout_s)
        except (TimeoutError, ConnectionResetError):
            ack = None
        finally:
            conn.waiting.pop(envelope_id, None)
        result = Delivered(envelope_id, ack, time.perf_counter() - started)
        self.delivered.append(result)
        return result

    async def close(self) -> None:
        for conn in list(self._connections):
            await conn.ws.close()
