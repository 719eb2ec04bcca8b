"""The policy's decisions on one request: accepted or refused, and auto-approved or not.

Pure: the date, the on-call schedules the requester is on now, the incident context and the
day's count of auto-approved grants are passed in, never looked up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Final

from bot.domain.duration import format_duration
from bot.domain.policy.rules import LoadedPolicy, RoleRule, describe
from bot.domain.policy.schema import AutoApproveRule
from bot.errors import PolicyDenied

# Punctuation stripped from the ends of reason words before matching require_ticket.
_WORD_PUNCTUATION: Final = ".,;:!?()[]{}<>\"'`"


@dataclass(frozen=True, slots=True)
class RequestDecision:
    """An accepted request: what to store with it (limits are snapshotted at request time)."""

    rule: RoleRule
    duration_s: int
    approvals_required: int
    allow_self_approval: bool
    request_timeout_s: int
    policy_version: str


def _ticket_candidates(reason: str, tickets: Sequence[str]) -> list[str]:
    words = (w.strip(_WORD_PUNCTUATION) for w in reason.split())
    return [*tickets, *(w for w in words if w)]


def evaluate_request(
    policy: LoadedPolicy,
    *,
    user: str,
    resource: str,
    role: str | None,
    duration_s: int | None,
    reason: str,
    tickets: Sequence[str],
    today: date,
    usergroups: Mapping[str, frozenset[str]],
) -> RequestDecision:
    """Accept a request under the policy, or raise :class:`PolicyDenied` saying why.

    Checked in order: the resource and role exist, ``user`` may request it, the duration
    (``duration_s`` None means the rule's default) is at most max_duration, a reason is given
    when require_reason, and when require_ticket is set some candidate matches it
    (``re.search``). Candidates are the ``tickets`` extracted from the reason plus every
    whitespace-separated word of ``reason`` with surrounding punctuation stripped.
    """
    rule = policy.policy.rule(resource, role)
    if not rule.may_request(user, today=today, usergroups=usergroups):
        raise PolicyDenied(
            f"you may not request {rule.name}; it is open to: {describe(rule.requesters)}"
        )
    duration = rule.default_duration_s if duration_s is None else duration_s
    if duration <= 0:
        raise PolicyDenied(
            f"a duration must be positive; {rule.name} allows up to "
            f"{format_duration(rule.max_duration_s)}"
        )
    if duration > rule.max_duration_s:
        raise PolicyDenied(
            f"{rule.name} is limited to {format_duration(rule.max_duration_s)}; "
            f"you asked for {format_duration(duration)}"
        )
    if rule.require_reason and not reason.strip():
        raise PolicyDenied(f"{rule.name} needs a reason")
    pattern = rule.require_ticket
    if pattern is not None and not any(
        pattern.search(c) for c in _ticket_candidates(reason, tickets)
    ):
        raise PolicyDenied(f"{rule.name} needs a ticket matching {pattern.pattern} in the reason")
    return RequestDecision(
        rule=rule,
        duration_s=duration,
        approvals_required=rule.approvals_required,
        allow_self_approval=rule.allow_self_approval,
        request_timeout_s=rule.request_timeout_s,
        policy_version=policy.version,
    )


@dataclass(frozen=True, slots=True)
class AutoApproveMatch:
    """The auto_approve rule that matched (``index`` in the rule's list) and why."""

    rule: AutoApproveRule
    index: int
    reason: str


def match_auto_approve(
    rule: RoleRule,
    *,
    duration_s: int,
    on_call_schedules: frozenset[str],
    in_incident: bool,
    grants_today: int,
    now: float | None = None,
) -> AutoApproveMatch | None:
    """The first auto_approve rule whose every condition holds, or None.

    A rule naming a ``change_window`` holds only while that window of the policy is open at
    ``now`` (never when ``now`` is not given).

    A rule holds when the duration is within its max_duration, the user is on call for its
    ``on_call`` schedule (``on_call_schedules``: the schedules the user is on call for now),
    the request comes from an incident channel or thread when ``incident: true``, and
    ``grants_today`` (auto-approved grants the user already had today for this resource
    and role) is below ``per_user_per_day``.
    """
    for index, auto in enumerate(rule.auto_approve):
        if duration_s > auto.max_duration:
            continue
        if auto.on_call is not None and auto.on_call not in on_call_schedules:
            continue
        if auto.incident and not in_incident:
            continue
        if auto.per_user_per_day is not None and grants_today >= auto.per_user_per_day:
            continue
        if auto.change_window is not None and not _window_open(rule, auto.change_window, now):
            continue
        reasons = [f"on call for {auto.on_call}"] if auto.on_call else []
        reasons += ["in an incident channel"] if auto.incident else []
        reasons += [f"inside change window {auto.change_window}"] if auto.change_window else []
        reason = ", ".join(reasons) or f"any request up to {format_duration(auto.max_duration)}"
        return AutoApproveMatch(rule=auto, index=index, reason=reason)
    return None


def auto_approve_blocker(
    rule: RoleRule,
    *,
    duration_s: int,
    on_call_schedules: frozenset[str],
    unavailable: Mapping[str, str],
    in_incident: bool,
    grants_today: int,
    now: float | None = None,
) -> str | None:
    """Why no auto_approve rule matched when one would have but for something outside the
    requester's control, for telling them and the thread; None when the request simply does
    not qualify (or did match).

    ``unavailable`` maps schedules whose source could not be asked to the reason. A rule that
    would match if those schedules had listed the requester is blocked by them (never
    open: they did not); one that would match but for ``per_user_per_day`` is blocked by
    the limit. The first such rule, in order, gives the reason.
    """
    if match_auto_approve(
        rule,
        duration_s=duration_s,
        on_call_schedules=on_call_schedules,
        in_incident=in_incident,
        grants_today=grants_today,
        now=now,
    ):
        return None
    hoped = on_call_schedules | frozenset(unavailable)
    for index, auto in enumerate(rule.auto_approve):
        would = match_auto_approve(
            _only(rule, index),
            duration_s=duration_s,
            on_call_schedules=hoped,
            in_incident=in_incident,
            grants_today=0,
            now=now,
        )
        if would is None:
            continue
        if auto.on_call is not None and auto.on_call in unavailable:
            return f"on-call schedule {auto.on_call}: {unavailable[auto.on_call]}"
        if auto.per_user_per_day is not None and grants_today >= auto.per_user_per_day:
            return (
                f"the limit of {auto.per_user_per_day} auto-approved {rule.name} grant"
                f"{'s' if auto.per_user_per_day != 1 else ''} per person per day is reached"
            )
    return None


def _window_open(rule: RoleRule, name: str, now: float | None) -> bool:
    window = rule.change_windows.get(name)
    return window is not None and now is not None and window.is_open(now)


def _only(rule: RoleRule, index: int) -> RoleRule:
    """``rule`` with only its ``index``-th auto_approve rule (to test one at a time)."""
    return replace(rule, auto_approve=(rule.auto_approve[index],))
