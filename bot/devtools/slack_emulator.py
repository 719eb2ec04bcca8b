"""A fake Slack, faked only at the wire and in Slack's own formats.

One emulator serves the integration tests and ``grantbot demo``. It is an aiohttp server on
127.0.0.1 that answers the Web API methods grantbot calls (``/api/<method>``) and the
``response_url`` posts a bot makes, enforces Slack's Block Kit limits with Slack's error codes,
injects faults (429 + Retry-After, 5xx, slow answers) and records every call, so a test can read
back exactly what the bot did.

In process::

    async with SlackEmulator() as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        ...
        call = await emu.wait_for("chat.postMessage")

Standalone, ``python -m bot.devtools.slack_emulator --port 0`` prints
``SLACK_API_URL=http://127.0.0.1:PORT/api/`` and serves control endpoints under
``/_emulator/`` (calls, state, reset, triggers, response_urls, faults, latency);
``EmulatorControl`` is their client, used by the driver and by tests whose bot runs in another
process. ``--latency-ms 150`` answers every Web API call and response_url post 150 ms late, as
Slack typically does (``latency_s`` in process, ``/_emulator/latency`` over HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import itertools
import json
import secrets
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import aiohttp
from aiohttp import web

from bot.devtools.socket_mode import DEFAULT_APP_TOKEN, NoConnection, SocketModeHub

JSON = dict[str, Any]
T = TypeVar("T")

# --- Slack's limits -------------------------------------------------------------------------
# Block Kit, from docs.slack.dev/reference/block-kit/ (the page named on each line).
MAX_MESSAGE_BLOCKS = 50  # "Blocks": up to 50 blocks in each message
MAX_VIEW_BLOCKS = 100  # "Blocks": up to 100 blocks in modals or Home tabs
MAX_BLOCK_ID_CHARS = 255  # "Blocks": block_id, maximum length 255 characters
MAX_SECTION_TEXT_CHARS = 3000  # "Section block": text, maximum length 3000 characters
MAX_SECTION_FIELDS = 10  # "Section block": fields, maximum number of items is 10
MAX_SECTION_FIELD_TEXT_CHARS = 2000  # "Section block": each field's text, maximum 2000 characters
MAX_HEADER_TEXT_CHARS = 150  # "Header block": text, maximum length 150 characters
MAX_ACTIONS_ELEMENTS = 25  # "Actions block": elements, maximum of 25 elements
MAX_CONTEXT_ELEMENTS = 10  # "Context block": elements, maximum number of items is 10
MAX_INPUT_LABEL_CHARS = 2000  # "Input block": label, maximum length 2000 characters
MAX_ACTION_ID_CHARS = 255  # "Block elements": action_id, maximum length 255 characters
MAX_BUTTON_TEXT_CHARS = 75  # "Button element": text, maximum length 75 characters
MAX_BUTTON_VALUE_CHARS = 2000  # "Button element": value, maximum length 2000 characters
MAX_BUTTON_URL_CHARS = 3000  # "Button element": url, maximum length 3000 characters
MAX_SELECT_OPTIONS = 100  # "Select menu element": options, maximum number of options is 100
MAX_MODAL_TITLE_CHARS = 24  # "View object" (modal): title, maximum length 24 characters
MAX_MODAL_BUTTON_TEXT_CHARS = 24  # "View object" (modal): submit / close, maximum 24 characters
MAX_PRIVATE_METADATA_CHARS = 3000  # "View object": private_metadata, maximum 3000 characters
MAX_CALLBACK_ID_CHARS = 255  # "View object": callback_id, maximum length 255 characters
# Web API, from docs.slack.dev/reference/methods/chat.postMessage: "we'll truncate messages
# containing more than 40,000 characters"; chat.postMessage / chat.update list msg_too_long.
MAX_MESSAGE_TEXT_CHARS = 40_000
# Interactivity, from docs.slack.dev/interactivity/handling-user-interaction: a trigger_id
# expires 3 seconds after it was sent; a response_url works up to 5 times within 30 minutes.
TRIGGER_ID_TTL_S = 3.0
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_S = 30 * 60.0
#: The most latency the control endpoint accepts: past Slack's 10 s client timeouts already.
MAX_LATENCY_MS = 60_000.0

DEFAULT_BOT_TOKEN = "xoxb-0001-grantbot-emulator"  # noqa: S105 - a fake token for a fake Slack
DEFAULT_TEAM_ID = "T0001"

# Control endpoints (also used by EmulatorControl); Slack's own paths live under /api/.
API_PREFIX = "/api/"
CONTROL_PREFIX = "/_emulator"
RESPONSE_URL_PATH = f"{CONTROL_PREFIX}/response/"
RESPONSE_URL_METHOD = "response_url"  # the `method` of a recorded response_url post
APPS_CONNECTIONS_OPEN = "apps.connections.open"

_TEXT_TYPES = ("plain_text", "mrkdwn")
_KNOWN_BLOCK_TYPES = frozenset(
    {
        "section",
        "header",
        "actions",
        "context",
        "input",
        "divider",
        "image",
        "rich_text",
        "file",
        "video",
        "markdown",
    }
)
_SELECT_TYPES = frozenset(
    {"static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"}
)
# Web API arguments that arrive as JSON-encoded strings in form bodies.
_JSON_ARGS = ("blocks", "attachments", "view", "metadata")


# --- The workspace directory ----------------------------------------------------------------
@dataclass(frozen=True)
class FakeUser:
    """A workspace member as users.info describes one."""

    id: str
    name: str
    real_name: str
    email: str
    tz: str = "Etc/UTC"
    tz_offset_s: int = 0
    is_bot: bool = False
    deleted: bool = False

    def as_slack(self, team_id: str) -> JSON:
        profile = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "email": self.email,
            "team": team_id,
        }
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": self.tz_offset_s,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }


@dataclass(frozen=True)
class FakeChannel:
    """A public or private channel as conversations.info describes one."""

    id: str
    name: str
    topic: str = ""
    purpose: str = ""
    is_private: bool = False

    def as_slack(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_member": True,
            "created": 1_700_000_000,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
        }


DEMO_USERS: tuple[FakeUser, ...] = (
    FakeUser("U0ALICE", "alice", "Alice Requester", "alice@example.com", "Europe/London"),
    FakeUser("U0BOB", "bob", "Bob Approver", "bob@example.com", "America/New_York", -18000),
    FakeUser("U0CAROL", "carol", "Carol Oncall", "carol@example.com", "Asia/Tokyo", 32400),
    FakeUser("U0DAVE", "dave", "Dave Departed", "dave@example.com", deleted=True),
)
DEMO_USERGROUPS: Mapping[str, Sequence[str]] = {
    "S0APPROVERS": ("U0BOB", "U0CAROL"),
    "S0ONCALL": ("U0CAROL",),
}
DEMO_CHANNELS: tuple[FakeChannel, ...] = (
    FakeChannel("C0ACCESS", "access-requests", purpose="Just-in-time access requests"),
    FakeChannel("C0GENERAL", "general"),
    FakeChannel("C0INC42", "inc-42-orders-db", topic="INC-42: orders-db latency"),
)


class Directory:
    """Who and what exists in the fake workspace: users, usergroups, channels, DMs."""

    def __init__(
        self,
        *,
        users: Sequence[FakeUser],
        usergroups: Mapping[str, Sequence[str]],
        channels: Sequence[FakeChannel],
    ) -> None:
        self.users = {u.id: u for u in users}
        self.usergroups = {k: tuple(v) for k, v in usergroups.items()}
        self.channels = {c.id: c for c in channels}

    def add_user(self, user: FakeUser) -> None:
        self.users[user.id] = user

    def add_channel(self, channel: FakeChannel) -> None:
        self.channels[channel.id] = channel

    def user_by_email(self, email: str) -> FakeUser | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u.email.lower() == wanted), None)

    @staticmethod
    def dm_channel_id(user_id: str) -> str:
        """The IM channel id Slack would keep for this user: stable, D + the user id's tail."""
        return f"D{user_id[1:]}"

    def dm_user(self, channel_id: str) -> str | None:
        if not channel_id.startswith("D"):
            return None
        return next((u for u in self.users if self.dm_channel_id(u) == channel_id), None)

    def resolve_channel(self, ref: str) -> str | None:
        """A channel id for what chat.postMessage accepts: an id, a #name, a DM or a user id."""
        if ref in self.channels or self.dm_user(ref) is not None:
            return ref
        if ref in self.users:
            return self.dm_channel_id(ref)
        name = ref.removeprefix("#")
        return next((c.id for c in self.channels.values() if c.name == name), None)


