"""The fake Slack server: the HTTP edge where Web API calls and response_url posts arrive, are
delayed by Slack's latency, meet any queued fault, are answered by the workspace and recorded;
the control endpoints and the Socket Mode hub are wired onto the same port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from bot.devtools.slack_emulator.chat import respond
from bot.devtools.slack_emulator.control import ControlEndpoints
from bot.devtools.slack_emulator.core import EmulatorCore
from bot.devtools.slack_emulator.directory import (
    DEFAULT_BOT_TOKEN,
    DEFAULT_TEAM_ID,
    Directory,
    FakeChannel,
    FakeUser,
    Identity,
)
from bot.devtools.slack_emulator.faults import FaultKind
from bot.devtools.slack_emulator.methods import WEB_API
from bot.devtools.slack_emulator.model import Call
from bot.devtools.slack_emulator.paths import (
    API_PREFIX,
    APPS_CONNECTIONS_OPEN,
    RESPONSE_URL_METHOD,
    RESPONSE_URL_PATH,
)
from bot.devtools.slack_emulator.wire import Answer, fault_answer, read_api_args
from bot.devtools.slack_emulator.workspace import ApiError, Workspace
from bot.devtools.socket_mode import DEFAULT_APP_TOKEN, SocketModeHub

JSON = dict[str, Any]


class SlackEmulator(EmulatorCore):
    """The fake Slack server: Web API + response_url + control endpoints, with recording.

    ``async with SlackEmulator(...) as emu`` starts it on 127.0.0.1 (``port=0``: any free port);
    point ``AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)`` at it.
    """

    shutdown_timeout_s = 1.0

    def __init__(
        self,
        *,
        users: Sequence[FakeUser] | None = None,
        usergroups: Mapping[str, Sequence[str]] | None = None,
        channels: Sequence[FakeChannel] | None = None,
        bot_token: str = DEFAULT_BOT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        team_id: str = DEFAULT_TEAM_ID,
        team_domain: str = "grantbot-demo",
        enterprise_id: str | None = None,
        bot_user_id: str = "U0GRANTBOT",
        bot_id: str = "B0GRANTBOT",
        app_id: str = "A0GRANTBOT",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        latency_s: float = 0.0,
    ) -> None:
        """``latency_s``: every Web API call and response_url post is answered this long after
        it arrived (Slack's own latency; faults come on top)."""
        directory = Directory.or_demo(users=users, usergroups=usergroups, channels=channels)
        directory.add_user(FakeUser(bot_user_id, "grantbot", "grantbot", "", is_bot=True))
        identity = Identity(
            team_id, team_domain, bot_user_id, bot_id, app_id, enterprise_id=enterprise_id
        )
        super().__init__(
            workspace=Workspace(directory, identity, clock),
            bot_token=bot_token,
            socket_mode=SocketModeHub(app_token=app_token, app_id=app_id),
            clock=clock,
            latency_s=latency_s,
            host=host,
            port=port,
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", API_PREFIX + "{method}", self._handle_api)
        app.router.add_post(RESPONSE_URL_PATH + "{token}", self._handle_response_url)
        ControlEndpoints(self).register(app)
        self.socket_mode.register(app)

    async def closing(self) -> None:
        await self.socket_mode.close()

    # --- HTTP handlers ---
    def _record(self, method: str, args: JSON, answer: Answer, *, received_at: float) -> None:
        self.record(Call(method, args, self._clock(), answer.status, answer.body, received_at))

    async def _latency(self) -> None:
        """Slack's own time to answer (``latency_s``), before any fault."""
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    async def _apply_fault(
        self, method: str, args: JSON, *, received_at: float, record_as: JSON | None = None
    ) -> Answer | None:
        """The answer a queued fault gives this call (None: answer normally). ``record_as``
        is what the call log shows of the arguments (default ``args``)."""
        fault = self.faults.take(method, args)
        if fault is None:
            return None
        match fault.kind:
            case FaultKind.DELAY:
                await asyncio.sleep(fault.delay_s)
                return None
            case FaultKind.TIMEOUT:
                # Recorded now: the client gives up long before the hold ends.
                logged = args if record_as is None else record_as
                self._record(
                    method,
                    logged,
                    Answer({"ok": False, "error": "timeout"}, 0),
                    received_at=received_at,
                )
                await self.hold(fault.delay_s)
                return Answer({"ok": False, "error": "timeout"}, 504, recorded=True)
            case _:
                return fault_answer(fault)

    async def _handle_api(self, request: web.Request) -> web.Response:
        received_at = self._clock()
        method = request.match_info["method"]
        args, token = await read_api_args(request)
        await self._latency()
        answer = await self._apply_fault(method, args, received_at=received_at) or self._answer_api(
            method, args, token
        )
        if not answer.recorded:
            self._record(method, args, answer, received_at=received_at)
        return answer.to_response(request)

    def _answer_api(self, method: str, args: JSON, token: str | None) -> Answer:
        if method == APPS_CONNECTIONS_OPEN:  # the one method that takes the app-level token
            body, status = self.socket_mode.open_connection(token=token, base_url=self.base_url)
            return Answer(body, status)
        handler = WEB_API.get(method)
        try:
            if handler is None:
                raise ApiError("unknown_method", req_method=method)
            if not token:
                raise ApiError("not_authed")
            if token != self.bot_token:
                raise ApiError("invalid_auth")
            return Answer(handler(self.workspace, args))
        except ApiError as e:
            return Answer(e.body(), e.status)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        received_at = self._clock()
        token = request.match_info["token"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        args: JSON = body if isinstance(body, dict) else {}
        recorded_args = {**args, "response_url_token": token}
        await self._latency()
        answer = await self._apply_fault(
            RESPONSE_URL_METHOD, args, record_as=recorded_args, received_at=received_at
        )
        if answer is None:
            try:
                answer = (
                    Answer(respond(self.workspace, token, args))
                    if isinstance(body, dict)
                    else Answer({"ok": False, "error": "invalid_payload"}, 400)
                )
            except ApiError as e:
                answer = Answer(e.body(), e.status)
        if not answer.recorded:
            self._record(RESPONSE_URL_METHOD, recorded_args, answer, received_at=received_at)
        return answer.to_response(request)
