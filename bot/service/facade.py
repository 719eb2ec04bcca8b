"""GrantService: the one door to the service, for Slack listeners and the CLI. Each call is
delegated to the module whose job it is (requests, extensions, decisions, issuing, ending,
sweeps, queries); this module only builds them, in order, from a
:class:`~bot.service.context.ServiceContext` and the revoker and scheduler the wiring made
from that same context (bot/wiring.py), so nothing is wired after construction.

Authority always comes from the policy and the store, never from what a caller claims: an
approval is accepted only when the current policy makes the clicking user an approver of the
request's resource and role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bot.domain.credentials import Credential
from bot.domain.model import Actor, ActorKind, Grant, Origin
from bot.domain.policy.decisions import RequestDecision
from bot.domain.policy.rules import RoleRule
from bot.notify import Notifier
from bot.policy_holder import PolicyHolder
from bot.ports import ManualRevocation, OnCallDirectory, Scheduler
from bot.providers.base import GrantContext, Provider
from bot.service.auto_approval import AutoApprover
from bot.service.context import ServiceContext
from bot.service.decisions import Decisions
from bot.service.ending import Ending
from bot.service.extensions import Extensions
from bot.service.issuing import Issuer, Reissuer
from bot.service.queries import Queries
from bot.service.requests import RequestResult, Requests
from bot.service.sweeps import Sweeps
from bot.store.grants import GrantStore


class GrantService:
    """Request, decide, issue, revoke. Every public method is safe to call concurrently.

    Without ``revoker`` nothing live can be ended here (ProviderError says so); without
    ``scheduler`` an issued grant's end is left to the reconciler of a running serve."""

    def __init__(
        self,
        context: ServiceContext,
        *,
        scheduler: Scheduler | None = None,
        revoker: ManualRevocation | None = None,
    ) -> None:
        self.context = context
        self.scheduler = scheduler
        self.revoker = revoker
        self.issuer = Issuer(context, scheduler=scheduler)
        self.reissuer = Reissuer(context)
        auto_approver = AutoApprover(context)
        self.requests = Requests(context, auto_approver=auto_approver, issuer=self.issuer)
        self.extensions = Extensions(
            context,
            requests=self.requests,
            auto_approver=auto_approver,
            reissuer=self.reissuer,
            scheduler=scheduler,
        )
        self.decisions = Decisions(context, issuer=self.issuer, extensions=self.extensions)
        self.ending = Ending(context, decisions=self.decisions, issuer=self.issuer, revoker=revoker)
        self.sweeps = Sweeps(context, issuer=self.issuer)
        self.queries = Queries(context, decisions=self.decisions)

    # -- the parts, as the context holds them ----------------------------------------------

    @property
    def store(self) -> GrantStore:
        return self.context.store

    @property
    def policy(self) -> PolicyHolder:
        return self.context.policy

    @property
    def notifier(self) -> Notifier:
        return self.context.notifier

    @property
    def oncall(self) -> OnCallDirectory:
        return self.context.oncall

    @property
    def clock(self) -> Callable[[], float]:
        return self.context.clock

    # -- providers -------------------------------------------------------------------------

    def provider_for(self, resource: str) -> Provider:
        """The provider of ``resource`` under the current policy (built once per version)."""
        return self.context.providers.provider_for(resource)

    def resolve(
        self, grant: Grant, *, ssh_public_key: str | None = None
    ) -> tuple[Provider, GrantContext]:
        """Provider and context for ``grant``."""
        return self.context.providers.resolve(grant, ssh_public_key=ssh_public_key)

    async def housekeeping(self) -> int:
        """Providers' leftovers at their targets removed (see PolicyProviders.housekeeping)."""
        return await self.context.providers.housekeeping()

    async def aclose(self) -> None:
        """Close providers and the on-call lookup (its HTTP session, fetches in flight)."""
        await self.context.aclose()

    # -- asking ----------------------------------------------------------------------------

    async def request_access(
        self,
        *,
        user: str,
        resource: str,
        role: str | None,
        duration_s: int | None,
        reason: str,
        tickets: Iterable[str] = (),
        origin: Origin | None = None,
    ) -> RequestResult:
        """File a request (see :meth:`Requests.request_access`)."""
        return await self.requests.request_access(
            user=user,
            resource=resource,
            role=role,
            duration_s=duration_s,
            reason=reason,
            tickets=tickets,
            origin=origin,
        )

    async def check_request(
        self,
        *,
        user: str,
        resource: str,
        role: str | None,
        duration_s: int | None,
        reason: str,
        tickets: Iterable[str] = (),
        now: float | None = None,
    ) -> RequestDecision:
        """What the policy says to this request, changing nothing (see
        :meth:`Requests.check_request`)."""
        return await self.requests.check_request(
            user=user,
            resource=resource,
            role=role,
            duration_s=duration_s,
            reason=reason,
            tickets=tickets,
            now=now,
        )

    async def request_extension(
        self,
        grant_id: str,
        *,
        user: str,
        duration_s: int,
        reason: str,
        tickets: Iterable[str] = (),
        origin: Origin | None = None,
    ) -> RequestResult:
        """Ask for more time on an ACTIVE grant (see :meth:`Extensions.request_extension`)."""
        return await self.extensions.request_extension(
            grant_id,
            user=user,
            duration_s=duration_s,
            reason=reason,
            tickets=tickets,
            origin=origin,
        )

    # -- deciding --------------------------------------------------------------------------

    async def require_approver(self, grant: Grant, user: str) -> RoleRule:
        """The rule, when ``user`` is an approver of ``grant`` now; else NotAuthorized."""
        return await self.decisions.require_approver(grant, user)

    async def grant_for_approver(self, grant_id: str, *, user: str) -> Grant:
        """The grant as stored now, when ``user`` is one of its approvers now."""
        return await self.decisions.grant_for_approver(grant_id, user=user)

    async def approve(self, grant_id: str, *, user: str) -> Grant:
        """Record ``user``'s approval; the N-th distinct approval approves and issues."""
        return await self.decisions.approve(grant_id, user=user)

    async def deny(self, grant_id: str, *, user: str, reason: str | None) -> Grant:
        return await self.decisions.deny(grant_id, user=user, reason=reason)

    async def cancel(self, grant_id: str, *, user: str, reason: str | None = None) -> Grant:
        """Its requester ``user`` withdraws a pending request."""
        actor = Actor(kind=ActorKind.REQUESTER, id=user)
        return await self.decisions.cancel(grant_id, actor=actor, reason=reason)

    # -- issuing ---------------------------------------------------------------------------

    async def activate(self, grant: Grant) -> tuple[Grant, Credential | None]:
        """Issue an APPROVED grant's credential and make it ACTIVE (see :meth:`Issuer.activate`)."""
        return await self.issuer.activate(grant)

    # -- ending ----------------------------------------------------------------------------

    async def revoke(self, grant_id: str, *, user: str, reason: str | None) -> Grant:
        """End a grant early from Slack: its requester or one of its approvers may."""
        return await self.ending.revoke(grant_id, user=user, reason=reason)

    async def revoke_as_operator(
        self, grant_id: str, *, operator: str, reason: str | None
    ) -> Grant:
        return await self.ending.revoke_as_operator(grant_id, operator=operator, reason=reason)

    async def force_close(self, grant_id: str, *, operator: str, reason: str | None) -> Grant:
        return await self.ending.force_close(grant_id, operator=operator, reason=reason)

    async def revoke_all(self, *, user: str, operator: str, reason: str) -> list[Grant]:
        """Offboarding: end every pending request and live grant of ``user`` now, audited."""
        return await self.ending.revoke_all(user=user, operator=operator, reason=reason)

    # -- sweeps ----------------------------------------------------------------------------

    async def time_out_due(self) -> list[Grant]:
        """Lapse every PENDING request past its request_timeout."""
        return await self.sweeps.time_out_due()

    async def fail_stuck_approved(self) -> list[Grant]:
        """Take back APPROVED grants whose issuing never finished, and mark them FAILED."""
        return await self.sweeps.fail_stuck_approved()

    async def escalate_due(self) -> list[tuple[Grant, int]]:
        """Ask the escalation tiers pending requests reached: (grant, tier) asked now."""
        return await self.sweeps.escalate_due()

    # -- reading ---------------------------------------------------------------------------

    async def my_grants(self, user: str) -> list[Grant]:
        return await self.queries.my_grants(user)

    async def waiting_for(self, user: str) -> list[Grant]:
        """PENDING requests ``user`` may decide on (not their own unless self-approval)."""
        return await self.queries.waiting_for(user)

    async def ssh_key(self, user: str) -> str | None:
        """The SSH public key ``user`` registered, if any."""
        return await self.queries.ssh_key(user)

    async def set_ssh_key(self, user: str, public_key: str) -> None:
        """Register ``user``'s SSH public key, audited in the same atomic step."""
        await self.queries.set_ssh_key(user, public_key)

    async def requestable(self, user: str) -> list[RoleRule]:
        return await self.queries.requestable(user)

    def rule_for(self, resource: str, role: str) -> RoleRule:
        """The current policy's rule for ``resource``/``role``; PolicyDenied when none."""
        return self.queries.rule_for(resource, role)

    def is_incident_channel(self, channel_name: str) -> bool:
        return self.queries.is_incident_channel(channel_name)

    def incident_of(self, channel_name: str, *, topic: str = "") -> str | None:
        return self.queries.incident_of(channel_name, topic=topic)
