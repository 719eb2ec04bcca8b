"""The emulator's control endpoints under ``/_emulator/`` and :class:`EmulatorControl`, their
client: for a driver or test whose emulator runs in another process.

``GET calls`` (``?method=``, ``?since=N``), ``GET state``, ``POST reset``, ``POST triggers``,
``POST response_urls``, ``POST faults``, ``POST latency``, ``POST socket-mode/deliver``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Self

import aiohttp
from aiohttp import web

from bot.devtools.slack_emulator.core import EmulatorCore
from bot.devtools.slack_emulator.faults import Fault, FaultKind
from bot.devtools.slack_emulator.paths import CONTROL_PREFIX
from bot.devtools.socket_mode import NoConnection

JSON = dict[str, Any]

#: The most latency the control endpoint accepts: past Slack's 10 s client timeouts already.
MAX_LATENCY_MS = 60_000.0


class ControlEndpoints:
    """The ``/_emulator/`` endpoints of one emulator."""

    def __init__(self, emulator: EmulatorCore) -> None:
        self.emulator = emulator

    def register(self, app: web.Application) -> None:
        add_get, add_post = app.router.add_get, app.router.add_post
        add_get(f"{CONTROL_PREFIX}/calls", self._handle_calls)
        add_get(f"{CONTROL_PREFIX}/state", self._handle_state)
        add_post(f"{CONTROL_PREFIX}/reset", self._handle_reset)
        add_post(f"{CONTROL_PREFIX}/triggers", self._handle_issue_trigger)
        add_post(f"{CONTROL_PREFIX}/response_urls", self._handle_issue_response_url)
        add_post(f"{CONTROL_PREFIX}/faults", self._handle_faults)
        add_post(f"{CONTROL_PREFIX}/latency", self._handle_latency)
        add_post(f"{CONTROL_PREFIX}/socket-mode/deliver", self._handle_socket_deliver)

    async def _handle_calls(self, request: web.Request) -> web.Response:
        """``?method=`` filters; ``?since=N`` skips the first N calls of the log. ``next`` is
        the log's length, the ``since`` of the next poll."""
        method = request.query.get("method")
        try:
            since = max(0, int(request.query.get("since", "0")))
        except ValueError as e:
            raise web.HTTPBadRequest(text="since must be an integer") from e
        end = self.emulator.call_count()
        calls = [c.as_json() for c in self.emulator.calls(method, since=since)]
        return web.json_response({"calls": calls, "next": end})

    async def _handle_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.emulator.workspace.state())

    async def _handle_reset(self, request: web.Request) -> web.Response:
        self.emulator.reset()
        return web.json_response({"ok": True})

    async def _handle_issue_trigger(self, request: web.Request) -> web.Response:
        body = await _control_body(request)
        return web.json_response(
            {"trigger_id": self.emulator.issue_trigger_id(str(body["user_id"]))}
        )

    async def _handle_issue_response_url(self, request: web.Request) -> web.Response:
        body = await _control_body(request)
        url = self.emulator.issue_response_url(
            str(body["user_id"]),
            str(body["channel_id"]),
            message_ts=body.get("message_ts"),
            is_ephemeral=bool(body.get("is_ephemeral")),
        )
        return web.json_response({"response_url": url})

    async def _handle_socket_deliver(self, request: web.Request) -> web.Response:
        """Slack's side of one Socket Mode delivery: ``{"type", "payload",
        "accepts_response_payload"?}`` -> ``{"envelope_id", "acked", "ack", "latency_s"}``."""
        body = await _control_body(request)
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise web.HTTPBadRequest(text="payload must be a JSON object")
        try:
            delivered = await self.emulator.socket_mode.deliver(
                str(body.get("type")),
                payload,
                accepts_response_payload=bool(body.get("accepts_response_payload", False)),
            )
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from e
        except NoConnection as e:
            raise web.HTTPConflict(text=str(e)) from e
        return web.json_response(
            {
                "envelope_id": delivered.envelope_id,
                "acked": delivered.acked,
                "ack": delivered.ack,
                "latency_s": delivered.latency_s,
            }
        )

    async def _handle_faults(self, request: web.Request) -> web.Response:
        body = await _control_body(request)
        try:
            fault = Fault(
                FaultKind(body["kind"]),
                times=int(body.get("times", 1)),
                retry_after_s=int(body.get("retry_after_s", 1)),
                status=None if body.get("status") is None else int(body["status"]),
                delay_s=float(body.get("delay_s", 0.0)),
                match={str(k): str(v) for k, v in (body.get("match") or {}).items()} or None,
            )
            self.emulator.faults.add(str(body["method"]), fault)
        except (KeyError, ValueError, AttributeError) as e:
            raise web.HTTPBadRequest(text=f"bad fault: {e}") from e
        return web.json_response({"ok": True})

    async def _handle_latency(self, request: web.Request) -> web.Response:
        """``{"latency_ms": 150}``: every later Web API call and response_url post waits
        that long before it is answered."""
        body = await _control_body(request)
        try:
            latency_ms = float(body["latency_ms"])
        except (KeyError, TypeError, ValueError) as e:
            raise web.HTTPBadRequest(text=f"bad latency: {e}") from e
        if not 0 <= latency_ms <= MAX_LATENCY_MS:
            raise web.HTTPBadRequest(text=f"latency_ms must be within 0..{MAX_LATENCY_MS}")
        self.emulator.latency_s = latency_ms / 1000
        return web.json_response({"ok": True, "latency_ms": latency_ms})


