"""Slack's state in the emulator, and the checks every Web API method family shares.

Pure of HTTP: the method families (:mod:`.chat`, :mod:`.views`, :mod:`.conversations`,
:mod:`.users`, listed in :mod:`.methods`) take a :class:`Workspace` and the call's arguments and
return Slack's JSON answer, or raise :class:`ApiError` for an ``{"ok": false}`` one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.devtools.slack_emulator.blockkit import BlockKitValidator
from bot.devtools.slack_emulator.directory import Directory, Identity
from bot.devtools.slack_emulator.ids import SlackIds
from bot.devtools.slack_emulator.limits import MAX_MESSAGE_TEXT_CHARS
from bot.devtools.slack_emulator.model import (
    Ephemeral,
    Message,
    ResponseUrl,
    Trigger,
    View,
)

JSON = dict[str, Any]


class ApiError(Exception):
    """An ``{"ok": false, "error": ...}`` answer; extra fields ride along in ``extra``."""

    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.status, self.extra = error, status, extra

    def body(self) -> JSON:
        return {"ok": False, "error": self.error, **self.extra}


def invalid_blocks(problems: list[str]) -> ApiError:
    """Slack's shape for rejected message blocks."""
    return ApiError(
        "invalid_blocks",
        errors=problems,
        response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
    )


def invalid_view(problems: list[str]) -> ApiError:
    """Slack's shape for a rejected view: views.* answer invalid_arguments, not invalid_blocks."""
    return ApiError(
        "invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]}
    )


def truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def str_arg(args: JSON, name: str) -> str:
    value = args.get(name)
    return value if isinstance(value, str) else ""


class Workspace:
    """Slack's state: the messages, ephemerals and views the bot made, open DMs, and the
    trigger_ids and response_urls handed out, over a :class:`Directory`."""

    def __init__(
        self, directory: Directory, identity: Identity, clock: Callable[[], float]
    ) -> None:
        self.directory = directory
        self.identity = identity
        self.clock = clock
        self.validator = BlockKitValidator()
        self.ids = SlackIds(clock)
        self.messages: dict[str, list[Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.home_views: dict[str, View] = {}
        self.open_dms: set[str] = set()
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}

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
        trigger = Trigger(self.ids.trigger_id(), user, self.clock())
        self.triggers[trigger.id] = trigger
        return trigger

    def issue_response_url(
        self, user: str, channel: str, *, message_ts: str | None, is_ephemeral: bool
    ) -> ResponseUrl:
        token = self.ids.response_token()
        url = ResponseUrl(token, user, channel, self.clock(), message_ts, is_ephemeral)
        self.response_urls[token] = url
        return url

    # Checks shared by the message methods.
    def message_content(self, args: JSON, *, required: bool = True) -> tuple[str, list[JSON]]:
        """A message's text and blocks from ``args``, refused as Slack refuses them."""
        text = str_arg(args, "text")
        blocks = args.get("blocks")
        if blocks is not None and not isinstance(blocks, list):
            raise ApiError("invalid_blocks_format")
        if required and not text and not blocks:
            raise ApiError("no_text")
        if len(text) > MAX_MESSAGE_TEXT_CHARS:
            raise ApiError("msg_too_long")
        problems = self.validator.message_blocks(blocks)
        if problems:
            raise invalid_blocks(problems)
        return text, list(blocks or [])

    def channel_arg(self, args: JSON) -> str:
        """The channel ``args`` name (an id, a #name, a DM or a user id); posting to a DM
        opens it."""
        channel = self.directory.resolve_channel(str_arg(args, "channel"))
        if channel is None:
            raise ApiError("channel_not_found")
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

    def message_echo(self, message: Message) -> JSON:
        """The message as Slack echoes a bot's post back: with the bot's profile."""
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

    def state(self) -> JSON:
        return {
            "messages": {c: [m.as_json() for m in ms] for c, ms in self.messages.items()},
            "ephemerals": [e.as_json() for e in self.ephemerals],
            "views": [{**v.as_slack(), "user": v.user} for v in self.views.values()],
            "home_views": {u: v.as_slack() for u, v in self.home_views.items()},
            "open_dms": {u: self.directory.dm_channel_id(u) for u in sorted(self.open_dms)},
        }
