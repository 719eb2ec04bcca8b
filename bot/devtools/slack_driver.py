"""Slack's side of the HTTP conversation: requests to a bot's ``/slack/events``, sent as Slack
sends them.

Each request is signed the way Slack signs (``X-Slack-Signature: v0=<HMAC-SHA256 of
"v0:{timestamp}:{body}">`` and ``X-Slack-Request-Timestamp``), with Slack's content types:
slash commands and interactivity are ``application/x-www-form-urlencoded`` (interactivity as one
``payload=<JSON>`` field), Events API callbacks are ``application/json`` ``event_callback``
envelopes. Trigger ids and response_urls come from a ``SlackEmulator`` (by URL), so the bot's
``views.open`` and ``respond()`` land on the emulator just as they would land on Slack.

    async with SlackDriver(events_url, signing_secret=SECRET, emulator_url=emu.base_url) as slack:
        resp = await slack.slash_command("U0ALICE", "request orders-db read 30m INC-42 debugging",
                                         channel_id="C0ACCESS", channel_name="access-requests")
        assert resp.status == 200 and resp.latency_s < 3

``Delivery`` bends a request the way an attacker or a flaky network would: a bad or missing
signature, a stale timestamp, Slack's retry headers; ``replay`` resends a request byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode

import aiohttp
from multidict import CIMultiDict

from bot.devtools.slack_emulator import DEFAULT_TEAM_ID, EmulatorControl

JSON = dict[str, Any]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
# Slack rejects requests whose timestamp is more than five minutes from now (Verifying requests
# from Slack, docs.slack.dev/authentication/verifying-requests-from-slack); this is past that.
STALE_TIMESTAMP_OFFSET_S = -(5 * 60 + 30)
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
DEFAULT_RETRY_REASON = "http_timeout"  # Events API retries: http_timeout, http_error, ...


class SignatureMode(StrEnum):
    VALID = "valid"
    BAD = "bad"  # well formed, made with the wrong secret
    MISSING = "missing"  # no X-Slack-Signature header at all


@dataclass(frozen=True)
class Delivery:
    """How one request travels: its signature, clock skew, and Slack's retry headers.

    ``timestamp`` sends that exact X-Slack-Request-Timestamp value instead of the clock's
    (``"abc"``, ``""``, ``"1e9"``), signed with it when the signature is valid; ``no_timestamp``
    leaves the header out."""

    signature: SignatureMode = SignatureMode.VALID
    timestamp_offset_s: int = 0
    retry_num: int | None = None
    retry_reason: str | None = None
    timestamp: str | None = None
    no_timestamp: bool = False

    @classmethod
    def bad_signature(cls) -> Delivery:
        return cls(signature=SignatureMode.BAD)

    @classmethod
    def unsigned(cls) -> Delivery:
        return cls(signature=SignatureMode.MISSING)

    @classmethod
    def stale(cls) -> Delivery:
        return cls(timestamp_offset_s=STALE_TIMESTAMP_OFFSET_S)

    @classmethod
    def retry(cls, num: int, reason: str = DEFAULT_RETRY_REASON) -> Delivery:
        return cls(retry_num=num, retry_reason=reason)

    @classmethod
    def odd_timestamp(cls, value: str | None, *, signed: bool = True) -> Delivery:
        """X-Slack-Request-Timestamp as ``value`` (None: no such header), signed with it
        (``signed``) or not signed at all."""
        return cls(
            signature=SignatureMode.VALID if signed else SignatureMode.MISSING,
            timestamp=value,
            no_timestamp=value is None,
        )


@dataclass(frozen=True)
class SlackRequest:
    """One request exactly as sent: body bytes and every header (signature included)."""

    body: bytes
    headers: Mapping[str, str]

    @property
    def content_type(self) -> str:
        return self.headers["Content-Type"]


@dataclass(frozen=True)
class DriverResponse:
    """The bot's answer: status, headers, body (parsed when JSON), and how long it took."""

    status: int
    headers: Mapping[str, str]
    body: Any
    text: str
    latency_s: float
    request: SlackRequest

    @property
    def json(self) -> JSON:
        if not isinstance(self.body, dict):
            raise ValueError(f"not a JSON object: {self.text[:200]!r}")
        return self.body


