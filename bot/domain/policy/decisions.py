"""The policy's decisions on one request: accepted or refused, and auto-approved or not.

Pure: the date, the on-call schedules the requester is on now, the incident context and the
day's count of auto-approved grants are passed in, never looked up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final, NotRequired, TypedDict, Unpack

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
    #: Only escalation or auto-approval could approve it (:func:`approvers_available`): the
    #: requester is told so with the confirmation.
    approver_note: str | None = None


def _ticket_candidates(reason: str, tickets: Sequence[str]) -> list[str]:
    words = (w.strip(_WORD_PUNCTUATION) for w in reason.split())
    return [*tickets, *(w for w in words if w)]


def requester_refusal(
    rule: RoleRule, *, user: str, today: date, usergroups: Mapping[str, frozenset[str]]
) -> str | None:
    """Why ``user`` may not request ``rule`` (worded for them), or None when they may."""
    if rule.may_request(user, today=today, usergroups=usergroups):
        return None
    return f"you may not request {rule.name}; it is open to: {describe(rule.requesters)}"


def duration_refusal(rule: RoleRule, *, duration_s: int) -> str | None:
    """Why ``duration_s`` is refused for ``rule`` (not positive, over max_duration), or None."""
    if duration_s <= 0:
        return (
            f"a duration must be positive; {rule.name} allows up to "
            f"{format_duration(rule.max_duration_s)}"
        )
    if duration_s > rule.max_duration_s:
        return (
            f"{rule.name} is limited to {format_duration(rule.max_duration_s)}; "
            f"you asked for {format_duration(duration_s)}"
        )
    return None


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
    refused = requester_refusal(rule, user=user, today=today, usergroups=usergroups)
    duration = rule.default_duration_s if duration_s is None else duration_s
    refused = refused or duration_refusal(rule, duration_s=duration)
    if refused is not None:
        raise PolicyDenied(refused)
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


class Unmet(StrEnum):
    """A condition of an auto_approve rule that does not hold."""

    DURATION = "duration"  # over the rule's max_duration
    NOT_ON_CALL = "not_on_call"  # the source answered: the user is not on call
    ON_CALL_UNKNOWN = "on_call_unknown"  # the source could not be asked
    NOT_INCIDENT = "not_incident"
    DAILY_LIMIT = "daily_limit"  # per_user_per_day used up
    OUTSIDE_WINDOW = "outside_window"  # the change window it names is not open now


#: The conditions outside the requester's control: a rule failing only on these "would have"
#: applied (see :func:`auto_approve_blocker`).
CIRCUMSTANTIAL: Final = frozenset({Unmet.ON_CALL_UNKNOWN, Unmet.DAILY_LIMIT})


@dataclass(frozen=True, slots=True)
class AutoApproveCheck:
    """One auto_approve rule judged against one request: each condition that fails, in the
    order they are checked, with the words that say so (``failed`` empty: it applies)."""

    rule: AutoApproveRule
    index: int
    failed: tuple[tuple[Unmet, str], ...]

    @property
    def holds(self) -> bool:
        return not self.failed

    @property
    def why_not(self) -> str:
        """The failing conditions as one phrase (``""`` when the rule holds)."""
        return "; ".join(text for _, text in self.failed)


def check_auto_approve(
    rule: RoleRule,
    *,
    duration_s: int,
    on_call_schedules: frozenset[str],
    in_incident: bool,
    grants_today: int,
    unavailable: Mapping[str, str] | None = None,
    now: float | None = None,
) -> tuple[AutoApproveCheck, ...]:
    """Every auto_approve rule of ``rule``, in order, with the conditions that fail.

    A rule holds when the duration is within its max_duration, the user is on call for its
    ``on_call`` schedule (``on_call_schedules``: the schedules the user is on call for now;
    ``unavailable`` maps schedules whose source could not be asked to the reason), the
    request comes from an incident channel or thread when ``incident: true``, and
    ``grants_today`` (auto-approved grants the user already had today for this resource
    and role) is below ``per_user_per_day``, and the policy's ``change_window`` it names, if
    any, is open at ``now`` (never when ``now`` is not given). This is the one place these
    conditions are read: the service's decision and ``policy explain`` both come from here.
    """
    unavailable = unavailable or {}
    checks = []
    for index, auto in enumerate(rule.auto_approve):
        failed: list[tuple[Unmet, str]] = []
        if duration_s > auto.max_duration:
            failed.append(
                (
                    Unmet.DURATION,
                    f"the duration {format_duration(duration_s)} is over the cap of "
                    f"{format_duration(auto.max_duration)}",
                )
            )
        if auto.on_call is not None and auto.on_call not in on_call_schedules:
            if auto.on_call in unavailable:
                failed.append(
                    (
                        Unmet.ON_CALL_UNKNOWN,
                        f"on-call schedule {auto.on_call}: {unavailable[auto.on_call]}",
                    )
                )
            else:
                failed.append((Unmet.NOT_ON_CALL, f"not on call for {auto.on_call}"))
        if auto.incident and not in_incident:
            failed.append((Unmet.NOT_INCIDENT, "not an incident channel or thread"))
        if auto.per_user_per_day is not None and grants_today >= auto.per_user_per_day:
            limit = auto.per_user_per_day
            failed.append(
                (
                    Unmet.DAILY_LIMIT,
                    f"the limit of {limit} auto-approved {rule.name} grant"
                    f"{'s' if limit != 1 else ''} per person per day is reached",
                )
            )
        if auto.change_window is not None and not _window_open(rule, auto.change_window, now):
            failed.append((Unmet.OUTSIDE_WINDOW, f"outside change window {auto.change_window}"))
        checks.append(AutoApproveCheck(rule=auto, index=index, failed=tuple(failed)))
    return tuple(checks)


def _match_reason(auto: AutoApproveRule) -> str:
    reasons = [f"on call for {auto.on_call}"] if auto.on_call else []
    reasons += ["in an incident channel"] if auto.incident else []
    reasons += [f"inside change window {auto.change_window}"] if auto.change_window else []
    return ", ".join(reasons) or f"any request up to {format_duration(auto.max_duration)}"


def first_match(checks: Sequence[AutoApproveCheck]) -> AutoApproveMatch | None:
    """The first rule of ``checks`` that holds, as a match; None when none does."""
    for check in checks:
        if check.holds:
            return AutoApproveMatch(
                rule=check.rule, index=check.index, reason=_match_reason(check.rule)
            )
    return None


class Circumstances(TypedDict):
    """What :func:`check_auto_approve` judges besides the rule (and ``unavailable``), as the
    keyword arguments :func:`match_auto_approve` and :func:`auto_approve_blocker` pass on."""

    duration_s: int
    on_call_schedules: frozenset[str]
    in_incident: bool
    grants_today: int
    now: NotRequired[float | None]


def match_auto_approve(
    rule: RoleRule, **circumstances: Unpack[Circumstances]
) -> AutoApproveMatch | None:
    """The first auto_approve rule whose every condition holds (:func:`check_auto_approve`),
    or None."""
    return first_match(check_auto_approve(rule, **circumstances))


def blocker_of(checks: Sequence[AutoApproveCheck]) -> str | None:
    """What outside the requester's control stood in the way, when no rule holds: the first
    rule failing only on :data:`CIRCUMSTANTIAL` conditions names its first (an on-call source
    that could not answer, else the day's limit). None when a rule holds or none is close."""
    if first_match(checks) is not None:
        return None
    for check in checks:
        kinds = [kind for kind, _ in check.failed]
        if kinds and all(kind in CIRCUMSTANTIAL for kind in kinds):
            for wanted in (Unmet.ON_CALL_UNKNOWN, Unmet.DAILY_LIMIT):
                for kind, text in check.failed:
                    if kind is wanted:
                        return text
    return None


def closest_miss(checks: Sequence[AutoApproveCheck]) -> AutoApproveCheck | None:
    """The rule that came nearest (fewest failing conditions, the first on a tie) when none
    holds; None when one holds or there are none. Told where people wait: which condition
    failed."""
    if not checks or first_match(checks) is not None:
        return None
    return min(checks, key=lambda c: (len(c.failed), c.index))


def auto_approve_blocker(
    rule: RoleRule, *, unavailable: Mapping[str, str], **circumstances: Unpack[Circumstances]
) -> str | None:
    """Why no auto_approve rule matched when one would have but for something outside the
    requester's control, for telling them and the thread; None when the request simply does
    not qualify (or did match).

    ``unavailable`` maps schedules whose source could not be asked to the reason. A rule that
    would match if those schedules had listed the requester is blocked by them (never
    open: they did not); one that would match but for ``per_user_per_day`` is blocked by
    the limit. The first such rule, in order, gives the reason.
    """
    return blocker_of(check_auto_approve(rule, unavailable=unavailable, **circumstances))


def _window_open(rule: RoleRule, name: str, now: float | None) -> bool:
    window = rule.change_windows.get(name)
    return window is not None and now is not None and window.is_open(now)


@dataclass(frozen=True, slots=True)
class ApproverCount:
    """Who can approve a request as far as is known when it is asked: ``refusal`` when too
    few (nobody may file it), ``note`` when only escalation could (it may be filed)."""

    refusal: str | None = None
    note: str | None = None


def approvers_available(
    rule: RoleRule,
    *,
    askers: Sequence[str],
    today: date,
    usergroups: Mapping[str, frozenset[str]],
) -> ApproverCount:
    """Whether enough people may approve a request of ``rule`` by ``askers`` (the requester
    and, on their behalf, who asked): the rule's approvers (users, groups, resolved user
    groups) less the askers unless ``allow_self_approval``, against approvals_required.
    Escalation tiers may add approvers (on call, later) and auto_approve may approve it, so
    a rule with either is not refused; its note says only that can approve it."""
    eligible = rule.members_of(rule.approvers, today=today, usergroups=usergroups)
    if not rule.allow_self_approval:
        eligible -= set(askers)
    need = rule.approvals_required
    if len(eligible) >= need:
        return ApproverCount()
    if rule.escalation or rule.auto_approve:
        # Escalation tiers (on call among them) may add approvers later, and an auto_approve
        # rule may approve it without anyone: not refused, but said.
        how = " and ".join(
            w
            for w, on in (("escalation", rule.escalation), ("auto-approval", rule.auto_approve))
            if on
        )
        return ApproverCount(
            note=(
                f"only {how} can approve {rule.name}: {len(eligible)} approver(s) besides "
                f"its askers, it needs {need}"
            )
        )
    others = ", ".join(f"<@{u}>" for u in sorted(eligible))
    if not eligible:
        who = (
            "nobody but you may approve"
            if len(askers) == 1
            else "nobody but the askers may approve"
        )
        return ApproverCount(refusal=f"{who} {rule.name}; ask the policy owners to add an approver")
    return ApproverCount(
        refusal=(
            f"{rule.name} needs {need} approvals but only {others} may approve it "
            f"(not its askers); ask the policy owners to add an approver"
        )
    )