@dataclass(frozen=True)
class Identity:
    """Who the bot is in the fake workspace."""

    team_id: str
    team_domain: str
    bot_user_id: str
    bot_id: str
    app_id: str
    bot_name: str = "grantbot"


# --- What the emulator keeps ----------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One request the emulator answered: a Web API method or a response_url post. ``at`` is
    when it was answered, ``received_at`` when it arrived (they differ by any latency)."""

    method: str
    args: JSON
    at: float
    status: int
    response: JSON
    received_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return error if isinstance(error, str) else None

    def as_json(self) -> JSON:
        return asdict(self)


@dataclass(frozen=True)
class MessageVersion:
    """What a message said before an update replaced it."""

    text: str
    blocks: list[JSON]
    replaced_at: float
    replaced_by: str


@dataclass
class Message:
    """A message in a channel, as the bot posted it and as later updates left it."""

    channel: str
    ts: str
    text: str
    blocks: list[JSON]
    user: str
    thread_ts: str | None = None
    metadata: JSON | None = None
    deleted: bool = False
    history: list[MessageVersion] = field(default_factory=list)

    def replace(self, *, text: str, blocks: list[JSON], at: float, by: str) -> None:
        self.history.append(MessageVersion(self.text, self.blocks, at, by))
        self.text, self.blocks = text, blocks

    def as_slack(self) -> JSON:
        """The message object Slack hands back (and puts in block_actions payloads)."""
        out: JSON = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts}
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.history:
            out["edited"] = {"user": self.user, "ts": self.ts}
        return out

    def as_json(self) -> JSON:
        return {
            **self.as_slack(),
            "channel": self.channel,
            "deleted": self.deleted,
            "history": [asdict(v) for v in self.history],
        }


@dataclass
class Ephemeral:
    """A message only ``user`` sees: chat.postEphemeral or an ephemeral response_url post."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[JSON]
    via: str
    thread_ts: str | None = None
    deleted: bool = False
    history: list[MessageVersion] = field(default_factory=list)

    def as_slack(self) -> JSON:
        out: JSON = {"type": "message", "text": self.text, "ts": self.ts}
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        return out

    def as_json(self) -> JSON:
        return {
            **self.as_slack(),
            "channel": self.channel,
            "user": self.user,
            "via": self.via,
            "deleted": self.deleted,
            "history": [asdict(v) for v in self.history],
        }


@dataclass
class View:
    """A modal (views.open / views.update) or an App Home (views.publish) the bot showed."""

    id: str
    user: str
    view: JSON
    hash: str
    identity: Identity
    external_id: str = ""
    history: list[JSON] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str(self.view.get("type", ""))

    def replace(self, view: JSON, new_hash: str) -> None:
        """An update: the old view goes to history; the external_id stays unless a new one came."""
        self.history.append(self.view)
        self.view, self.hash = view, new_hash
        if view.get("external_id"):
            self.external_id = str(view["external_id"])

    def as_slack(self) -> JSON:
        """The view object Slack returns, and sends in block_actions / view_submission."""
        v, ident = self.view, self.identity
        return {
            "id": self.id,
            "team_id": ident.team_id,
            "type": v.get("type"),
            "title": v.get("title"),
            "submit": v.get("submit"),
            "close": v.get("close"),
            "blocks": copy.deepcopy(v.get("blocks", [])),
            "private_metadata": v.get("private_metadata", ""),
            "callback_id": v.get("callback_id", ""),
            "external_id": self.external_id,
            "state": {"values": {}},
            "hash": self.hash,
            "clear_on_close": bool(v.get("clear_on_close", False)),
            "notify_on_close": bool(v.get("notify_on_close", False)),
            "previous_view_id": None,
            "root_view_id": self.id,
            "app_id": ident.app_id,
            "app_installed_team_id": ident.team_id,
            "bot_id": ident.bot_id,
        }


