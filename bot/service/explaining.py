"""Explaining requests (issue 13, item 5): gathering what
:func:`bot.domain.policy.explain.explain_request` needs from the same sources the service
decides with (the current policy, Slack user groups, the on-call lookup failing closed with
reasons, the day's auto-approval count in the store), and the incident thread's note of the
auto-approval condition that failed. ``grantbot policy explain`` and ``/access explain``
both come here through :meth:`bot.service.GrantService.explain`."""

from __future__ import annotations

from bot.domain.model import Grant
from bot.domain.policy.decisions import check_auto_approve
from bot.domain.policy.explain import Explanation, explain_request, incident_miss
from bot.domain.policy.rules import RoleRule
from bot.oncall.base import OnCallResult, OnCallUnavailable
from bot.service.context import ServiceContext, today


class Explainer:
    """Explains requests under the current policy as the service would judge them."""

    def __init__(self, context: ServiceContext) -> None:
        self._c = context

    async def explain(
        self,
        *,
        user: str,
        resource: str,
        role: str | None,
        at: float,
        duration_s: int | None = None,
        incident: str | None = None,
    ) -> Explanation:
        """The explanation of ``user`` asking at ``at`` from ``incident`` (None: not from one).
        PolicyDenied for an unknown resource or role; StoreUnavailable when the day's count
        cannot be read (an explanation is never guessed)."""
        c = self._c
        loaded = c.policy.current
        rule = loaded.policy.rule(resource, role)
        members = await c.usergroups_for(rule)
        wanted = [a.on_call for a in rule.auto_approve if a.on_call is not None]
        on_call = await c.oncall.check(user, now=at, schedules=wanted) if wanted else OnCallResult()
        used = await c.store.quota.used(user=user, resource=rule.resource, role=rule.role, now=at)
        tier_on_call: dict[str, frozenset[str] | None] = {}
        for tier in rule.escalation:
            if tier.oncall is not None and tier.oncall not in tier_on_call:
                try:
                    tier_on_call[tier.oncall] = await c.oncall.members(tier.oncall, now=at)
                except OnCallUnavailable:
                    tier_on_call[tier.oncall] = None
        return explain_request(
            loaded,
            user=user,
            resource=rule.resource,
            role=rule.role,
            duration_s=duration_s,
            today=today(at),
            usergroups=members,
            on_call_schedules=on_call.schedules,
            unavailable=on_call.failures,
            incident=incident,
            grants_today=used,
            tier_on_call=tier_on_call,
            now=at,
        )


def incident_miss_note(
    rule: RoleRule, grant: Grant, on_call: OnCallResult, *, grants_today: int
) -> str | None:
    """For the thread of a request from an incident that an auto_approve rule could have
    approved and did not: which condition failed (not on call, the day's limit used, the
    duration over the cap), judged by :func:`check_auto_approve` as the decision was."""
    checks = check_auto_approve(
        rule,
        duration_s=grant.duration_s,
        on_call_schedules=on_call.schedules,
        in_incident=grant.origin.incident is not None,
        grants_today=grants_today,
        unavailable=on_call.failures,
        now=grant.created_at,
    )
    why = incident_miss(checks, incident=grant.origin.incident)
    return None if why is None else f"not auto-approved: {why}; asked the approvers"
