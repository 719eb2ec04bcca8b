"""The access policy's root and its resolved rules: what policies.yaml says about each role.

Inheritance runs ``defaults`` -> resource -> role: for each limit key the most specific
level that writes it wins; a level that leaves it out inherits. Built-in values apply when no
level sets a key (see :data:`BUILTIN`). Everything here is pure: the date and the membership
of Slack user groups are passed in, never looked up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any, Final

from pydantic import Field

from bot.domain.clients import client_name
from bot.domain.policy.asking_schema import Bundle, OnBehalfRule
from bot.domain.policy.schema import (
    Approvers,
    AutoApproveRule,
    ChangeWindow,
    Client,
    EscalationTier,
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
from bot.domain.reminders import DEFAULT_REMIND_BEFORE_S
from bot.domain.start import DEFAULT_MAX_LEAD_TIME_S
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
        "remind_before": DEFAULT_REMIND_BEFORE_S,
        "extend_without_approval": None,
        "max_lead_time": DEFAULT_MAX_LEAD_TIME_S,
    }
)
_DEFAULT_DURATION_CAP_S: Final = 3_600


class Policy(Strict):
    """The root of policies.yaml. Build it with :func:`bot.policy_loader.parse_policy`,
    which also runs :func:`~bot.domain.policy.checks.check_policy`; a Policy built otherwise
    is not cross-checked."""

    groups: dict[Name, Group] = Field(default_factory=dict)
    defaults: Limits = Limits()
    resources: dict[ResourceName, ResourceSpec]
    #: Channel names (without #) matching this (re.search) count as incident channels.
    incident_channels: Regex | None = None
    #: Where an incident channel's id is read from: searched in the channel topic, then in
    #: its name; the first group (or the whole match) is the id. Unset: the channel name.
    incident_id: Regex | None = None
    oncall: dict[Name, OnCallSource] = Field(default_factory=dict)
    #: Machine requesters that ask through the HTTP API (bot.api), by name.
    clients: dict[Name, Client] = Field(default_factory=dict)
    #: Named recurring windows an auto_approve rule may require (``change_window``).
    change_windows: dict[Name, ChangeWindow] = Field(default_factory=dict)
    #: Who may ask on whose behalf, and named sets of resource/role pairs (issue 13; see
    #: bot/domain/policy/asking.py).
    may_request_for: list[OnBehalfRule] = Field(default_factory=list)
    bundles: dict[Name, Bundle] = Field(default_factory=dict)

    def rule(self, resource: str, role: str | None = None) -> RoleRule:
        """The resolved rule for ``resource``/``role``.

        ``role`` None picks the resource's ``default_role``, else its only role. Raises
        :class:`PolicyDenied` naming what exists when the resource or role is unknown, or
        when no role was given and the resource has several.
        """
        return resolve_rule(self, resource, role)[0]

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


def usergroup_ids(
    blocks: Iterable[Requesters | Approvers | None], *, groups: Mapping[str, Group]
) -> set[str]:
    """Every Slack user-group id ``blocks`` mention, directly or as members of their
    ``groups`` (the ids whose members must be looked up before a rule is judged)."""
    ids: set[str] = set()
    for block in blocks:
        if block is not None:
            ids.update(block.usergroups)
            for name in block.groups:
                group = groups.get(name)
                if group is not None:
                    ids.update(m.id for m in group.members if m.id.startswith("S"))
    return ids


def describe(block: Requesters | Approvers | None) -> str:
    """Principals as people read them: ``group sre, user U024BE7LH, usergroup S0ONCALL``."""
    if block is None:
        return "nobody"
    if isinstance(block, Requesters) and block.everyone:
        return "everyone"
    parts = [f"group {g}" for g in block.groups]
    parts += [f"user {u}" for u in block.users]
    parts += [f"usergroup {s}" for s in block.usergroups]
    if isinstance(block, Requesters):
        parts += [f"client {c}" for c in block.clients]
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
    change_windows: Mapping[str, ChangeWindow] = field(repr=False, default_factory=dict)
    #: The requester's lifecycle (bot.domain.reminders, bot.domain.start): None turns the
    #: reminder / approval-free extensions off.
    remind_before_s: int | None = DEFAULT_REMIND_BEFORE_S
    extend_without_approval_s: int | None = None
    max_lead_time_s: int = DEFAULT_MAX_LEAD_TIME_S

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
        client = client_name(user)
        if client is not None:  # a machine client only where listed by name
            return client in block.clients
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


def resolve_rule(
    policy: Policy, resource: str, role: str | None
) -> tuple[RoleRule, dict[str, Loc]]:
    """The rule for ``resource``/``role`` (as :meth:`Policy.rule`) and, for each limit key
    some level sets, the location that won (the cross-checks point at it)."""
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
        change_windows=policy.change_windows,
        remind_before_s=values["remind_before"],
        extend_without_approval_s=values["extend_without_approval"],
        max_lead_time_s=values["max_lead_time"],
    )
    return rule, where


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy with its identity: ``version`` is the SHA-256 hex of the file."""

    policy: Policy
    version: str
    path: str
    warnings: list[PolicyIssue]