@dataclass
class ResponseUrl:
    """A response_url the driver handed out, and what it points at."""

    token: str
    user: str
    channel: str
    issued_at: float
    message_ts: str | None = None
    is_ephemeral: bool = False
    uses: int = 0


@dataclass
class Trigger:
    """A trigger_id the driver handed out in an interaction payload."""

    id: str
    user: str
    issued_at: float
    exchanged: bool = False


# --- Block Kit validation -------------------------------------------------------------------
def _too_long(limit: int, pointer: str) -> str:
    return f"must be less than {limit + 1} characters [json-pointer:{pointer}]"


class BlockKitValidator:
    """Checks Block Kit JSON against Slack's limits; each problem is worded as Slack words it."""

    def message_blocks(self, blocks: object) -> list[str]:
        if blocks is None:
            return []
        return self._blocks(blocks, "/blocks", MAX_MESSAGE_BLOCKS)

    def view(self, view: object, *, expected_type: str | None = None) -> list[str]:
        ptr = "/view"
        if not isinstance(view, dict):
            return [f"must be an object [json-pointer:{ptr}]"]
        problems: list[str] = []
        kind = view.get("type")
        allowed = (expected_type,) if expected_type else ("modal", "home")
        if kind not in allowed:
            problems.append(f"must be one of: {', '.join(allowed)} [json-pointer:{ptr}/type]")
        if kind == "modal":
            if "title" not in view:
                problems.append(f"missing required field: title [json-pointer:{ptr}]")
            else:
                problems += self._text(view["title"], f"{ptr}/title", MAX_MODAL_TITLE_CHARS, True)
            for key in ("submit", "close"):
                if view.get(key) is not None:
                    problems += self._text(
                        view[key], f"{ptr}/{key}", MAX_MODAL_BUTTON_TEXT_CHARS, True
                    )
        problems += self._max_len(
            view.get("private_metadata"), f"{ptr}/private_metadata", MAX_PRIVATE_METADATA_CHARS
        )
        problems += self._max_len(
            view.get("callback_id"), f"{ptr}/callback_id", MAX_CALLBACK_ID_CHARS
        )
        if "blocks" not in view:
            problems.append(f"missing required field: blocks [json-pointer:{ptr}]")
        else:
            problems += self._blocks(view["blocks"], f"{ptr}/blocks", MAX_VIEW_BLOCKS)
        return problems

    def _blocks(self, blocks: object, ptr: str, max_blocks: int) -> list[str]:
        if not isinstance(blocks, list):
            return [f"must be an array [json-pointer:{ptr}]"]
        if len(blocks) > max_blocks:
            return [f"no more than {max_blocks} items allowed [json-pointer:{ptr}]"]
        problems: list[str] = []
        for i, block in enumerate(blocks):
            problems += self._block(block, f"{ptr}/{i}")
        return problems

    def _block(self, block: object, ptr: str) -> list[str]:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return [f"missing required field: type [json-pointer:{ptr}]"]
        kind = block["type"]
        if kind not in _KNOWN_BLOCK_TYPES:
            return [f"unsupported type: {kind} [json-pointer:{ptr}/type]"]
        problems = self._max_len(block.get("block_id"), f"{ptr}/block_id", MAX_BLOCK_ID_CHARS)
        if kind == "section":
            problems += self._section(block, ptr)
        elif kind == "header":
            problems += self._text(block.get("text"), f"{ptr}/text", MAX_HEADER_TEXT_CHARS, True)
        elif kind == "actions":
            problems += self._elements(
                block.get("elements"), f"{ptr}/elements", MAX_ACTIONS_ELEMENTS, interactive=True
            )
        elif kind == "context":
            problems += self._elements(
                block.get("elements"), f"{ptr}/elements", MAX_CONTEXT_ELEMENTS, interactive=False
            )
        elif kind == "input":
            problems += self._text(block.get("label"), f"{ptr}/label", MAX_INPUT_LABEL_CHARS, True)
            problems += self._element(block.get("element"), f"{ptr}/element")
        return problems

    def _section(self, block: JSON, ptr: str) -> list[str]:
        if "text" not in block and "fields" not in block:
            return [f"missing required field: text [json-pointer:{ptr}]"]
        problems: list[str] = []
        if "text" in block:
            problems += self._text(block["text"], f"{ptr}/text", MAX_SECTION_TEXT_CHARS)
        fields = block.get("fields")
        if fields is not None:
            if not isinstance(fields, list):
                return [*problems, f"must be an array [json-pointer:{ptr}/fields]"]
            if len(fields) > MAX_SECTION_FIELDS:
                problems.append(
                    f"no more than {MAX_SECTION_FIELDS} items allowed [json-pointer:{ptr}/fields]"
                )
            for i, f in enumerate(fields):
                problems += self._text(f, f"{ptr}/fields/{i}", MAX_SECTION_FIELD_TEXT_CHARS)
        if "accessory" in block:
            problems += self._element(block["accessory"], f"{ptr}/accessory")
        return problems

    def _elements(self, elements: object, ptr: str, limit: int, *, interactive: bool) -> list[str]:
        if not isinstance(elements, list):
            return [f"must be an array [json-pointer:{ptr}]"]
        if len(elements) > limit:
            return [f"no more than {limit} items allowed [json-pointer:{ptr}]"]
        if not interactive:
            return []
        problems: list[str] = []
        for i, element in enumerate(elements):
            problems += self._element(element, f"{ptr}/{i}")
        return problems

    def _element(self, element: object, ptr: str) -> list[str]:
        if not isinstance(element, dict) or not isinstance(element.get("type"), str):
            return [f"missing required field: type [json-pointer:{ptr}]"]
        problems = self._max_len(element.get("action_id"), f"{ptr}/action_id", MAX_ACTION_ID_CHARS)
        if element["type"] == "button":
            problems += self._text(element.get("text"), f"{ptr}/text", MAX_BUTTON_TEXT_CHARS, True)
            problems += self._max_len(element.get("value"), f"{ptr}/value", MAX_BUTTON_VALUE_CHARS)
            problems += self._max_len(element.get("url"), f"{ptr}/url", MAX_BUTTON_URL_CHARS)
        elif element["type"] in _SELECT_TYPES:
            options = element.get("options")
            if isinstance(options, list) and len(options) > MAX_SELECT_OPTIONS:
                problems.append(
                    f"no more than {MAX_SELECT_OPTIONS} items allowed [json-pointer:{ptr}/options]"
                )
        return problems

    def _text(self, obj: object, ptr: str, limit: int, plain_only: bool = False) -> list[str]:
        allowed = ("plain_text",) if plain_only else _TEXT_TYPES
        if not isinstance(obj, dict):
            return [f"missing required field: text [json-pointer:{ptr}]"]
        if obj.get("type") not in allowed:
            return [f"must be one of: {', '.join(allowed)} [json-pointer:{ptr}/type]"]
        text = obj.get("text")
        if not isinstance(text, str):
            return [f"must be a string [json-pointer:{ptr}/text]"]
        if not text:
            return [f"must be more than 0 characters [json-pointer:{ptr}/text]"]
        return self._max_len(text, f"{ptr}/text", limit)

    @staticmethod
    def _max_len(value: object, ptr: str, limit: int) -> list[str]:
        if isinstance(value, str) and len(value) > limit:
            return [_too_long(limit, ptr)]
        return []


