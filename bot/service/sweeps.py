"""What ``grantbot serve`` sweeps every few seconds, each safe on every replica: pending
requests past their time-out lapse, escalation tiers reached are asked (each tier claimed once
in Redis), approved grants whose issuing never finished are taken back, and providers remove
their leftovers."""

from __future__ import annotations

import logging
from typing import Any, Final

from bot import metrics
from bot.domain.duration import format_duration
from bot.domain.model import Actor, Event, Grant, Status
from bot.domain.policy.rules import RoleRule
from bot.domain.policy.schema import EscalationTier
from bot.errors import GrantbotError, PolicyDenied
from bot.oncall.base import OnCallUnavailable
from bot.service.context import ServiceContext, incident_details, safe, today
from bot.service.issuing import Issuer

log = logging.getLogger(__name__)

#: An APPROVED grant not ACTIVE after this long lost its issuing (a crash, a Redis failure
#: between issuing at the target and storing ACTIVE); issuing itself takes seconds.
STUCK_APPROVED_S: Final = 300.0

#: The audit event of a request reaching an escalation tier (it records no grant state change).
ESCALATED: Final = "ESCALATED"


class Sweeps:
    """Time-outs, escalations and stuck approvals."""

    def __init__(self, context: ServiceContext, *, issuer: Issuer) -> None:
        self._c = context
        self._issuer = issuer
        self._escalations = context.store.escalations

    async def time_out_due(self) -> list[Grant]:
        """Lapse every PENDING request past its request_timeout (safe on every replica)."""
        c = self._c
        now = c.clock()
        lapsed = []
        for grant_id in await c.store.due_pending(now):
            try:
                lapsed_one = await c.transition(
                    grant_id,
                    Event.TIME_OUT,
                    actor=Actor.system("timeout"),
                    now=now,
                    reason="no decision in time",
                )
            except Exception as e:  # decided meanwhile, or gone: nothing to lapse
                log.debug("not timing out %s: %s", grant_id, e)
                continue
            lapsed.append(lapsed_one)
            metrics.record_request("timed_out")
            await safe(c.notifier.ended(lapsed_one))
        return lapsed

    async def fail_stuck_approved(self) -> list[Grant]:
        """APPROVED grants whose issuing never finished (the process died, or Redis failed
        between issuing at the target and storing ACTIVE) for :data:`STUCK_APPROVED_S`: take
        back whatever the target may hold and mark them FAILED. Safe on every replica."""
        cutoff = self._c.clock() - STUCK_APPROVED_S
        failed = []
        for grant in await self._c.store.in_status(Status.APPROVED):
            # updated_at: a scheduled grant is APPROVED at its START, long after its approval.
            if grant.kind != "access" or max(grant.approved_at or 0, grant.updated_at) > cutoff:
                continue
            try:
                failed.append(
                    await self._issuer.take_back_approved(grant, why="issuing did not complete")
                )
            except GrantbotError as e:
                log.warning("could not close stuck approved grant %s: %s", grant.id, e)
        return failed

    async def escalate_due(self) -> list[tuple[Grant, int]]:
        """Ask the next escalation tier of every PENDING request that reached one: (grant,
        tier) for each tier asked now (1-based). Safe on every replica: each tier of each
        request is claimed once in Redis (the first replica to claim it asks)."""
        c = self._c
        now = c.clock()
        asked: list[tuple[Grant, int]] = []
        policy = c.policy.current.policy
        for grant in await c.store.in_status(Status.PENDING):
            try:
                rule = policy.rule(grant.resource, grant.role)
            except PolicyDenied:
                continue  # no longer in the policy: it will lapse; nobody new to ask
            reached = rule.tiers_reached(asked_at=grant.created_at, now=now)
            for index in range(reached):
                if not await self._escalations.claim(grant.id, tier=index + 1, now=now):
                    continue
                await self._escalate(grant, rule, rule.escalation[index], tier=index + 1, now=now)
                await self._escalations.done(grant.id, tier=index + 1, now=now)
                asked.append((grant, index + 1))
        return asked

    async def _escalate(
        self, grant: Grant, rule: RoleRule, spec: EscalationTier, *, tier: int, now: float
    ) -> None:
        """Audit that ``grant`` reached tier ``tier`` and ask its approvers and whoever is on
        call for its schedule (a source that cannot say is audited with its reason)."""
        c = self._c
        members = await c.usergroups_for(rule)
        users = rule.members_of(spec.approvers, today=today(now), usergroups=members)
        details: dict[str, Any] = {"tier": tier, "escalate_after_s": spec.escalate_after}
        if spec.oncall is not None:
            details["oncall"] = spec.oncall
            try:
                on_call = await c.oncall.members(spec.oncall, now=now)
            except OnCallUnavailable as e:
                details["oncall_error"] = str(e)
            else:
                details["on_call"] = sorted(on_call)
                users |= on_call
        if not grant.allow_self_approval:
            users.difference_update(grant.askers)
        channel = spec.approvers.channel if spec.approvers is not None else None
        details["asked"] = sorted(users)
        if channel is not None:
            details["channel"] = channel
        await c.audit_note(
            ESCALATED,
            actor="escalation",
            at=now,
            grant_id=grant.id,
            reason=f"no decision within {format_duration(spec.escalate_after)}",
            details={**details, **incident_details(grant)},
        )
        log.info("%s escalated to tier %d", grant.id, tier, extra={"grant_id": grant.id})
        await safe(c.notifier.escalated(grant, tier=tier, users=sorted(users), channel=channel))
