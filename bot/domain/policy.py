"""The access policy: the validated policies.yaml, its resolved rules and its decisions.

Inheritance runs ``defaults`` -> resource -> role: for each limit key the most specific
level that writes it wins; a level that leaves it out inherits. Built-in values apply when no
level sets a key (see :data:`BUILTIN`). Everything here is pure: the date or time and the
membership of Slack user groups are passed in, never looked up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType
from typing import Any, Final

from pydantic import Field

from bot.domain.duration import format_duration
from bot.domain.policy_schema import (
    Approvers,
    AutoApproveRule,
    EscalationTier,
    Finding,
    Group,
    Limits,
    Loc,
    Name,
    OnCallSource,
    Regex,
    Requesters,
    ResourceName,
    ResourceSpec,
    Strict,
)
from bot.errors import PolicyDenied, PolicyIssue

#: Values used when neither defaults, resource nor role sets a key. default_duration is
#: absent on purpose: unset, it is the smaller of max_duration and one hour.
BUILTIN: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "max_duration": 3_600,
        "request_timeout": 3_600,
        "approvals_required": 1,
        "allow_self_approval": False,
        "require_reason": True,
        "require_ticket": None,
    }
)
_DEFAULT_DURATION_CAP_S: Final = 3_600
# Punctuation stripped from the ends of reason words before matching require_ticket.
_WORD_PUNCTUATION: Final = ".,;:!?()[]{}<>\"'`"


class Policy(Strict):
    """The root of policies.yaml. Build it with :func:`bot.policy_loader.parse_policy`,
    which also runs :func:`check_policy`; a Policy built otherwise is not cross-checked."""

    groups: dict[Name, Group] = Field(default_factory=dict)
    defaults: Limits = Limits()
    resources: dict[ResourceName, ResourceSpec]
    #: Channel names (without #) matching this (re.search) count as incident channels.
    incident_channels: Regex | None = None
    #: Where an incident channel's id is read from: searched in the channel topic, then in
    #: its name; the first group (or the whole match) is the id. Unset: the channel name.
    incident_id: Regex | None = None
    oncall: dict[Name, OnCallSource] = Field(default_factory=dict)

    def rule(self, resource: str, role: str | None = None) -> RoleRule:
        """The resolved rule for ``resource``/``role``.

        ``role`` None picks the resource's ``default_role``, else its only role. Raises
        :class:`PolicyDenied` naming what exists when the resource or role is unknown, or
        when no role was given and the resource has several.
        """
        return _resolve(self, resource, role)[0]

    def has_rule(self, resource: str, role: str) -> bool:
        """True when ``resource`` exists and has ``role``."""
        spec = self.resources.get(resource)
        return spec is not None and role in spec.roles

    def requestable(
        self, user: str, *, today: date, usergroups: Mapping[str, frozenset[str]]
    ) -> list[tuple[str, str, RoleRule]]:
        """Every (resource, role, rule) ``user`` may request, in file order."""
        rules = (
            self.rule(name, role) for name, spec in self.resources.items() for role in spec.roles
        )
        return [
            (r.resource, r.role, r)
            for r in rules
            if r.may_request(user, today=today, usergroups=usergroups)
        ]

    def is_incident_channel(self, channel_name: str) -> bool:
        """True when ``channel_name`` (without #) matches ``incident_channels``."""
        pattern = self.incident_channels
        return pattern is not None and re.search(pattern, channel_name.lstrip("#")) is not None

    def incident_of(self, channel_name: str, *, topic: str = "") -> str | None:
        """The incident id of channel ``channel_name`` (without #) whose topic is ``topic``,
        or None when it is not an incident channel.

        ``incident_id`` is searched in the topic, then in the name; its first group (or the
        whole match) is the id. Without ``incident_id``, or when neither matches, the id is
        the channel name, so a request is always tied to some incident name.
        """
        name = channel_name.lstrip("#")
        if not self.is_incident_channel(name):
            return None
        if self.incident_id is not None:
            for text in (topic, name):
                m = re.search(self.incident_id, text)
                if m is not None:
                    found = m.group(1) if m.re.groups else m.group(0)
                    if found:
                        return found
        return name


# --- resolved rules ------------------------------------------------------------------------


def _in_groups(
    names: Sequence[str],
    user: str,
    *,
    groups: Mapping[str, Group],
    today: date,
    usergroups: Mapping[str, frozenset[str]],
) -> bool:
    for name in names:
        group = groups.get(name)
        if group is None:
            continue
        for member in group.members:
            if not member.active(today):
                continue
            if member.id == user or user in usergroups.get(member.id, frozenset()):
                return True
    return False


def _holds(
    block: Requesters | Approvers,
    user: str,
    *,
    groups: Mapping[str, Group],
    today: date,
    usergroups: Mapping[str, frozenset[str]],
) -> bool:
    # A user group missing from `usergroups` counts as empty: unknown membership never grants.
    return (
        user in block.users
        or any(user in usergroups.get(ug, frozenset()) for ug in block.usergroups)
        or _in_groups(block.groups, user, groups=groups, today=today, usergroups=usergroups)
    )


def describe(block: Requesters | Approvers | None) -> str:
    """Principals as people read them: ``group sre, user U024BE7LH, usergroup S0ONCALL``."""
    if block is None:
        return "nobody"
    if isinstance(block, Requesters) and block.everyone:
        return "everyone"
    parts = [f"group {g}" for g in block.groups]
    parts += [f"user {u}" for u in block.users]
    parts += [f"usergroup {s}" for s in block.usergroups]
    return ", ".join(parts) or "nobody"


@dataclass(frozen=True, slots=True)
class RoleRule:
    """Everything the policy says about one resource role, with inheritance resolved.

    Durations are int seconds. ``role_provider_settings`` is the role's own ``provider``
    block (e.g. grant_roles); the resource's connection settings stay with the resource, as
    providers validate the two separately. ``${ENV}`` references are left as written
    (:func:`bot.envrefs.resolve` expands them).
    """

    resource: str
    role: str
    description: str
    max_duration_s: int
    default_duration_s: int
    request_timeout_s: int
    approvals_required: int
    allow_self_approval: bool
    require_reason: bool
    require_ticket: re.Pattern[str] | None
    requesters: Requesters | None
    approvers: Approvers | None
    auto_approve: tuple[AutoApproveRule, ...]
    escalation: tuple[EscalationTier, ...]
    provider_type: str
    role_provider_settings: Mapping[str, Any]
    groups: Mapping[str, Group] = field(repr=False)

    @property
    def name(self) -> str:
        """``orders-db write``: how messages name this rule."""
        return f"{self.resource} {self.role}"

    def may_request(
        self, user: str, *, today: date, usergroups: Mapping[str, frozenset[str]]
    ) -> bool:
        """True when ``user`` is among the requesters on ``today`` (expired members don't count).

        ``usergroups`` maps Slack user-group ids to their members; a group absent from it is
        treated as empty.
        """
        block = self.requesters
        if block is None:
            return False
        return block.everyone or _holds(
            block, user, groups=self.groups, today=today, usergroups=usergroups
        )

    def is_approver(
        self,
        user: str,
        *,
        today: date,
        usergroups: Mapping[str, frozenset[str]],
        tiers_reached: int = 0,
        on_call_schedules: frozenset[str] = frozenset(),
    ) -> bool:
        """True when ``user`` may approve: listed in approvers' users/groups/usergroups, or
        in the first ``tiers_reached`` escalation tiers (their approvers, or on call for
        their ``oncall`` schedule per ``on_call_schedules``).

        Being in the approvers' channel grants nothing: the channel is where the request is
        posted. Whether the requester may approve their own request is the caller's check
        (``allow_self_approval``).
        """

        def holds(block: Approvers | None) -> bool:
            return block is not None and _holds(
                block, user, groups=self.groups, today=today, usergroups=usergroups
            )

        return holds(self.approvers) or any(
            holds(tier.approvers) or (tier.oncall is not None and tier.oncall in on_call_schedules)
            for tier in self.escalation[:tiers_reached]
        )

    def members_of(
        self, block: Approvers | None, *, today: date, usergroups: Mapping[str, frozenset[str]]
    ) -> set[str]:
        """Slack user ids ``block`` names directly, through groups (members active on
        ``today``) and through user groups (expanded with ``usergroups``; unknown = empty)."""
        if block is None:
            return set()
        found: set[str] = set(block.users)
        for ug in block.usergroups:
            found |= usergroups.get(ug, frozenset())
        for name in block.groups:
            group = self.groups.get(name)
            for member in group.members if group else ():
                if not member.active(today):
                    continue
                if member.id.startswith("S"):
                    found |= usergroups.get(member.id, frozenset())
                else:
                    found.add(member.id)
        return found

    def tiers_reached(self, *, asked_at: float, now: float) -> int:
        """How many escalation tiers a request asked at ``asked_at`` has reached at ``now``:
        a tier is reached once ``escalate_after`` has passed without a decision. Tiers come in
        increasing order of ``escalate_after`` (the policy check insists), so this is a prefix."""
        return sum(1 for tier in self.escalation if asked_at + tier.escalate_after <= now)


def _resolve(policy: Policy, resource: str, role: str | None) -> tuple[RoleRule, dict[str, Loc]]:
    """The rule and, for each limit key some level sets, the location that won."""
    spec = policy.resources.get(resource)
    if spec is None:
        known = ", ".join(policy.resources) or "nothing"
        raise PolicyDenied(f'unknown resource "{resource}"; you may request: {known}')
    roles = list(spec.roles)
    if role is None:
        if spec.default_role is not None:
            role = spec.default_role
        elif len(roles) == 1:
            role = roles[0]
        else:
            raise PolicyDenied(f"{resource} has several roles; name one of: {', '.join(roles)}")
    role_spec = spec.roles.get(role)
    if role_spec is None:
        raise PolicyDenied(f'unknown role "{role}" for {resource}; roles: {", ".join(roles)}')

    levels: list[tuple[Loc, Limits]] = [
        (("resources", resource, "roles", role), role_spec),
        (("resources", resource), spec),
        (("defaults",), policy.defaults),
    ]
    values: dict[str, Any] = dict(BUILTIN)
    where: dict[str, Loc] = {}
    for key in Limits.model_fields:
        for loc, level in levels:
            if key in level.model_fields_set:
                values[key] = getattr(level, key)
                where[key] = (*loc, key)
                break
    max_s: int = values["max_duration"]
    default_s: int = values.get("default_duration") or min(max_s, _DEFAULT_DURATION_CAP_S)
    ticket: str | None = values["require_ticket"]
    rule = RoleRule(
        resource=resource,
        role=role,
        description=role_spec.description or spec.description,
        max_duration_s=max_s,
        default_duration_s=default_s,
        request_timeout_s=values["request_timeout"],
        approvals_required=values["approvals_required"],
        allow_self_approval=values["allow_self_approval"],
        require_reason=values["require_reason"],
        require_ticket=re.compile(ticket) if ticket is not None else None,
        requesters=values.get("requesters"),
        approvers=values.get("approvers"),
        auto_approve=tuple(values.get("auto_approve") or ()),
        escalation=tuple(values.get("escalation") or ()),
        provider_type=spec.provider.type,
        role_provider_settings=MappingProxyType(dict(role_spec.provider)),
        groups=policy.groups,
    )
    return rule, where


# --- cross-checks --------------------------------------------------------------------------


def _limit_blocks(policy: Policy) -> list[tuple[Loc, Limits]]:
    blocks: list[tuple[Loc, Limits]] = [(("defaults",), policy.defaults)]
    for name, spec in policy.resources.items():
        blocks.append((("resources", name), spec))
        blocks += [(("resources", name, "roles", r), rs) for r, rs in spec.roles.items()]
    return blocks


def _check_block(policy: Policy, loc: Loc, limits: Limits) -> list[Finding]:
    """References written in one defaults/resource/role block."""
    found: list[Finding] = []
    known_groups = ", ".join(policy.groups) or "none are defined"
    known_schedules = ", ".join(policy.oncall) or "none are defined"

    def groups_of(block: Requesters | Approvers | None, at: Loc) -> None:
        for i, g in enumerate(block.groups if block else ()):
            if g not in policy.groups:
                found.append(
                    Finding((*at, "groups", i), f'unknown group "{g}"; groups: {known_groups}')
                )

    def schedule(name: str | None, at: Loc) -> None:
        if name is not None and name not in policy.oncall:
            found.append(
                Finding(at, f'unknown on-call schedule "{name}"; oncall: {known_schedules}')
            )

    groups_of(limits.requesters, (*loc, "requesters"))
    groups_of(limits.approvers, (*loc, "approvers"))
    for i, auto in enumerate(limits.auto_approve or ()):
        schedule(auto.on_call, (*loc, "auto_approve", i, "on_call"))
    previous_after = 0
    for i, tier in enumerate(limits.escalation or ()):
        at: Loc = (*loc, "escalation", i)
        groups_of(tier.approvers, (*at, "approvers"))
        schedule(tier.oncall, (*at, "oncall"))
        if tier.escalate_after <= previous_after:
            found.append(
                Finding(
                    (*at, "escalate_after"),
                    "escalation tiers must come in increasing order of escalate_after; "
                    f"{format_duration(tier.escalate_after)} follows "
                    f"{format_duration(previous_after)}",
                )
            )
        previous_after = tier.escalate_after
        if tier.oncall is None and tier.approvers is not None and not tier.approvers.has_principals:
            found.append(
                Finding(
                    (*at, "approvers"),
                    "names only a channel; add users, groups, usergroups or oncall "
                    "(a channel is where requests are posted, not who may approve)",
                )
            )
    return found


def _countable_approvers(rule: RoleRule) -> set[str] | None:
    """Distinct user ids that could approve, or None when some approver set has unknown size
    (a Slack user group, an on-call schedule or an undefined group). Expiry is ignored: the
    check reads no clock."""
    users: set[str] = set()
    blocks = [rule.approvers, *(t.approvers for t in rule.escalation)]
    if any(t.oncall is not None for t in rule.escalation):
        return None
    for block in blocks:
        if block is None:
            continue
        if block.usergroups:
            return None
        users.update(block.users)
        for g in block.groups:
            if g not in rule.groups:
                return None  # reported as an unknown group; don't pile a count error on it
            for member in rule.groups[g].members:
                if member.id.startswith("S"):
                    return None
                users.add(member.id)
    return users


def _check_rule(rule: RoleRule, where: dict[str, Loc], role_loc: Loc) -> list[Finding]:
    found: list[Finding] = []
    name = rule.name
    if rule.requesters is None:
        found.append(
            Finding(
                role_loc,
                f"{name} has no requesters; set requesters (or requesters: {{everyone: true}}) "
                "in defaults, on the resource or on the role",
            )
        )
    approvers = rule.approvers
    if approvers is None:
        found.append(
            Finding(
                role_loc,
                f"{name} has no approvers; set approvers in defaults, on the resource or the role",
            )
        )
    elif not approvers.has_principals:
        found.append(
            Finding(
                where["approvers"],
                "names only a channel; add users, groups or usergroups (a channel is where "
                "requests are posted, not who may approve)",
            )
        )
    else:
        users = _countable_approvers(rule)
        if users is not None and len(users) < rule.approvals_required:
            found.append(
                Finding(
                    where.get("approvals_required", role_loc),
                    f"approvals_required is {rule.approvals_required} but {name} has only "
                    f"{len(users)} approver{'s' if len(users) != 1 else ''}: "
                    f"{', '.join(sorted(users))}",
                )
            )
    if rule.default_duration_s > rule.max_duration_s:
        found.append(
            Finding(
                where.get("default_duration", role_loc),
                f"default_duration {format_duration(rule.default_duration_s)} is above "
                f"max_duration {format_duration(rule.max_duration_s)} for {name}",
            )
        )
    if rule.allow_self_approval and rule.approvals_required == 1:
        found.append(
            Finding(
                where["allow_self_approval"],
                "allow_self_approval with approvals_required 1 lets a requester who is also "
                "an approver approve their own request alone",
                "warning",
            )
        )
    return found


def check_policy(policy: Policy) -> list[Finding]:
    """Every cross-reference and inherited-value problem in a schema-valid policy.

    Errors: unknown group or on-call schedule, unknown default_role, a type in a role's
    provider, escalation tiers out of order, nobody to request or approve, approvers that are
    only a channel, default_duration above max_duration (after inheritance), and
    approvals_required above the number of listed approvers (when that number is knowable).
    Warning: allow_self_approval with approvals_required 1. Each finding appears once.
    """
    found: list[Finding] = []
    for loc, block in _limit_blocks(policy):
        found += _check_block(policy, loc, block)
    for rname, spec in policy.resources.items():
        if spec.default_role is not None and spec.default_role not in spec.roles:
            found.append(
                Finding(
                    ("resources", rname, "default_role"),
                    f'"{spec.default_role}" is not a role of {rname}; roles: '
                    f"{', '.join(spec.roles) or 'none'}",
                )
            )
        if not spec.roles:
            found.append(Finding(("resources", rname, "roles"), f"{rname} has no roles"))
        for role, role_spec in spec.roles.items():
            role_loc: Loc = ("resources", rname, "roles", role)
            if "type" in role_spec.provider:
                found.append(
                    Finding(
                        (*role_loc, "provider", "type"),
                        "the provider type is set on the resource; a role's provider holds "
                        "only settings",
                    )
                )
            rule, where = _resolve(policy, rname, role)
            found += _check_rule(rule, where, role_loc)
    return list(dict.fromkeys(found))  # one finding per (loc, message): defaults repeat


# --- decisions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy with its identity: ``version`` is the SHA-256 hex of the file."""

    policy: Policy
    version: str
    path: str
    warnings: list[PolicyIssue]


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
) -> AutoApproveMatch | None:
    """The first auto_approve rule whose every condition holds, or None.

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
        reasons = [f"on call for {auto.on_call}"] if auto.on_call else []
        reasons += ["in an incident channel"] if auto.incident else []
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


def _only(rule: RoleRule, index: int) -> RoleRule:
    """``rule`` with only its ``index``-th auto_approve rule (to test one at a time)."""
    return replace(rule, auto_approve=(rule.auto_approve[index],))


# --- `grantbot policy check` ---------------------------------------------------------------


def format_summary(loaded: LoadedPolicy) -> str:
    """A plain-text table of every resource role (resource, role, requesters, approvers,
    N = approvals required, max duration) under a header line counting the warnings.

    The warnings themselves are not repeated here: the caller prints ``loaded.warnings``.
    """
    policy = loaded.policy
    header = ("resource", "role", "requesters", "approvers", "N", "max duration")
    rows: list[tuple[str, ...]] = [header]
    for rname, spec in policy.resources.items():
        for role in spec.roles:
            rule = policy.rule(rname, role)
            approvers = describe(rule.approvers)
            if rule.approvers is not None and rule.approvers.channel:
                approvers += f" (posted to {rule.approvers.channel})"
            rows.append(
                (
                    rname,
                    role,
                    describe(rule.requesters),
                    approvers,
                    str(rule.approvals_required),
                    format_duration(rule.max_duration_s),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    table = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    n_roles = len(rows) - 1
    lines = [
        f"{loaded.path}: ok, version {loaded.version[:12]}, {len(policy.resources)} resources, "
        f"{n_roles} roles, {len(loaded.warnings)} warnings",
        "",
        *table,
    ]
    return "\n".join(lines) + "\n"