class RequestSigner:
    """Slack's v0 request signature, as slack_sdk's SignatureVerifier checks it."""

    VERSION = "v0"

    def __init__(self, signing_secret: str) -> None:
        if not signing_secret:
            raise ValueError("signing_secret must not be empty")
        self._secret = signing_secret.encode()

    def signature(self, body: bytes, timestamp: str) -> str:
        base = f"{self.VERSION}:{timestamp}:".encode() + body
        return f"{self.VERSION}=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def headers(
        self, body: bytes, *, timestamp: int | str, mode: SignatureMode, send_timestamp: bool = True
    ) -> dict[str, str]:
        ts = str(timestamp)
        headers = {"X-Slack-Request-Timestamp": ts} if send_timestamp else {}
        if mode is SignatureMode.VALID:
            headers["X-Slack-Signature"] = self.signature(body, ts)
        elif mode is SignatureMode.BAD:
            wrong = RequestSigner(secrets.token_hex(16))
            headers["X-Slack-Signature"] = wrong.signature(body, ts)
        return headers


# --- Finding what a click clicked -----------------------------------------------------------
def find_element(blocks: Sequence[Mapping[str, Any]], action_id: str) -> tuple[str, JSON]:
    """The (block_id, element) carrying ``action_id`` in rendered blocks; LookupError if none.

    A block the app sent without a block_id gets one from Slack; here, ``b<index>``.
    """
    for index, block in enumerate(blocks):
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements", []))
        elif block.get("type") == "section" and "accessory" in block:
            candidates = [block["accessory"]]
        elif block.get("type") == "input" and "element" in block:
            candidates = [block["element"]]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id") or f"b{index}"), element
    raise LookupError(f"no element with action_id {action_id!r} in these blocks")


def _action(element: Mapping[str, Any], block_id: str, value: str | None, action_ts: str) -> JSON:
    """The ``actions[0]`` entry Slack sends when ``element`` is used (``value`` is chosen)."""
    kind = str(element.get("type", "button"))
    action: JSON = {"type": kind, "action_id": element["action_id"], "block_id": block_id}
    if kind == "button":
        action["text"] = element.get("text", {"type": "plain_text", "text": element["action_id"]})
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        if "style" in element:
            action["style"] = element["style"]
    elif "options" in element:
        options = [o for o in element["options"] if value is None or o.get("value") == value]
        if not options:
            raise LookupError(f"no option with value {value!r} in {element['action_id']!r}")
        action["selected_option"] = options[0]
        if "placeholder" in element:
            action["placeholder"] = element["placeholder"]
    elif value is not None:
        action["value"] = value
    action["action_ts"] = action_ts
    return action


def plain_text_value(text: str) -> JSON:
    """A ``view.state.values`` entry for a plain_text_input."""
    return {"type": "plain_text_input", "value": text}


def static_select_value(value: str, text: str | None = None) -> JSON:
    """A ``view.state.values`` entry for a static_select."""
    option = {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}
    return {"type": "static_select", "selected_option": option}


