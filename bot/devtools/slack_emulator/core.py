"""What the emulator holds (the workspace, queued faults, the Socket Mode hub, the log of calls
it answered) and what a test or driver in the same process does with it: read back calls,
messages and views, wait for one, hand out trigger_ids and response_urls, reset.

:class:`~bot.devtools.slack_emulator.server.SlackEmulator` adds the HTTP handlers; the control
endpoints (:mod:`.control`) offer the same over HTTP to another process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

from bot.devtools.loopback import LoopbackServer
from bot.devtools.slack_emulator.directory import Directory
from bot.devtools.slack_emulator.faults import FaultInjector
from bot.devtools.slack_emulator.model import Call, Ephemeral, Message, View
from bot.devtools.slack_emulator.paths import API_PREFIX, RESPONSE_URL_PATH
from bot.devtools.slack_emulator.workspace import Workspace
from bot.devtools.socket_mode import SocketModeHub

JSON = dict[str, Any]
T = TypeVar("T")


class EmulatorCore(LoopbackServer):
    """The emulator's state and its in-process face; see the module's docstring."""

    def __init__(
        self,
        *,
        workspace: Workspace,
        bot_token: str,
        socket_mode: SocketModeHub,
        clock: Callable[[], float],
        latency_s: float,
        host: str,
        port: int,
    ) -> None:
        super().__init__(host=host, port=port)
        self.workspace = workspace
        self.faults = FaultInjector()
        self.bot_token = bot_token
        self.socket_mode = socket_mode
        self._clock = clock
        self.latency_s = latency_s
        self._calls: list[Call] = []

    @property
    def base_url(self) -> str:
        return f"{self.origin}/"

    @property
    def api_url(self) -> str:
        """For ``AsyncWebClient(base_url=...)``: ends in ``/api/``, as slack_sdk expects."""
        return f"{self.origin}{API_PREFIX}"

    @property
    def directory(self) -> Directory:
        return self.workspace.directory

    def record(self, call: Call) -> None:
        self._calls.append(call)

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
        return f"{self.origin}{RESPONSE_URL_PATH}{url.token}"

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
