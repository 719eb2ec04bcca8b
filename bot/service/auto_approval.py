"""Auto-approval: whether an ``auto_approve`` rule approves a new request (on call, in an
incident channel, within the duration cap and the day's limit), and approving it. Never open:
an on-call source that cannot answer makes nobody on call, and the requester is told why the
request went to people."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bot import metrics
from bot.domain.model import Actor, Event, Grant
from bot.domain.policy.decisions import Circumstances, auto_approve_blocker, match_auto_approve
from bot.domain.policy.rules import RoleRule
from bot.oncall.base import OnCallResult
from bot.service.context import ServiceContext, incident_details
from bot.service.explaining import incident_miss_note

#: The audit event of an auto-approval that a rule would have given but something outside the
#: requester's control prevented (it records no grant state change).
AUTO_APPROVE_UNAVAILABLE: Final = "AUTO_APPROVE_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class AutoApproval:
    """The auto-approval verdict on a new request: ``reason`` when approved, else maybe a
    ``note`` saying what stood in the way."""

    reason: str | None = None
    note: str | None = None
    #: The on-call schedule that made the requester eligible, if that was the rule (audited
    #: as ``details.on_call``, so an access review can list on-call grants).
    on_call: str | None = None


class AutoApprover:
    """Judges new requests against their rule's ``auto_approve`` and approves them."""

    def __init__(self, context: ServiceContext) -> None:
        self._c = context
        self._quota = context.store.quota

    async def verdict(self, grant: Grant, rule: RoleRule, *, now: float) -> AutoApproval:
        """Whether an auto_approve rule approves ``grant`` now, and if not whether something
        outside the requester's control stood in the way (then audited, and returned as the
        note to tell them). Never open: an on-call source that cannot answer makes nobody on
        call. A per-day slot is taken atomically only when a rule matches."""
        if not rule.auto_approve:
            return AutoApproval()
        c = self._c
        quota = self._quota
        schedules = [a.on_call for a in rule.auto_approve if a.on_call is not None]
        oncall = (
            await c.oncall.check(grant.requester, now=now, schedules=schedules)
            if schedules
            else OnCallResult()
        )
        who = {"user": grant.requester, "resource": grant.resource, "role": grant.role}
        used = await quota.used(**who, now=now)
        in_incident = grant.origin.incident is not None
        circumstances = Circumstances(
            duration_s=grant.duration_s,
            on_call_schedules=oncall.schedules,
            in_incident=in_incident,
            grants_today=used,
            now=now,
        )
        match = match_auto_approve(rule, **circumstances)
        limit = match.rule.per_user_per_day if match is not None else None
        if limit is not None and not await quota.take(**who, now=now, limit=limit):
            match, used = None, max(used, limit)  # the last slot went to a concurrent request
            circumstances["grants_today"] = used
        if match is not None:
            parts = [f"on call for {match.rule.on_call}"] if match.rule.on_call else []
            if in_incident:
                parts.append(f"in #{grant.origin.channel_name or grant.origin.incident}")
            elif not parts:
                parts.append(match.reason)
            return AutoApproval(
                reason=f"auto-approved: {grant.requester} {', '.join(parts)}",
                on_call=match.rule.on_call,
            )
        blocker = auto_approve_blocker(rule, unavailable=oncall.failures, **circumstances)
        if blocker is None:
            return AutoApproval(note=incident_miss_note(rule, grant, oncall, grants_today=used))
        note = f"auto-approval not possible: {blocker}; asked the approvers"
        await c.audit_note(
            AUTO_APPROVE_UNAVAILABLE,
            actor="auto-approve",
            at=now,
            grant_id=grant.id,
            reason=note,
            details=incident_details(grant),
        )
        return AutoApproval(note=note)

    async def approve(self, grant: Grant, *, reason: str, on_call: str | None, now: float) -> Grant:
        """PENDING -> APPROVED by the policy, audited with ``reason``, the on-call schedule
        that qualified the requester (if any) and the incident. The caller tells the notifier
        (``decided``) when the approvers should hear of it."""
        details = incident_details(grant)
        if on_call is not None:
            details["on_call"] = on_call
        approved = await self._c.transition(
            grant.id,
            Event.AUTO_APPROVE,
            actor=Actor.system("auto-approve"),
            now=now,
            reason=reason,
            details=details,
        )
        metrics.record_request("auto_approved")
        metrics.record_auto_approval(grant.resource)
        return approved
