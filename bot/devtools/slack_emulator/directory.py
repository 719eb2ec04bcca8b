"""Who and what exists in the fake workspace: its users, usergroups and channels (a demo set by
default), DMs, and who the bot is there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

DEFAULT_BOT_TOKEN = "xoxb-0001-grantbot-emulator"  # noqa: S105 - a fake token for a fake Slack
DEFAULT_TEAM_ID = "T0001"


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

    @classmethod
    def or_demo(
        cls,
        *,
        users: Sequence[FakeUser] | None = None,
        usergroups: Mapping[str, Sequence[str]] | None = None,
        channels: Sequence[FakeChannel] | None = None,
    ) -> Directory:
        """The users, usergroups and channels given; the demo set for each left None."""
        return cls(
            users=DEMO_USERS if users is None else users,
            usergroups=DEMO_USERGROUPS if usergroups is None else usergroups,
            channels=DEMO_CHANNELS if channels is None else channels,
        )

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
    #: The Enterprise Grid organisation the workspace belongs to (None: not on Grid).
    enterprise_id: str | None = None
