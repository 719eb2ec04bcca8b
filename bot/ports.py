"""The protocols parts of grantbot talk to each other through, so that one side need not
import the other (bot/slack never imports bot/store: the wiring hands it store objects typed
by these; the service and the revoker meet only here), and the null objects that stand in
for a part a process does not have.

Each protocol is the few calls its user makes, nothing more. Calls that store objects answer
are declared returning ``Awaitable`` so that both ``async def`` methods and the store's
error-translating wrappers (``bot.store.connection.translate_errors``) satisfy them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from bot.domain.model import Actor, Event, Grant

if TYPE_CHECKING:  # only named in annotations: bot/store and bot/slack, which import this
    # module, import nothing of bot/providers or bot/oncall through it
    from bot.oncall.base import OnCallResult
    from bot.providers.base import GrantContext, Provider

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


# -- what the service and the revoker talk to ---------------------------------------------------

#: No user group is known (a directory absent, or nothing asked).
NO_USERGROUPS: Final[Mapping[str, frozenset[str]]] = {}


class UsergroupDirectory(Protocol):
    """Slack user groups' members (bot.slack.directory.SlackDirectory in the running bot)."""

    async def members(self, usergroup_ids: Iterable[str]) -> Mapping[str, frozenset[str]]:
        """Members of each Slack user group asked for (absent = unknown = empty)."""
        ...


class PeopleDirectory(Protocol):
    """People's email addresses (bot.slack.directory.SlackDirectory in the running bot)."""

    async def email(self, user: str) -> str | None:
        """The email address Slack has for ``user``; None when it has none or cannot say."""
        ...


class OnCallDirectory(Protocol):
    """Who is on call for the policy's schedules (bot.oncall.PolicyOnCallLookup in the running
    bot). Fails closed: a source that is down or slow makes nobody on call, and says why."""

    async def check(
        self, user: str, *, now: float, schedules: Iterable[str] | None = None
    ) -> OnCallResult:
        """The ``schedules`` (None: all) ``user`` is on call for, and why any could not be
        asked. Never raises for a source's failure."""
        ...

    async def members(self, schedule: str, *, now: float) -> frozenset[str]:
        """Who is on call for ``schedule``; OnCallUnavailable (with the reason) when its
        source cannot say."""
        ...

    async def aclose(self) -> None: ...


class Scheduler(Protocol):
    """A grant's revocation put at (or taken off) its time
    (bot.scheduling.scheduler.RevocationScheduler in serve)."""

    async def schedule(self, grant_id: str, expires_at: float) -> None: ...
    async def unschedule(self, grant_id: str) -> None: ...


class StartBook(Protocol):
    """What the service does with a SCHEDULED grant, which nothing was issued for yet
    (bot.lifecycle.starts.StartBook)."""

    async def scheduled(self, grant: Grant) -> Grant:
        """``grant`` was just approved into SCHEDULED: its start job is put, its requester
        told; ``grant`` back."""
        ...

    async def end(self, grant: Grant, *, actor: Actor, reason: str | None) -> Grant:
        """End SCHEDULED ``grant`` before its start (CANCEL by its requester, else REVOKE);
        its start job goes. The grant as stored after it."""
        ...


class ManualRevocation(Protocol):
    """A person ending one grant now, as the service asks the revoker
    (bot.revocation.revoker.Revoker)."""

    async def revoke(
        self, grant_id: str, *, actor: Actor, reason: str | None, event: Event = Event.REVOKE
    ) -> Grant: ...
    async def force_close(self, grant_id: str, *, operator: str, reason: str | None) -> Grant: ...


class ProviderResolver(Protocol):
    """The provider and context that can take ``grant``'s access away, from the policy
    (bot.service.providers.PolicyProviders in the running bot)."""

    def resolve(self, grant: Grant) -> tuple[Provider, GrantContext]: ...


class RevocationListener(Protocol):
    """Told by the revoker after each change is stored (bot.service.issuing.RevocationReports
    in the running bot). Must not raise; if it does, it is logged and ignored.

    ``on_revoke_failed`` is called after every failed attempt (``grant.revoke_attempts`` says
    which; update one message rather than posting each). When the retry window has passed,
    ``grant.last_error`` says so and asks for a force-close.
    """

    async def on_ended(self, grant: Grant) -> None: ...

    async def on_revoke_failed(self, grant: Grant) -> None: ...

    async def on_access_removed(self, grant: Grant) -> None:
        """``grant`` is live (it was extended while its access was being taken away), but its
        access is gone at the target: issue it again."""
        ...


# -- null objects: a part not configured in this process -----------------------------------------


class NoUsergroups:
    """No directory: every user group is empty."""

    async def members(self, usergroup_ids: Iterable[str]) -> Mapping[str, frozenset[str]]:
        return NO_USERGROUPS


class NoPeople:
    """No directory: nobody's email is known."""

    async def email(self, user: str) -> str | None:
        return None


class NobodyOnCall:
    """No on-call sources: nobody is on call, and no schedule can be asked."""

    async def check(
        self, user: str, *, now: float, schedules: Iterable[str] | None = None
    ) -> OnCallResult:
        from bot.oncall.base import OnCallResult  # see the TYPE_CHECKING imports above

        return OnCallResult(
            failures={name: "no on-call sources are configured" for name in schedules or ()}
        )

    async def members(self, schedule: str, *, now: float) -> frozenset[str]:
        from bot.oncall.base import OnCallUnavailable  # see the TYPE_CHECKING imports above

        raise OnCallUnavailable("no on-call sources are configured")

    async def aclose(self) -> None:
        return None