# --- Faults ---------------------------------------------------------------------------------
class FaultKind(StrEnum):
    RATELIMITED = "ratelimited"
    SERVER_ERROR = "server_error"
    DELAY = "delay"


@dataclass
class Fault:
    """One queued misbehaviour for one method, applied to its next ``times`` calls."""

    kind: FaultKind
    times: int = 1
    retry_after_s: int = 1
    status: int = 500
    delay_s: float = 0.0


class FaultInjector:
    """Queues faults per method; each call to that method consumes one use of the first fault."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def ratelimit(self, method: str, *, times: int = 1, retry_after_s: int = 1) -> None:
        """The next ``times`` calls answer HTTP 429 ``ratelimited`` with ``Retry-After``."""
        self.add(method, Fault(FaultKind.RATELIMITED, times=times, retry_after_s=retry_after_s))

    def server_error(self, method: str, *, times: int = 1, status: int = 500) -> None:
        """The next ``times`` calls answer HTTP ``status`` (500, 503...) and change nothing."""
        self.add(method, Fault(FaultKind.SERVER_ERROR, times=times, status=status))

    def delay(self, method: str, *, delay_s: float, times: int = 1) -> None:
        """The next ``times`` calls are answered normally, after ``delay_s``."""
        self.add(method, Fault(FaultKind.DELAY, times=times, delay_s=delay_s))

    def add(self, method: str, fault: Fault) -> None:
        if fault.times < 1:
            raise ValueError("a fault applies to at least one call")
        self._queues.setdefault(method, deque()).append(fault)

    def take(self, method: str) -> Fault | None:
        queue = self._queues.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times == 0:
            queue.popleft()
        return fault

    def clear(self) -> None:
        self._queues.clear()


# --- Ids and timestamps ---------------------------------------------------------------------
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


# --- The Web API ----------------------------------------------------------------------------
class _ApiError(Exception):
    """An ``{"ok": false, "error": ...}`` answer; extra fields ride along in ``extra``."""

    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.status, self.extra = error, status, extra

    def body(self) -> JSON:
        return {"ok": False, "error": self.error, **self.extra}


def _invalid_blocks(problems: list[str]) -> _ApiError:
    """Slack's shape for rejected message blocks."""
    return _ApiError(
        "invalid_blocks",
        errors=problems,
        response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
    )


def _invalid_view(problems: list[str]) -> _ApiError:
    """Slack's shape for a rejected view: views.* answer invalid_arguments, not invalid_blocks."""
    return _ApiError(
        "invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]}
    )


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def _str_arg(args: JSON, name: str) -> str:
    value = args.get(name)
    return value if isinstance(value, str) else ""


