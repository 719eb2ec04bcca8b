"""What the policy would do with one person's request, explained before they ask.

``grantbot policy explain`` and ``/access explain`` show it; the incident thread is told the
same reason when a request from an incident could have been auto-approved and was not. Every
verdict here comes from the functions the service decides with
(:mod:`bot.domain.policy.decisions`): may they ask (:func:`requester_refusal`,
:func:`duration_refusal`), would an auto_approve rule apply (:func:`check_auto_approve`),
never a second reading of the rules.

Pure: the date, the on-call answers, the incident and the day's count are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from bot.domain.duration import format_duration
from bot.domain.policy.decisions import (
    AutoApproveCheck,
    AutoApproveMatch,
    approvers_available,
    blocker_of,
    check_auto_approve,
    closest_miss,
    duration_refusal,
    first_match,
    requester_refusal,
)
from bot.domain.policy.rules import LoadedPolicy, RoleRule


@dataclass(frozen=True, slots=True)
class TierView:
    """One escalation tier: after how long, whom it adds (ids), and its on-call schedule
    with who is on call now (``on_call_now`` None: its source could not say)."""

    after_s: int
    approvers: tuple[str, ...]
    channel: str | None
    oncall: str | None
    on_call_now: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Explanation:
    """The policy's answer for ``user`` asking ``rule`` for ``duration_s`` at one moment."""

    user: str
    rule: RoleRule
    duration_s: int
    incident: str | None
    refusal: str | None
    approvers: tuple[str, ...]
    approval_channel: str | None
    checks: tuple[AutoApproveCheck, ...]
    match: AutoApproveMatch | None
    blocker: str | None
    tiers: tuple[TierView, ...]
    #: Only escalation or auto-approval could approve it (:func:`approvers_available`).
    approver_note: str | None = None
    #: The user's auto-approved grants today (what ``per_user_per_day`` counts).
    grants_today: int = 0

    @property
    def may_request(self) -> bool:
        return self.refusal is None

    @property
    def auto_approves(self) -> bool:
        """True when a request now would be approved by the policy at once."""
        return self.may_request and self.match is not None


def explain_request(
    policy: LoadedPolicy,
    *,
    user: str,
    resource: str,
    role: str | None,
    duration_s: int | None,
    today: date,
    usergroups: Mapping[str, frozenset[str]],
    on_call_schedules: frozenset[str],
    unavailable: Mapping[str, str],
    incident: str | None,
    grants_today: int,
    tier_on_call: Mapping[str, frozenset[str] | None],
    now: float | None = None,
) -> Explanation:
    """Explain ``user`` asking ``resource``/``role`` (None: its default role) for
    ``duration_s`` (None: the rule's default). Raises PolicyDenied for an unknown resource
    or role, as a request would. ``tier_on_call`` maps escalation schedules to who is on
    call for them (None: unknown). ``now``: the moment asked about (a change window an
    auto_approve rule names is judged open or not then)."""
    rule = policy.policy.rule(resource, role)
    duration = rule.default_duration_s if duration_s is None else duration_s
    refusal = requester_refusal(
        rule, user=user, today=today, usergroups=usergroups
    ) or duration_refusal(rule, duration_s=duration)
    count = approvers_available(rule, askers=[user], today=today, usergroups=usergroups)
    refusal = refusal or count.refusal
    checks = check_auto_approve(
        rule,
        duration_s=duration,
        on_call_schedules=on_call_schedules,
        in_incident=incident is not None,
        grants_today=grants_today,
        unavailable=unavailable,
        now=now,
    )
    approvers = rule.members_of(rule.approvers, today=today, usergroups=usergroups)
    tiers = tuple(
        TierView(
            after_s=tier.escalate_after,
            approvers=tuple(
                sorted(rule.members_of(tier.approvers, today=today, usergroups=usergroups))
            ),
            channel=tier.approvers.channel if tier.approvers is not None else None,
            oncall=tier.oncall,
            on_call_now=(
                None
                if tier.oncall is None or tier_on_call.get(tier.oncall) is None
                else tuple(sorted(tier_on_call[tier.oncall] or ()))
            ),
        )
        for tier in rule.escalation
    )
    return Explanation(
        user=user,
        rule=rule,
        duration_s=duration,
        incident=incident,
        refusal=refusal,
        approvers=tuple(sorted(approvers)),
        approval_channel=rule.approvers.channel if rule.approvers is not None else None,
        checks=checks,
        match=first_match(checks),
        blocker=blocker_of(checks),
        tiers=tiers,
        approver_note=count.note,
        grants_today=grants_today,
    )


