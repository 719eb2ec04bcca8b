"""The protocols parts of grantbot talk to each other through, so that one side need not
import the other (bot/slack never imports bot/store: the wiring hands it store objects typed
by these).

Each protocol is the few calls its user makes, nothing more. Calls are declared returning
``Awaitable`` so that both ``async def`` methods and the store's error-translating wrappers
(``bot.store.connection.translate_errors``) satisfy them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from bot.domain.model import Grant

#: A Slack message: (channel id, ts).
MessageRef = tuple[str, str]


class FirstSeen(Protocol):
    """Says whether a token (a delivery, a job run) is seen for the first time."""

    def first_time(self, token: str) -> Awaitable[bool]:
        """True when ``token`` had not been seen (and now is)."""
        ...


class MessageRefStore(Protocol):
    """The messages shown about each grant, by kind, kept so each can be updated later.

    Every call raises StoreUnavailable when the store cannot be reached."""

    def read(self, grant_id: str) -> Awaitable[dict[MessageRef, str]]:
        """Every remembered message of ``grant_id`` -> its kind."""
        ...

    def remember(self, grant_id: str, refs: Mapping[MessageRef, str]) -> Awaitable[None]:
        """Remember (or re-kind) ``refs`` of ``grant_id``, in one step."""
        ...

    def forget(self, grant_id: str, ref: MessageRef) -> Awaitable[None]:
        """Forget one message of ``grant_id`` (it is gone from Slack)."""
        ...


class GrantReader(Protocol):
    """Reads one grant as stored now."""

    def get(self, grant_id: str) -> Awaitable[Grant]:
        """The grant; NotFound when there is none, StoreUnavailable when unreachable."""
        ...


class AuditAppender(Protocol):
    """Appends an audit entry that records no grant state change."""

    def append(
        self,
        event: str,
        *,
        actor: str,
        at: float,
        grant_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Awaitable[str]:
        """The entry's stream id."""
        ...