class Workspace:
    """Slack's state and the Web API methods over it. Pure of HTTP: args in, JSON out."""

    def __init__(
        self, directory: Directory, identity: Identity, clock: Callable[[], float]
    ) -> None:
        self.directory = directory
        self.identity = identity
        self._clock = clock
        self._validator = BlockKitValidator()
        self.ids = SlackIds(clock)
        self.messages: dict[str, list[Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.home_views: dict[str, View] = {}
        self.open_dms: set[str] = set()
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.methods: dict[str, Callable[[JSON], JSON]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.update": self.chat_update,
            "views.open": self.views_open,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
            "conversations.open": self.conversations_open,
            "conversations.info": self.conversations_info,
            "users.info": self.users_info,
            "users.lookupByEmail": self.users_lookup_by_email,
            "usergroups.users.list": self.usergroups_users_list,
        }

    def reset(self) -> None:
        self.messages.clear()
        self.ephemerals.clear()
        self.views.clear()
        self.home_views.clear()
        self.open_dms.clear()
        self.triggers.clear()
        self.response_urls.clear()

    # Issued by the driver, on Slack's side of an interaction.
    def issue_trigger(self, user: str) -> Trigger:
        trigger = Trigger(self.ids.trigger_id(), user, self._clock())
        self.triggers[trigger.id] = trigger
        return trigger

    def issue_response_url(
        self, user: str, channel: str, *, message_ts: str | None, is_ephemeral: bool
    ) -> ResponseUrl:
        token = self.ids.response_token()
        url = ResponseUrl(token, user, channel, self._clock(), message_ts, is_ephemeral)
        self.response_urls[token] = url
        return url

    # Checks shared by the message methods.
    def _message_content(self, args: JSON, *, required: bool = True) -> tuple[str, list[JSON]]:
        text = _str_arg(args, "text")
        blocks = args.get("blocks")
        if blocks is not None and not isinstance(blocks, list):
            raise _ApiError("invalid_blocks_format")
        if required and not text and not blocks:
            raise _ApiError("no_text")
        if len(text) > MAX_MESSAGE_TEXT_CHARS:
            raise _ApiError("msg_too_long")
        problems = self._validator.message_blocks(blocks)
        if problems:
            raise _invalid_blocks(problems)
        return text, list(blocks or [])

    def _channel(self, args: JSON) -> str:
        channel = self.directory.resolve_channel(_str_arg(args, "channel"))
        if channel is None:
            raise _ApiError("channel_not_found")
        user = self.directory.dm_user(channel)
        if user is not None:
            self.open_dms.add(user)
        return channel

    def find_message(self, channel: str, ts: str) -> Message | None:
        found = (m for m in self.messages.get(channel, []) if m.ts == ts and not m.deleted)
        return next(found, None)

    def post(self, channel: str, text: str, blocks: list[JSON], thread_ts: str | None) -> Message:
        message = Message(
            channel, self.ids.ts(), text, blocks, self.identity.bot_user_id, thread_ts or None
        )
        self.messages.setdefault(channel, []).append(message)
        return message

    def _message_echo(self, message: Message) -> JSON:
        ident = self.identity
        bot_profile = {
            "id": ident.bot_id,
            "app_id": ident.app_id,
            "name": ident.bot_name,
            "deleted": False,
            "team_id": ident.team_id,
        }
        return {
            **message.as_slack(),
            "bot_id": ident.bot_id,
            "app_id": ident.app_id,
            "team": ident.team_id,
            "bot_profile": bot_profile,
        }

    # --- methods ---
    def auth_test(self, args: JSON) -> JSON:
        ident = self.identity
        return {
            "ok": True,
            "url": f"https://{ident.team_domain}.slack.com/",
            "team": ident.team_domain,
            "user": ident.bot_name,
            "team_id": ident.team_id,
            "user_id": ident.bot_user_id,
            "bot_id": ident.bot_id,
            "is_enterprise_install": False,
        }

    def chat_post_message(self, args: JSON) -> JSON:
        channel = self._channel(args)
        text, blocks = self._message_content(args)
        message = self.post(channel, text, blocks, _str_arg(args, "thread_ts"))
        if isinstance(args.get("metadata"), dict):
            message.metadata = args["metadata"]
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "message": self._message_echo(message),
        }

    def chat_post_ephemeral(self, args: JSON) -> JSON:
        channel = self._channel(args)
        user = _str_arg(args, "user")
        if user not in self.directory.users:
            raise _ApiError("user_not_in_channel")
        text, blocks = self._message_content(args)
        ephemeral = Ephemeral(
            channel,
            user,
            self.ids.ts(),
            text,
            blocks,
            "chat.postEphemeral",
            _str_arg(args, "thread_ts") or None,
        )
        self.ephemerals.append(ephemeral)
        return {"ok": True, "message_ts": ephemeral.ts}

    def chat_update(self, args: JSON) -> JSON:
        channel = self._channel(args)
        message = self.find_message(channel, _str_arg(args, "ts"))
        if message is None:
            raise _ApiError("message_not_found")
        text, blocks = self._message_content(args)
        # Like attachments and metadata, blocks left out of an update are kept.
        new_blocks = blocks if "blocks" in args else message.blocks
        message.replace(text=text, blocks=new_blocks, at=self._clock(), by="chat.update")
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_echo(message),
        }

    def _checked_view(self, args: JSON, expected_type: str | None = None) -> JSON:
        view = args.get("view")
        problems = self._validator.view(view, expected_type=expected_type)
        if problems:
            raise _invalid_view(problems)
        assert isinstance(view, dict)
        return view

    def _exchange_trigger(self, trigger_id: str) -> Trigger:
        trigger = self.triggers.get(trigger_id)
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if trigger.exchanged:
            raise _ApiError("exchanged_trigger_id")
        if self._clock() - trigger.issued_at > TRIGGER_ID_TTL_S:
            raise _ApiError("expired_trigger_id")
        return trigger

    def views_open(self, args: JSON) -> JSON:
        trigger = self._exchange_trigger(_str_arg(args, "trigger_id"))
        view = self._checked_view(args, "modal")
        if view.get("external_id") and self._view_by_external_id(str(view["external_id"])):
            raise _ApiError("duplicate_external_id")
        trigger.exchanged = True
        opened = self._new_view(trigger.user, view)
        self.views[opened.id] = opened
        return {"ok": True, "view": opened.as_slack()}

    def _new_view(self, user: str, view: JSON) -> View:
        external_id = str(view.get("external_id", ""))
        return View(
            self.ids.view_id(), user, view, self.ids.view_hash(), self.identity, external_id
        )

    def _view_by_external_id(self, external_id: str) -> View | None:
        return next((v for v in self.views.values() if v.external_id == external_id), None)

    def views_update(self, args: JSON) -> JSON:
        view_id, external_id = _str_arg(args, "view_id"), _str_arg(args, "external_id")
        found = self.views.get(view_id) if view_id else self._view_by_external_id(external_id)
        if found is None:
            raise _ApiError("not_found")
        if args.get("hash") and args["hash"] != found.hash:
            raise _ApiError("hash_conflict")
        found.replace(self._checked_view(args, "modal"), self.ids.view_hash())
        return {"ok": True, "view": found.as_slack()}

    def views_publish(self, args: JSON) -> JSON:
        user = _str_arg(args, "user_id")
        if user not in self.directory.users:
            raise _ApiError("user_not_found")
        view = self._checked_view(args, "home")
        current = self.home_views.get(user)
        if current is not None and args.get("hash") and args["hash"] != current.hash:
            raise _ApiError("hash_conflict")
        if current is None:
            current = self.home_views[user] = self._new_view(user, view)
        else:
            current.replace(view, self.ids.view_hash())
        return {"ok": True, "view": current.as_slack()}

    def conversations_open(self, args: JSON) -> JSON:
        raw = args.get("users", "")
        users = raw if isinstance(raw, list) else [u for u in str(raw).split(",") if u]
        if not users:
            raise _ApiError("users_list_not_supplied")
        unknown = [u for u in users if u not in self.directory.users]
        if unknown:
            raise _ApiError("user_not_found")
        if len(users) > 1:
            group = "G" + "".join(sorted(u[1:] for u in users))[:20]
            return {"ok": True, "channel": {"id": group}}
        user = users[0]
        channel = {"id": self.directory.dm_channel_id(user)}
        if user in self.open_dms:
            return {"ok": True, "no_op": True, "already_open": True, "channel": channel}
        self.open_dms.add(user)
        return {"ok": True, "channel": channel}

    def conversations_info(self, args: JSON) -> JSON:
        channel_id = _str_arg(args, "channel")
        channel = self.directory.channels.get(channel_id)
        if channel is not None:
            return {"ok": True, "channel": channel.as_slack()}
        user = self.directory.dm_user(channel_id)
        if user is not None:
            return {
                "ok": True,
                "channel": {
                    "id": channel_id,
                    "is_im": True,
                    "user": user,
                    "is_open": user in self.open_dms,
                },
            }
        raise _ApiError("channel_not_found")

    def users_info(self, args: JSON) -> JSON:
        user = self.directory.users.get(_str_arg(args, "user"))
        if user is None:
            raise _ApiError("user_not_found")
        return {"ok": True, "user": user.as_slack(self.identity.team_id)}

    def users_lookup_by_email(self, args: JSON) -> JSON:
        user = self.directory.user_by_email(_str_arg(args, "email"))
        # Deactivated accounts are not found by email.
        if user is None or user.deleted:
            raise _ApiError("users_not_found")
        return {"ok": True, "user": user.as_slack(self.identity.team_id)}

    def usergroups_users_list(self, args: JSON) -> JSON:
        users = self.directory.usergroups.get(_str_arg(args, "usergroup"))
        if users is None:
            raise _ApiError("no_such_subteam")
        return {"ok": True, "users": list(users)}

    # --- response_url ---
    def respond(self, token: str, body: JSON) -> JSON:
        """A post to a response_url: a new (ephemeral or in-channel) message, or an edit."""
        url = self.response_urls.get(token)
        now = self._clock()
        if url is None:
            raise _ApiError("invalid_token", status=404)
        if url.uses >= RESPONSE_URL_MAX_USES or now - url.issued_at > RESPONSE_URL_TTL_S:
            raise _ApiError("expired_url", status=404)
        delete = _truthy(body.get("delete_original"))
        try:
            text, blocks = self._message_content(body, required=not delete)
        except _ApiError as e:
            e.status = 400
            raise
        url.uses += 1
        if delete or _truthy(body.get("replace_original")):
            self._edit_original(url, text, blocks, delete=delete)
        elif body.get("response_type") == "in_channel":
            self.post(url.channel, text, blocks, _str_arg(body, "thread_ts"))
        else:
            self.ephemerals.append(
                Ephemeral(url.channel, url.user, self.ids.ts(), text, blocks, RESPONSE_URL_METHOD)
            )
        return {"ok": True}

    def _edit_original(
        self, url: ResponseUrl, text: str, blocks: list[JSON], *, delete: bool
    ) -> None:
        original: Message | Ephemeral | None
        if url.is_ephemeral:
            found = (e for e in self.ephemerals if e.ts == url.message_ts and not e.deleted)
            original = next(found, None)
        else:
            original = self.find_message(url.channel, url.message_ts or "")
        if original is None:
            raise _ApiError("message_not_found", status=404)
        if delete:
            original.deleted = True
        else:
            original.history.append(
                MessageVersion(original.text, original.blocks, self._clock(), RESPONSE_URL_METHOD)
            )
            original.text, original.blocks = text, blocks

    def state(self) -> JSON:
        return {
            "messages": {c: [m.as_json() for m in ms] for c, ms in self.messages.items()},
            "ephemerals": [e.as_json() for e in self.ephemerals],
            "views": [{**v.as_slack(), "user": v.user} for v in self.views.values()],
            "home_views": {u: v.as_slack() for u, v in self.home_views.items()},
            "open_dms": {u: self.directory.dm_channel_id(u) for u in sorted(self.open_dms)},
        }