# --- Payloads -------------------------------------------------------------------------------
@dataclass
class Payloads:
    """Builds Slack's request bodies. Pure apart from minting ids from ``clock``."""

    team_id: str = DEFAULT_TEAM_ID
    team_domain: str = "grantbot-demo"
    api_app_id: str = "A0GRANTBOT"
    bot_user_id: str = "U0GRANTBOT"
    verification_token: str = "emulator-verification-token"  # noqa: S105 - Slack's legacy field
    clock: Callable[[], float] = time.time
    #: The Enterprise Grid organisation the workspace belongs to (None: not on Grid).
    enterprise_id: str | None = None
    #: The acting person's home workspace (a Slack Connect guest's differs); default team_id.
    actor_team_id: str | None = None
    _seq: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1), init=False, repr=False
    )

    def ts(self) -> str:
        return f"{int(self.clock())}.{next(self._seq):06d}"

    @property
    def actor_team(self) -> str:
        return self.actor_team_id or self.team_id

    def user(self, user_id: str, user_name: str | None) -> JSON:
        name = user_name or user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.actor_team}

    def team(self) -> JSON:
        team: JSON = {"id": self.team_id, "domain": self.team_domain}
        if self.enterprise_id:
            team["enterprise_id"] = self.enterprise_id
        return team

    def enterprise(self) -> JSON | None:
        if not self.enterprise_id:
            return None
        return {"id": self.enterprise_id, "name": f"{self.team_domain}-org"}

    def slash_command(
        self,
        *,
        user_id: str,
        user_name: str | None,
        text: str,
        channel_id: str,
        channel_name: str,
        command: str,
        trigger_id: str,
        response_url: str,
    ) -> bytes:
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        if self.enterprise_id:  # Slack adds these on Enterprise Grid
            fields["enterprise_id"] = self.enterprise_id
            fields["enterprise_name"] = f"{self.team_domain}-org"
        return urlencode(fields).encode()

    def interactive(self, payload: Mapping[str, Any]) -> bytes:
        """Interactivity bodies are a form with a single ``payload`` field holding JSON."""
        return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()

    def interaction_base(
        self, kind: str, user_id: str, user_name: str | None, trigger: str
    ) -> JSON:
        return {
            "type": kind,
            "user": self.user(user_id, user_name),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": trigger,
            "team": self.team(),
            "enterprise": self.enterprise(),
            "is_enterprise_install": False,
        }

    def event_callback(self, event: Mapping[str, Any], *, event_id: str | None = None) -> bytes:
        envelope = {
            "token": self.verification_token,
            "team_id": self.team_id,
            **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
            "context_team_id": self.team_id,
            "context_enterprise_id": self.enterprise_id,
            "api_app_id": self.api_app_id,
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(self.clock()),
            "authorizations": [
                {
                    "enterprise_id": self.enterprise_id,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }
        return json.dumps(envelope).encode()


def socket_envelope(request: SlackRequest) -> tuple[str, JSON]:
    """An HTTP delivery's Socket Mode equivalent: (envelope type, payload). Over Socket Mode
    Slack sends the same fields, as JSON: a slash command's form fields, an interaction's
    ``payload``, an event callback whole."""
    if request.content_type == JSON_CONTENT_TYPE:
        return "events_api", json.loads(request.body)
    fields = dict(parse_qsl(request.body.decode()))
    if "payload" in fields:
        return "interactive", json.loads(fields["payload"])
    return "slash_commands", dict(fields)


# --- The driver -----------------------------------------------------------------------------
class SlackDriver:
    """Sends signed Slack requests to ``events_url`` and reports the bot's answers.

    ``emulator_url`` (an emulator's root, ``emu.base_url``) is where trigger ids and
    response_urls are minted; without it they are made up and lead nowhere. Close with
    ``close()`` or use ``async with``.
    """

    def __init__(
        self,
        events_url: str,
        *,
        signing_secret: str,
        emulator_url: str | None = None,
        team_id: str = DEFAULT_TEAM_ID,
        team_domain: str = "grantbot-demo",
        api_app_id: str = "A0GRANTBOT",
        bot_user_id: str = "U0GRANTBOT",
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        socket_mode: bool = False,
        enterprise_id: str | None = None,
        actor_team_id: str | None = None,
    ) -> None:
        """``socket_mode``: deliver through the emulator's Socket Mode connection to the bot
        (``emulator_url`` required) instead of posting to ``events_url``; the same methods,
        the same payloads, wrapped in Socket Mode envelopes (and unsigned, as there).

        ``team_id`` / ``enterprise_id``: the workspace (and Enterprise Grid organisation) the
        payloads come from; ``actor_team_id``: the acting person's home workspace when it is
        another (a Slack Connect guest). :meth:`from_workspace` makes a sibling driver for
        another workspace."""
        if socket_mode and emulator_url is None:
            raise ValueError("socket_mode needs emulator_url")
        self.socket_mode = socket_mode
        self.events_url = events_url
        self.payloads = Payloads(
            team_id,
            team_domain,
            api_app_id,
            bot_user_id,
            clock=clock,
            enterprise_id=enterprise_id,
            actor_team_id=actor_team_id,
        )
        self._signing_secret = signing_secret
        self.signer = RequestSigner(signing_secret)
        self._emulator_url = emulator_url
        self._timeout_s = timeout_s
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._control: EmulatorControl | None = None

    def from_workspace(
        self,
        *,
        team_id: str,
        enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        team_domain: str = "elsewhere",
    ) -> SlackDriver:
        """A driver like this one (same bot, secret, emulator, mode) whose payloads come from
        workspace ``team_id`` (in organisation ``enterprise_id``), as another installation of
        the same app would send them: validly signed. Close it (or ``async with`` it)."""
        p = self.payloads
        return SlackDriver(
            self.events_url,
            signing_secret=self._signing_secret,
            emulator_url=self._emulator_url,
            team_id=team_id,
            team_domain=team_domain,
            api_app_id=p.api_app_id,
            bot_user_id=p.bot_user_id,
            timeout_s=self._timeout_s,
            clock=self._clock,
            socket_mode=self.socket_mode,
            enterprise_id=enterprise_id,
            actor_team_id=actor_team_id,
        )

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

    # --- what users do ---
    async def slash_command(
        self,
        user_id: str,
        text: str,
        *,
        channel_id: str,
        channel_name: str,
        command: str = "/access",
        user_name: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        body = self.payloads.slash_command(
            user_id=user_id,
            user_name=user_name,
            text=text,
            channel_id=channel_id,
            channel_name=channel_name,
            command=command,
            trigger_id=await self.trigger_id(user_id),
            response_url=await self.response_url(user_id, channel_id),
        )
        return await self.send(body, FORM_CONTENT_TYPE, delivery=delivery)

    async def block_action(
        self,
        user_id: str,
        action_id: str,
        value: str | None = None,
        *,
        message: Mapping[str, Any] | None = None,
        channel_id: str | None = None,
        channel_name: str | None = None,
        is_ephemeral: bool = False,
        view: Mapping[str, Any] | None = None,
        state_values: Mapping[str, Any] | None = None,
        block_id: str | None = None,
        trigger_id: str | None = None,
        user_name: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """A click (or selection) on an element in a ``message`` or a ``view``.

        The element is looked up by ``action_id`` in the container's blocks and sent as Slack
        would send it. ``value`` overrides what the element carries, and an explicit
        ``block_id`` allows an element that is not there: both forge a payload, as an attacker
        could. ``message`` is Slack's message JSON (``Message.as_slack()``), in ``channel_id``.
        """
        if (message is None) == (view is None):
            raise ValueError("a block action comes from exactly one of a message or a view")
        container_blocks = (message or view or {}).get("blocks", [])
        try:
            found_block_id, element = find_element(container_blocks, action_id)
        except LookupError:
            if block_id is None:
                raise
            found_block_id, element = block_id, {"type": "button", "action_id": action_id}
        action = _action(element, block_id or found_block_id, value, self.payloads.ts())
        trigger = trigger_id or await self.trigger_id(user_id)
        payload = self.payloads.interaction_base("block_actions", user_id, user_name, trigger)
        payload["actions"] = [action]
        if view is not None:
            full_view = {**view, "state": {"values": dict(state_values or {})}}
            payload.update(container={"type": "view", "view_id": view.get("id")}, view=full_view)
        else:
            assert message is not None
            payload.update(
                await self._message_container(
                    user_id, message, channel_id, channel_name, is_ephemeral
                )
            )
            payload["state"] = {"values": dict(state_values or {})}
        return await self.send(
            self.payloads.interactive(payload), FORM_CONTENT_TYPE, delivery=delivery
        )

    async def _message_container(
        self,
        user_id: str,
        message: Mapping[str, Any],
        channel_id: str | None,
        channel_name: str | None,
        is_ephemeral: bool,
    ) -> JSON:
        channel = channel_id or message.get("channel")
        if not isinstance(channel, str):
            raise ValueError("a message's block action needs its channel_id")
        ts = str(message["ts"])
        name = channel_name or ("directmessage" if channel.startswith("D") else channel)
        part: JSON = {
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": is_ephemeral,
            },
            "channel": {"id": channel, "name": name},
            "response_url": await self.response_url(
                user_id, channel, message_ts=ts, is_ephemeral=is_ephemeral
            ),
        }
        if not is_ephemeral:  # Slack does not echo an ephemeral message back
            part["message"] = {k: v for k, v in message.items() if k != "channel"}
        return part

    async def view_submission(
        self,
        user_id: str,
        view: Mapping[str, Any],
        *,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        user_name: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """Submit ``view`` (Slack's view JSON, e.g. ``View.as_slack()``) with ``values``:
        ``{block_id: {action_id: plain_text_value("...")}}``, as ``view.state.values``."""
        payload = self.payloads.interaction_base(
            "view_submission", user_id, user_name, await self.trigger_id(user_id)
        )
        state = dict(view.get("state", {}).get("values", {}))
        state.update(values or {})
        payload["view"] = {**view, "state": {"values": state}}
        payload["response_urls"] = []
        return await self.send(
            self.payloads.interactive(payload), FORM_CONTENT_TYPE, delivery=delivery
        )

    async def app_mention(
        self,
        user_id: str,
        text: str,
        *,
        channel: str,
        thread_ts: str | None = None,
        event_id: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """``@grantbot text`` in ``channel``; the mention is added when ``text`` lacks it."""
        mention = f"<@{self.payloads.bot_user_id}>"
        ts = self.payloads.ts()
        event: JSON = {
            "type": "app_mention",
            "user": user_id,
            "text": text if mention in text else f"{mention} {text}",
            "ts": ts,
            "client_msg_id": str(uuid.uuid4()),
            "team": self.payloads.actor_team,
            "channel": channel,
            "event_ts": ts,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if self.payloads.actor_team != self.payloads.team_id:
            event["user_team"] = self.payloads.actor_team  # as Slack sends for a guest
        return await self.send_event(event, event_id=event_id, delivery=delivery)

    async def app_home_opened(
        self,
        user_id: str,
        *,
        view: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """The user opens the App Home tab; ``view`` is the home view they currently have."""
        event: JSON = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": f"D{user_id[1:]}",
            "tab": "home",
            "event_ts": self.payloads.ts(),
        }
        if view is not None:
            event["view"] = dict(view)
        return await self.send_event(event, event_id=event_id, delivery=delivery)

    async def url_verification(self, challenge: str) -> DriverResponse:
        """The handshake Slack sends when the Request URL is saved."""
        body = json.dumps(
            {
                "token": self.payloads.verification_token,
                "challenge": challenge,
                "type": "url_verification",
            }
        ).encode()
        return await self.send(body, JSON_CONTENT_TYPE)

    async def send_event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """Any Events API ``event``, wrapped in its event_callback envelope."""
        body = self.payloads.event_callback(event, event_id=event_id)
        return await self.send(body, JSON_CONTENT_TYPE, delivery=delivery)

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
