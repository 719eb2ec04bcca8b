"""The emulator's HTTP wire formats: Web API arguments read as Slack reads them, and answers,
including each fault's shape (a 429 with Retry-After, an HTML page, a reset connection...)."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.devtools.slack_emulator.faults import (
    HTML_ERROR_BODY,
    NON_JSON_BODY,
    PLAIN_TEXT_BODY,
    Fault,
    FaultKind,
)

JSON = dict[str, Any]

# Web API arguments that arrive as JSON-encoded strings in form bodies.
_JSON_ARGS = ("blocks", "attachments", "view", "metadata")
_SERVER_ERRORS = {500: "internal_error", 502: "internal_error", 503: "service_unavailable"}


class Answer:
    """An HTTP answer: status, JSON body (or a raw ``text`` body of ``content_type``), extra
    headers; ``reset`` answers by resetting the connection instead (recorded as status 0)."""

    def __init__(
        self,
        body: JSON,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        text: str | None = None,
        content_type: str = "application/json",
        reset: bool = False,
        recorded: bool = False,
    ):
        self.body, self.status, self.headers = body, status, dict(headers or {})
        self.text, self.content_type, self.reset = text, content_type, reset
        self.recorded = recorded  # already in the call log (a held call is logged at once)

    def to_response(self, request: web.Request) -> web.Response:
        if self.reset:
            reset_connection(request)
            return web.Response(status=self.status)  # never reaches the client
        if self.text is not None:
            return web.Response(
                text=self.text,
                status=self.status,
                headers=self.headers,
                content_type=self.content_type,
            )
        return web.json_response(self.body, status=self.status, headers=self.headers)


def reset_connection(request: web.Request) -> None:
    """Close the request's connection with a TCP RST (SO_LINGER 0): the client reads
    "connection reset by peer", as when a load balancer drops it."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def fault_answer(fault: Fault) -> Answer:
    """The answer ``fault`` gives at once: every kind but DELAY and TIMEOUT, which wait (the
    server does that)."""
    status = fault.http_status
    match fault.kind:
        case FaultKind.RATELIMITED:
            return Answer(
                {"ok": False, "error": "ratelimited"},
                429,
                {"Retry-After": str(fault.retry_after_s)},
            )
        case FaultKind.NON_JSON:
            return Answer({}, status, text=NON_JSON_BODY, content_type="application/json")
        case FaultKind.HTML_ERROR:
            return Answer({}, status, text=HTML_ERROR_BODY, content_type="text/html")
        case FaultKind.PLAIN_TEXT:
            return Answer({}, status, text=PLAIN_TEXT_BODY, content_type="text/plain")
        case FaultKind.RESET:
            return Answer({"ok": False, "error": "connection_reset"}, 0, reset=True)
        case _:
            error = _SERVER_ERRORS.get(status, "internal_error")
            return Answer({"ok": False, "error": error}, status)


async def read_api_args(request: web.Request) -> tuple[JSON, str | None]:
    """Web API arguments from the query string and a form or JSON body, and the token.

    As on Slack, a JSON body must carry its token in ``Authorization: Bearer``; a form body or
    the query string may carry it as ``token``. JSON-valued arguments sent as strings in a form
    (``blocks``, ``view``...) are decoded. The token is not kept in the returned arguments.
    """
    args: JSON = dict(request.query)
    form_token = args.pop("token", None)
    if request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                body.pop("token", None)
                args.update(body)
        else:
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
            form_token = args.pop("token", form_token)
    for name in _JSON_ARGS:
        value = args.get(name)
        if isinstance(value, str) and value:
            with contextlib.suppress(ValueError):
                args[name] = json.loads(value)
    auth = request.headers.get("Authorization", "")
    token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else form_token
    return args, token
