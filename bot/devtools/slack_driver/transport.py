"""How the driver's requests reach the bot: signed and posted to its ``/slack/events``, or
delivered through the emulator's Socket Mode connection; and where trigger_ids and
response_urls come from (the emulator, else made up and leading nowhere)."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any, Self

import aiohttp
from multidict import CIMultiDict

from bot.devtools.slack_driver.payloads import Payloads
from bot.devtools.slack_driver.signing import DEFAULT_RETRY_REASON, Delivery, RequestSigner
from bot.devtools.slack_driver.wire import (
    JSON_CONTENT_TYPE,
    SLACK_USER_AGENT,
    DriverResponse,
    SlackRequest,
    socket_envelope,
)
from bot.devtools.slack_emulator.control import EmulatorControl


class SlackTransport:
    """Sends Slack's requests to ``events_url`` (or, with ``socket_mode``, through the
    emulator at ``emulator_url``) and reports the bot's answers. Close with ``close()`` or use
    ``async with``."""

    def __init__(
        self,
        events_url: str,
        *,
        signing_secret: str,
        payloads: Payloads,
        emulator_url: str | None,
        timeout_s: float,
        clock: Callable[[], float],
        socket_mode: bool,
    ) -> None:
        if socket_mode and emulator_url is None:
            raise ValueError("socket_mode needs emulator_url")
        self.socket_mode = socket_mode
        self.events_url = events_url
        self.payloads = payloads
        self._signing_secret = signing_secret
        self.signer = RequestSigner(signing_secret)
        self._emulator_url = emulator_url
        self._timeout_s = timeout_s
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._control: EmulatorControl | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._control = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    def _emulator(self) -> EmulatorControl | None:
        if self._emulator_url is None:
            return None
        if self._control is None:
            self._control = EmulatorControl(self._emulator_url, session=self._http())
        return self._control

    async def trigger_id(self, user_id: str) -> str:
        """A fresh trigger_id the emulator will accept in views.open for 3 seconds."""
        emulator = self._emulator()
        if emulator is None:
            return f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**9)}.{secrets.token_hex(10)}"
        return await emulator.issue_trigger_id(user_id)

    async def response_url(
        self,
        user_id: str,
        channel_id: str,
        *,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str:
        emulator = self._emulator()
        if emulator is None:
            return f"https://hooks.slack.com/actions/{self.payloads.team_id}/{uuid.uuid4().hex}"
        return await emulator.issue_response_url(
            user_id, channel_id, message_ts=message_ts, is_ephemeral=is_ephemeral
        )

    # --- raw hooks ---
    async def send(
        self, body: bytes, content_type: str, *, delivery: Delivery | None = None
    ) -> DriverResponse:
        """Sign ``body`` per ``delivery`` (default: validly, now) and post it."""
        how = delivery or Delivery()
        timestamp = (
            how.timestamp
            if how.timestamp is not None
            else str(int(self._clock()) + how.timestamp_offset_s)
        )
        headers = {"Content-Type": content_type, "User-Agent": SLACK_USER_AGENT}
        headers.update(
            self.signer.headers(
                body,
                timestamp=timestamp,
                mode=how.signature,
                send_timestamp=not how.no_timestamp,
            )
        )
        if how.retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(how.retry_num)
            headers["X-Slack-Retry-Reason"] = how.retry_reason or DEFAULT_RETRY_REASON
        return await self.post(SlackRequest(body, headers))

    async def replay(self, request: SlackRequest) -> DriverResponse:
        """Resend ``request`` byte for byte: same body, timestamp and signature."""
        return await self.post(request)

    async def redeliver(
        self, request: SlackRequest, *, retry_num: int, retry_reason: str = DEFAULT_RETRY_REASON
    ) -> DriverResponse:
        """Slack's own retry of ``request``: same body, fresh signature, retry headers."""
        delivery = Delivery.retry(retry_num, retry_reason)
        return await self.send(request.body, request.content_type, delivery=delivery)

    async def post(self, request: SlackRequest) -> DriverResponse:
        """Post ``request`` as is and time the answer (or, in Socket Mode, deliver it)."""
        if self.socket_mode:
            return await self._deliver_over_socket(request)
        started = time.perf_counter()
        async with self._http().post(
            self.events_url, data=request.body, headers=dict(request.headers)
        ) as resp:
            text = await resp.text()
            latency_s = time.perf_counter() - started
            body: Any = text
            if resp.content_type == JSON_CONTENT_TYPE and text:
                body = json.loads(text)
            headers = CIMultiDict(resp.headers)
            return DriverResponse(resp.status, headers, body, text, latency_s, request)

    async def _deliver_over_socket(self, request: SlackRequest) -> DriverResponse:
        """The request's payload in its Socket Mode envelope. The answer's status is 200 when
        the bot acked within Slack's 3 s (504 when not); its body is the ack's ``payload``."""
        envelope_type, payload = socket_envelope(request)
        control = self._emulator()
        assert control is not None  # checked in __init__
        started = time.perf_counter()
        answer = await control.socket_deliver(
            envelope_type,
            payload,
            accepts_response_payload=envelope_type == "slash_commands"
            or payload.get("type") == "view_submission",
        )
        latency_s = time.perf_counter() - started
        ack = answer.get("ack") or {}
        body = ack.get("payload") if isinstance(ack, dict) else None
        text = json.dumps(body) if body is not None else ""
        status = 200 if answer.get("acked") else 504
        return DriverResponse(status, CIMultiDict(), body or "", text, latency_s, request)
