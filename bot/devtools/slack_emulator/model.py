"""What the emulator keeps: the calls it answered, the messages, ephemerals and views the bot
made (with what updates replaced), and the trigger_ids and response_urls it handed out."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.devtools.slack_emulator.directory import Identity

JSON = dict[str, Any]


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