def incident_miss(checks: tuple[AutoApproveCheck, ...], *, incident: str | None) -> str | None:
    """For a request from an incident that an auto_approve rule could have approved and did
    not: the failing conditions of the rule that came nearest, for the thread. None outside
    an incident, when a rule held, or when the rule has no auto_approve."""
    if incident is None:
        return None
    nearest = closest_miss(checks)
    return None if nearest is None else nearest.why_not


def render(
    explanation: Explanation,
    *,
    person: Callable[[str], str],
    place: Callable[[str], str],
    now_text: str,
) -> list[str]:
    """The explanation as lines of text; ``person`` names a user id and ``place`` a channel
    id (mentions in Slack, ids or names at the CLI); ``now_text`` says when "now" is."""
    e, rule = explanation, explanation.rule
    lines = [f"{rule.name} for {person(e.user)}, {format_duration(e.duration_s)}, {now_text}:"]
    if e.refusal is None:
        lines.append("• May ask: yes")
    else:
        lines.append(f"• May ask: no: {e.refusal}")
    ticket = f"; a ticket matching {rule.require_ticket.pattern}" if rule.require_ticket else ""
    lines.append(
        f"• Limits: up to {format_duration(rule.max_duration_s)} (default "
        f"{format_duration(rule.default_duration_s)}); undecided requests lapse after "
        f"{format_duration(rule.request_timeout_s)}; "
        f"{'a reason' if rule.require_reason else 'no reason'} needed{ticket}"
    )
    who = ", ".join(person(u) for u in e.approvers) or "nobody"
    where = f", posted in {place(e.approval_channel)}" if e.approval_channel else ""
    self_note = "may" if rule.allow_self_approval else "may not"
    lines.append(
        f"• Approvers: {rule.approvals_required} of {who}{where} (a requester {self_note} "
        "approve their own request)"
    )
    if e.approver_note is not None:
        lines.append(f"• Note: {e.approver_note}")
    if not e.checks:
        lines.append("• Auto-approval: none for this role")
    elif e.auto_approves and e.match is not None:
        lines.append(f"• Auto-approval: yes, now ({e.match.reason}{_limit(e)})")
    else:
        prefix = "no (they may not ask)" if e.refusal is not None else "not now"
        lines.append(f"• Auto-approval: {prefix}")
        for check in e.checks:
            status = "holds" if check.holds else f"fails: {check.why_not}"
            described = _describe_auto(check, used=e.grants_today)
            lines.append(f"    rule {check.index + 1} ({described}): {status}")
    for number, tier in enumerate(e.tiers, start=1):
        asks = [person(u) for u in tier.approvers]
        if tier.oncall is not None:
            if tier.on_call_now is None:
                asks.append(f"on call for {tier.oncall} (unknown now)")
            else:
                now_on = ", ".join(person(u) for u in tier.on_call_now) or "nobody"
                asks.append(f"on call for {tier.oncall} (now: {now_on})")
        lines.append(
            f"• Escalation {number}: after {format_duration(tier.after_s)}, also " + ", ".join(asks)
        )
    return lines


def _limit(e: Explanation) -> str:
    """The daily limit of the rule that matched, and how much of it is used today."""
    limit = e.match.rule.per_user_per_day if e.match is not None else None
    return "" if limit is None else f"; {e.grants_today} of {limit} a day used today"


def _describe_auto(check: AutoApproveCheck, *, used: int) -> str:
    auto = check.rule
    parts = [f"up to {format_duration(auto.max_duration)}"]
    if auto.on_call is not None:
        parts.append(f"on call for {auto.on_call}")
    if auto.incident:
        parts.append("in an incident")
    if auto.per_user_per_day is not None:
        parts.append(f"{auto.per_user_per_day} a day, {used} used today")
    return ", ".join(parts)