# --- The HTTP edge --------------------------------------------------------------------------
class _Answer:
    """An HTTP answer: status, JSON body, extra headers."""

    def __init__(self, body: JSON, status: int = 200, headers: Mapping[str, str] | None = None):
        self.body, self.status, self.headers = body, status, dict(headers or {})

    def to_response(self) -> web.Response:
        return web.json_response(self.body, status=self.status, headers=self.headers)


_SERVER_ERRORS = {500: "internal_error", 502: "internal_error", 503: "service_unavailable"}


class SlackEmulator:
    """The fake Slack server: Web API + response_url + control endpoints, with recording.

    ``async with SlackEmulator(...) as emu`` starts it on 127.0.0.1 (``port=0``: any free port);
    point ``AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)`` at it.
    """

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
        directory = Directory(
            users=DEMO_USERS if users is None else users,
            usergroups=DEMO_USERGROUPS if usergroups is None else usergroups,
            channels=DEMO_CHANNELS if channels is None else channels,
        )
        directory.add_user(FakeUser(bot_user_id, "grantbot", "grantbot", "", is_bot=True))
        identity = Identity(team_id, team_domain, bot_user_id, bot_id, app_id)
        self.workspace = Workspace(directory, identity, clock)
        self.faults = FaultInjector()
        self.bot_token = bot_token
        self.socket_mode = SocketModeHub(app_token=app_token, app_id=app_id)
        self._clock = clock
        self.latency_s = latency_s
        self._host, self._port = host, port
        self._calls: list[Call] = []
        self._runner: web.AppRunner | None = None

    # --- lifecycle ---
    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", API_PREFIX + "{method}", self._handle_api)
        app.router.add_post(RESPONSE_URL_PATH + "{token}", self._handle_response_url)
        app.router.add_get(f"{CONTROL_PREFIX}/calls", self._handle_calls)
        app.router.add_get(f"{CONTROL_PREFIX}/state", self._handle_state)
        app.router.add_post(f"{CONTROL_PREFIX}/reset", self._handle_reset)
        app.router.add_post(f"{CONTROL_PREFIX}/triggers", self._handle_issue_trigger)
        app.router.add_post(f"{CONTROL_PREFIX}/response_urls", self._handle_issue_response_url)
        app.router.add_post(f"{CONTROL_PREFIX}/faults", self._handle_faults)
        app.router.add_post(f"{CONTROL_PREFIX}/latency", self._handle_latency)
        app.router.add_post(f"{CONTROL_PREFIX}/socket-mode/deliver", self._handle_socket_deliver)
        self.socket_mode.register(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self.socket_mode.close()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}/"

    @property
    def api_url(self) -> str:
        """For ``AsyncWebClient(base_url=...)``: ends in ``/api/``, as slack_sdk expects."""
        return f"http://{self._host}:{self._port}{API_PREFIX}"

    @property
    def directory(self) -> Directory:
        return self.workspace.directory

    # --- Slack's side of an interaction (the driver calls these, in process or over HTTP) ---
    def issue_trigger_id(self, user_id: str) -> str:
        """A fresh trigger_id for ``user_id``; views.open accepts it once, for 3 seconds."""
        return self.workspace.issue_trigger(user_id).id

    def issue_response_url(
        self,
        user_id: str,
        channel_id: str,
        *,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str:
        """A response_url at this emulator; ``message_ts`` is the message it may replace."""
        url = self.workspace.issue_response_url(
            user_id, channel_id, message_ts=message_ts, is_ephemeral=is_ephemeral
        )
        return f"{self.base_url.rstrip('/')}{RESPONSE_URL_PATH}{url.token}"

    # --- query helpers for tests ---
    def calls(self, method: str | None = None, *, since: int = 0) -> list[Call]:
        """Calls answered so far (of ``method``), from the ``since``-th on (0-based, counting
        every call): a poller passes the length of the log it last saw (:meth:`call_count`)."""
        return [c for c in self._calls[since:] if method is None or c.method == method]

    def call_count(self) -> int:
        """How many calls have been answered (the length of the call log)."""
        return len(self._calls)

    def messages(self, channel: str, *, include_deleted: bool = False) -> list[Message]:
        """Bot messages in ``channel`` (an id, or a user id for their DM), oldest first."""
        resolved = self.directory.resolve_channel(channel) or channel
        found = self.workspace.messages.get(resolved, [])
        return [m for m in found if include_deleted or not m.deleted]

    def last_message(self, channel: str) -> Message | None:
        found = self.messages(channel)
        return found[-1] if found else None

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self.messages(channel) if m.thread_ts == thread_ts]

    def ephemerals(self, *, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        return [
            e
            for e in self.workspace.ephemerals
            if not e.deleted and channel in (None, e.channel) and user in (None, e.user)
        ]

    def dm_channel(self, user_id: str) -> str:
        """The IM channel id for ``user_id`` (stable; the same conversations.open returns)."""
        return self.directory.dm_channel_id(user_id)

    def dms(self, user_id: str) -> list[Message]:
        return self.messages(self.dm_channel(user_id))

    def home_view(self, user_id: str) -> JSON | None:
        home = self.workspace.home_views.get(user_id)
        return home.as_slack() if home else None

    def views(self, user_id: str | None = None) -> list[View]:
        return [v for v in self.workspace.views.values() if user_id in (None, v.user)]

    def view(self, view_id: str) -> View | None:
        return self.workspace.views.get(view_id)

    @overload
    async def wait_for(
        self, what: str, *, timeout_s: float = ..., count: int = ..., poll_s: float = ...
    ) -> Call: ...
    @overload
    async def wait_for(
        self,
        what: Callable[[], T | None],
        *,
        timeout_s: float = ...,
        count: int = ...,
        poll_s: float = ...,
    ) -> T: ...
    async def wait_for(
        self,
        what: str | Callable[[], Any],
        *,
        timeout_s: float = 5.0,
        count: int = 1,
        poll_s: float = 0.01,
    ) -> Any:
        """Poll until ``what`` holds; return it.

        ``what`` is a method name (wait for its ``count``-th call, returned as a ``Call``) or a
        no-argument callable (wait until it returns something truthy, and return that).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if isinstance(what, str):
                found = self.calls(what)
                result: Any = found[count - 1] if len(found) >= count else None
            else:
                result = what()
            if result:
                return result
            if time.monotonic() >= deadline:
                seen = [f"{c.method}:{c.status}:{c.error or 'ok'}" for c in self._calls]
                raise TimeoutError(f"waited {timeout_s}s for {what!r}; calls so far: {seen}")
            await asyncio.sleep(poll_s)

    def reset(self) -> None:
        """Forget calls, messages, views, triggers and faults; keep the directory."""
        self._calls.clear()
        self.workspace.reset()
        self.faults.clear()

    # --- HTTP handlers ---
    def _record(self, method: str, args: JSON, answer: _Answer, *, received_at: float) -> None:
        self._calls.append(
            Call(method, args, self._clock(), answer.status, answer.body, received_at)
        )

    async def _latency(self) -> None:
        """Slack's own time to answer (``latency_s``), before any fault."""
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    async def _apply_fault(self, method: str) -> _Answer | None:
        fault = self.faults.take(method)
        if fault is None:
            return None
        if fault.kind is FaultKind.DELAY:
            await asyncio.sleep(fault.delay_s)
            return None
        if fault.kind is FaultKind.RATELIMITED:
            return _Answer(
                {"ok": False, "error": "ratelimited"},
                429,
                {"Retry-After": str(fault.retry_after_s)},
            )
        error = _SERVER_ERRORS.get(fault.status, "internal_error")
        return _Answer({"ok": False, "error": error}, fault.status)

    async def _handle_api(self, request: web.Request) -> web.Response:
        received_at = self._clock()
        method = request.match_info["method"]
        args, token = await _read_api_args(request)
        await self._latency()
        answer = await self._apply_fault(method) or self._answer_api(method, args, token)
        self._record(method, args, answer, received_at=received_at)
        return answer.to_response()

    def _answer_api(self, method: str, args: JSON, token: str | None) -> _Answer:
        if method == APPS_CONNECTIONS_OPEN:  # the one method that takes the app-level token
            body, status = self.socket_mode.open_connection(token=token, base_url=self.base_url)
            return _Answer(body, status)
        handler = self.workspace.methods.get(method)
        try:
            if handler is None:
                raise _ApiError("unknown_method", req_method=method)
            if not token:
                raise _ApiError("not_authed")
            if token != self.bot_token:
                raise _ApiError("invalid_auth")
            return _Answer(handler(args))
        except _ApiError as e:
            return _Answer(e.body(), e.status)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        received_at = self._clock()
        token = request.match_info["token"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        args: JSON = body if isinstance(body, dict) else {}
        await self._latency()
        answer = await self._apply_fault(RESPONSE_URL_METHOD)
        if answer is None:
            try:
                answer = (
                    _Answer(self.workspace.respond(token, args))
                    if isinstance(body, dict)
                    else _Answer({"ok": False, "error": "invalid_payload"}, 400)
                )
            except _ApiError as e:
                answer = _Answer(e.body(), e.status)
        self._record(
            RESPONSE_URL_METHOD,
            {**args, "response_url_token": token},
            answer,
            received_at=received_at,
        )
        return answer.to_response()

    async def _handle_calls(self, request: web.Request) -> web.Response:
        """``?method=`` filters; ``?since=N`` skips the first N calls of the log. ``next`` is
        the log's length, the ``since`` of the next poll."""
        method = request.query.get("method")
        try:
            since = max(0, int(request.query.get("since", "0")))
        except ValueError as e:
            raise web.HTTPBadRequest(text="since must be an integer") from e
        end = self.call_count()
        calls = [c.as_json() for c in self._calls[since:end] if method in (None, c.method)]
        return web.json_response({"calls": calls, "next": end})

    async def _handle_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.workspace.state())

    async def _handle_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _handle_issue_trigger(self, request: web.Request) -> web.Response:
        body = await _control_body(request)
        return web.json_response({"trigger_id": self.issue_trigger_id(str(body["user_id"]))})

    async def _handle_issue_response_url(self, request: web.Request) -> web.Response:
        body = await _control_body(request)
        url = self.issue_response_url(
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
            delivered = await self.socket_mode.deliver(
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
                status=int(body.get("status", 500)),
                delay_s=float(body.get("delay_s", 0.0)),
            )
            self.faults.add(str(body["method"]), fault)
        except (KeyError, ValueError) as e:
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
        self.latency_s = latency_ms / 1000
        return web.json_response({"ok": True, "latency_ms": latency_ms})


async def _control_body(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except ValueError as e:
        raise web.HTTPBadRequest(text="expected a JSON object") from e
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


async def _read_api_args(request: web.Request) -> tuple[JSON, str | None]:
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


# --- A client for the control endpoints -----------------------------------------------------
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


# --- Standalone -----------------------------------------------------------------------------
async def _serve(emulator: SlackEmulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with emulator:
        print(f"SLACK_API_URL={emulator.api_url}", flush=True)
        print(f"SLACK_EMULATOR_URL={emulator.base_url}", flush=True)
        print(f"SLACK_BOT_TOKEN={emulator.bot_token}", flush=True)
        print(f"SLACK_APP_TOKEN={emulator.socket_mode.app_token}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake Slack Web API for tests and demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--bot-token", default=DEFAULT_BOT_TOKEN)
    parser.add_argument("--app-token", default=DEFAULT_APP_TOKEN, help="for Socket Mode")
    parser.add_argument("--team-id", default=DEFAULT_TEAM_ID)
    parser.add_argument(
        "--directory", help="JSON file: {users: [...], usergroups: {...}, channels: [...]}"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="answer every Web API call and response_url post this late (Slack: ~150)",
    )
    opts = parser.parse_args(argv)
    data: JSON = {}
    if opts.directory:
        with open(opts.directory, encoding="utf-8") as f:
            data = json.load(f)
    emulator = SlackEmulator(
        users=[FakeUser(**u) for u in data["users"]] if "users" in data else None,
        usergroups=data.get("usergroups"),
        channels=[FakeChannel(**c) for c in data["channels"]] if "channels" in data else None,
        bot_token=opts.bot_token,
        app_token=opts.app_token,
        team_id=opts.team_id,
        host=opts.host,
        port=opts.port,
        latency_s=opts.latency_ms / 1000,
    )
    asyncio.run(_serve(emulator))
    return 0


if __name__ == "__main__":
    sys.exit(main())