async def _control_body(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except ValueError as e:
        raise web.HTTPBadRequest(text="expected a JSON object") from e
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


class EmulatorControl:
    """HTTP client for ``/_emulator/*``: for a driver or test talking to an emulator elsewhere.

    ``base_url`` is the emulator's root (``http://127.0.0.1:PORT/``). Pass an open
    ``aiohttp.ClientSession`` to share one; otherwise ``close()`` (or ``async with``) ends its own.
    """

    def __init__(self, base_url: str, *, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_session = session is None
        self._session = session

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _post(self, path: str, body: JSON) -> JSON:
        async with self._http().post(f"{self.base_url}{CONTROL_PREFIX}/{path}", json=body) as r:
            r.raise_for_status()
            result: JSON = await r.json()
            return result

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> JSON:
        url = f"{self.base_url}{CONTROL_PREFIX}/{path}"
        async with self._http().get(url, params=params) as r:
            r.raise_for_status()
            result: JSON = await r.json()
            return result

    async def calls(self, method: str | None = None) -> list[JSON]:
        params = {"method": method} if method else None
        calls: list[JSON] = (await self._get("calls", params))["calls"]
        return calls

    async def calls_since(self, since: int, method: str | None = None) -> tuple[list[JSON], int]:
        """Calls after the first ``since`` of the log (of ``method``), and the ``since`` to
        pass next time: a poller reads each call once."""
        params = {"since": str(since), **({"method": method} if method else {})}
        answer = await self._get("calls", params)
        return answer["calls"], int(answer["next"])

    async def set_latency(self, latency_ms: float) -> None:
        """Answer every later Web API call and response_url post ``latency_ms`` late."""
        await self._post("latency", {"latency_ms": latency_ms})

    async def state(self) -> JSON:
        return await self._get("state")

    async def reset(self) -> None:
        await self._post("reset", {})

    async def issue_trigger_id(self, user_id: str) -> str:
        return str((await self._post("triggers", {"user_id": user_id}))["trigger_id"])

    async def issue_response_url(
        self,
        user_id: str,
        channel_id: str,
        *,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str:
        body = {
            "user_id": user_id,
            "channel_id": channel_id,
            "message_ts": message_ts,
            "is_ephemeral": is_ephemeral,
        }
        return str((await self._post("response_urls", body))["response_url"])

    async def inject_fault(self, method: str, fault: Fault) -> None:
        await self._post("faults", {"method": method, **asdict(fault), "kind": fault.kind.value})

    async def socket_deliver(
        self, envelope_type: str, payload: JSON, *, accepts_response_payload: bool = False
    ) -> JSON:
        """Deliver one Socket Mode envelope to the connected app; its ack (see
        :meth:`SocketModeHub.deliver`)."""
        body = {
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        return await self._post("socket-mode/deliver", body)
