"""What every part of the service shares: the parts of grantbot it talks to (built once, before
the revoker, which resolves providers and reports back through them) and the few habits every
part keeps: a notification never fails a decision, an audit note never fails a request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from bot.domain.model import Actor, Event, Grant
from bot.domain.policy.rules import RoleRule, usergroup_ids
from bot.errors import GrantbotError
from bot.notify import Notifier, NullNotifier
from bot.policy_holder import PolicyHolder
from bot.ports import (
    NO_USERGROUPS,
    NobodyOnCall,
    NoPeople,
    NoUsergroups,
    OnCallDirectory,
    PeopleDirectory,
    UsergroupDirectory,
)
from bot.service.providers import PolicyProviders
from bot.store.grants import GrantStore

log = logging.getLogger(__name__)

Clock = Callable[[], float]
T = TypeVar("T")


class ServiceContext:
    """The store, the policy, the notifier, the directories, the on-call lookup, the clock and
    the policy's providers, as every module of the service sees them. A part not given is its
    null object (bot.ports): nobody's email, no user groups, nobody on call; ``providers`` not
    given are built over ``people`` and ``environ``."""

    def __init__(
        self,
        *,
        store: GrantStore,
        policy: PolicyHolder,
        notifier: Notifier | None = None,
        usergroups: UsergroupDirectory | None = None,
        oncall: OnCallDirectory | None = None,
        people: PeopleDirectory | None = None,
        clock: Clock = time.time,
        environ: Mapping[str, str] | None = None,
        providers: PolicyProviders | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.notifier: Notifier = notifier or NullNotifier()
        self.usergroups: UsergroupDirectory = usergroups or NoUsergroups()
        self.oncall: OnCallDirectory = oncall or NobodyOnCall()
        self.people: PeopleDirectory = people or NoPeople()
        self.clock = clock
        # Given when a part built before the context needs them (bot/wiring.py).
        self.providers = providers or PolicyProviders(
            store=store, policy=policy, people=self.people, clock=clock, environ=environ
        )

    async def transition(
        self, grant_id: str, event: Event, *, actor: Actor, now: float | None = None, **changes: Any
    ) -> Grant:
        """One audited state change of ``grant_id`` (GrantStore.transition: ``changes`` are its
        reason, expires_at, error, details...) under the current policy version, at ``now``
        (default: the clock, now); the grant as stored after it."""
        outcome = await self.store.transition(
            grant_id,
            event,
            actor=actor,
            now=self.clock() if now is None else now,
            policy_version=self.policy.version,
            **changes,
        )
        return outcome.grant

    async def usergroups_for(self, rule: RoleRule) -> Mapping[str, frozenset[str]]:
        """The members of every user group ``rule`` mentions (none asked when it names none)."""
        ids = usergroups_of(rule)
        return await self.usergroups.members(ids) if ids else NO_USERGROUPS

    async def audit_note(
        self,
        event: str,
        *,
        actor: str,
        at: float,
        grant_id: str,
        reason: str,
        details: Mapping[str, Any],
    ) -> None:
        """Audit something that changes no grant state. A failure is logged, not raised:
        the request (already stored) must still reach its approvers."""
        try:
            await self.store.audit.append(
                event,
                actor=actor,
                at=at,
                grant_id=grant_id,
                reason=reason,
                policy_version=self.policy.version,
                details=details,
            )
        except GrantbotError as e:
            log.warning("could not audit %s for %s: %s", event, grant_id, e)

    async def meanwhile(self, notification: Awaitable[None], work: Awaitable[T]) -> T:
        """``work``'s result, with ``notification`` sent concurrently (its failure logged,
        never raised). Both have finished when this returns or raises."""
        told = asyncio.ensure_future(safe(notification))
        try:
            return await work
        finally:
            await asyncio.wait([told])

    async def aclose(self) -> None:
        """Close the on-call lookup (its HTTP session, fetches in flight) and the providers."""
        try:
            await self.oncall.aclose()
        except Exception:
            log.exception("closing the on-call lookup failed")
        await self.providers.aclose()


async def safe(call: Awaitable[None], *, about: str = "notification") -> None:
    """Await a notification; a failure is logged (``<about> failed``), never raised into the
    decision."""
    try:
        await call
    except Exception:
        log.exception("%s failed", about)


def usergroups_of(rule: RoleRule) -> set[str]:
    """Every Slack user-group id the rule's requesters, approvers and groups mention."""
    blocks = (rule.requesters, rule.approvers, *(t.approvers for t in rule.escalation))
    return usergroup_ids(blocks, groups=rule.groups)


def today(now: float) -> date:
    """The UTC date at ``now`` (the policy's dated memberships are by day)."""
    return datetime.fromtimestamp(now, tz=UTC).date()


def incident_details(grant: Grant) -> dict[str, Any]:
    """The incident a request belongs to, for its audit entries (empty outside one)."""
    origin = grant.origin
    if origin.incident is None:
        return {}
    found = {"incident": origin.incident, "channel": origin.channel}
    found["channel_name"] = origin.channel_name
    return {k: v for k, v in found.items() if v is not None}
