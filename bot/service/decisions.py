"""Deciding: who may approve a request now (authority from the current policy and the
escalation tiers the request has reached, never from what a caller claims), and approve, deny
and cancel, each one compare-and-set transition in the store."""

from __future__ import annotations

from typing import Any

from bot import metrics
from bot.domain.model import Actor, ActorKind, Event, Grant, Status
from bot.domain.policy.rules import RoleRule
from bot.errors import NotAuthorized, PolicyDenied
from bot.service.context import ServiceContext, safe, today
from bot.service.extensions import Extensions
from bot.service.issuing import Issuer


class Decisions:
    """Approver checks and the decisions on pending requests."""

    def __init__(self, context: ServiceContext, *, issuer: Issuer, extensions: Extensions) -> None:
        self._c = context
        self._issuer = issuer
        self._extensions = extensions

    async def require_approver(self, grant: Grant, user: str) -> RoleRule:
        """The rule, when the current policy makes ``user`` an approver of ``grant`` now;
        else NotAuthorized.

        Approvers are the rule's own, plus those of every escalation tier the request has
        reached (``escalate_after`` passed since it was filed): the tier's approvers and
        whoever is on call for its ``oncall`` schedule (an on-call source that cannot answer
        makes nobody on call).
        """
        c = self._c
        try:
            rule = c.policy.current.policy.rule(grant.resource, grant.role)
        except PolicyDenied as e:
            raise NotAuthorized(f"{grant.resource} {grant.role} is no longer in the policy") from e
        now = c.clock()
        members = await c.usergroups_for(rule)
        reached = rule.tiers_reached(asked_at=grant.created_at, now=now)
        check: dict[str, Any] = {"today": today(now), "usergroups": members}
        if rule.is_approver(user, **check, tiers_reached=reached):
            return rule
        schedules = [t.oncall for t in rule.escalation[:reached] if t.oncall is not None]
        if schedules:
            on_call = await c.oncall.check(user, now=now, schedules=schedules)
            if rule.is_approver(
                user, **check, tiers_reached=reached, on_call_schedules=on_call.schedules
            ):
                return rule
        raise NotAuthorized(f"you are not an approver for {rule.name}")

    async def grant_for_approver(self, grant_id: str, *, user: str) -> Grant:
        """The grant ``grant_id`` as stored now, when ``user`` is one of its approvers now
        (see :meth:`require_approver`); NotFound or NotAuthorized otherwise."""
        grant = await self._c.store.get(grant_id)
        await self.require_approver(grant, user)
        return grant

    async def _decide(
        self, grant_id: str, event: Event, *, user: str, reason: str | None = None
    ) -> Grant:
        """``event`` (APPROVE or DENY) by ``user``, once the current policy makes them an
        approver of the grant as stored now; the grant as the transition left it."""
        await self.require_approver(await self._c.store.get(grant_id), user)
        actor = Actor(kind=ActorKind.APPROVER, id=user)
        return await self._c.transition(grant_id, event, actor=actor, reason=reason)

    async def approve(self, grant_id: str, *, user: str) -> Grant:
        """Record ``user``'s approval; the N-th distinct approval approves and issues."""
        c = self._c
        grant = await self._decide(grant_id, Event.APPROVE, user=user)
        metrics.record_decision("approve")
        if grant.status is Status.PENDING:  # still short of N (else APPROVED/SCHEDULED)
            await safe(c.notifier.approval_recorded(grant))
            return grant
        metrics.record_request("approved")
        if grant.kind == "extension":
            await safe(c.notifier.decided(grant))
            return await self._extensions.apply(grant)
        # The approvers' copies are brought up to date while the credential is issued and
        # sent: the requester's DM does not wait for them (the notifier serialises updates
        # of one grant's copies, so they end showing the latest state either way).
        active, _ = await c.meanwhile(c.notifier.decided(grant), self._issuer.activate(grant))
        return active

    async def deny(self, grant_id: str, *, user: str, reason: str | None) -> Grant:
        """``user``, an approver now, refuses the pending request ``grant_id``."""
        grant = await self._decide(grant_id, Event.DENY, user=user, reason=reason)
        metrics.record_decision("deny")
        metrics.record_request("denied")
        await safe(self._c.notifier.decided(grant))
        return grant

    async def cancel(self, grant_id: str, *, actor: Actor, reason: str | None = None) -> Grant:
        """``actor`` (its requester, or an operator) withdraws the pending request."""
        cancelled = await self._c.transition(grant_id, Event.CANCEL, actor=actor, reason=reason)
        metrics.record_request("cancelled")
        await safe(self._c.notifier.ended(cancelled))
        return cancelled
