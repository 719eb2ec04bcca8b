"""Gathering what :func:`bot.domain.policy.explain.explain_request` needs, from the same
sources the service decides with: the current policy, Slack user groups, the on-call lookup
(failing closed, with reasons) and the day's auto-approval count in the store.

The CLI (``grantbot policy explain``) and ``/access explain`` both come here through
:meth:`bot.service.GrantService.explain`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from bot.domain.model import Grant
from bot.domain.policy.decisions import check_auto_approve
from bot.domain.policy.explain import Explanation, explain_request, incident_miss
from bot.domain.policy.rules import RoleRule
from bot.oncall.base import OnCallResult, OnCallUnavailable
from bot.policy_holder import PolicyHolder


class _Usergroups(Protocol):
    async def members(self, usergroup_ids: Iterable[str]) -> Mapping[str, frozenset[str]]: ...


class _OnCall(Protocol):
    async def check(
        self, user: str, *, now: float, schedules: Iterable[str] | None = None
    ) -> OnCallResult: ...

    async def members(self, schedule: str, *, now: float) -> frozenset[str]: ...


class _Quota(Protocol):
    async def used(self, *, user: str, resource: str, role: str, now: float) -> int: ...


class Explainer:
    """Explains requests under ``policy`` as the service would judge them at a given time."""

    def __init__(
        self,
        *,
        policy: PolicyHolder,
        usergroups: _Usergroups,
        oncall: _OnCall,
        quota: _Quota,
        usergroups_of: Callable[[RoleRule], set[str]],
    ) -> None:
        self.policy = policy
        self.usergroups = usergroups
        self.oncall = oncall
        self.quota = quota
        self.usergroups_of = usergroups_of

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
        loaded = self.policy.current
        rule = loaded.policy.rule(resource, role)
        ids = self.usergroups_of(rule)
        members = await self.usergroups.members(ids) if ids else {}
        wanted = [a.on_call for a in rule.auto_approve if a.on_call is not None]
        on_call = (
            await self.oncall.check(user, now=at, schedules=wanted) if wanted else OnCallResult()
        )
        used = await self.quota.used(user=user, resource=rule.resource, role=rule.role, now=at)
        tier_on_call: dict[str, frozenset[str] | None] = {}
        for tier in rule.escalation:
            if tier.oncall is not None and tier.oncall not in tier_on_call:
                try:
                    tier_on_call[tier.oncall] = await self.oncall.members(tier.oncall, now=at)
                except OnCallUnavailable:
                    tier_on_call[tier.oncall] = None
        return explain_request(
            loaded,
            user=user,
            resource=rule.resource,
            role=rule.role,
            duration_s=duration_s,
            today=datetime.fromtimestamp(at, tz=UTC).date(),
            usergroups=members,
            on_call_schedules=on_call.schedules,
            unavailable=on_call.failures,
            incident=incident,
            grants_today=used,
            tier_on_call=tier_on_call,
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
    )
    why = incident_miss(checks, incident=grant.origin.incident)
    return None if why is None else f"not auto-approved: {why}; asked the approvers"
