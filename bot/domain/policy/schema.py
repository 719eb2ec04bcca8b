"""The shapes of policies.yaml below its root: pydantic models and their value types.

Every model forbids unknown keys and validates strictly (``"true"`` is not a bool, ``5`` is
not a string). Values are normalised on the way in: durations become int seconds, dates
become :class:`datetime.date`, and regular expressions are checked to compile (and kept as
their source text). Error messages are written for the person editing the file; the loader
prefixes them with ``file:line key.path``.

The root (:class:`~bot.domain.policy.rules.Policy`) and what it resolves to live in
:mod:`bot.domain.policy.rules`; cross-checks in :mod:`bot.domain.policy.checks`; decisions in
:mod:`bot.domain.policy.decisions`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, time
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.domain.clients import window_open
from bot.domain.duration import parse_duration
from bot.errors import UsageError

#: A key path into the policy document, e.g. ("resources", "orders-db", "roles", "write").
Loc = tuple[str | int, ...]

#: How policies.yaml names an environment variable instead of writing a secret: ``${NAME}``
#: (group 1 is the name). :mod:`bot.envrefs` resolves them; the schema and the secret check
#: recognise them.
ENV_REFERENCE_RE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _invalid(message: str) -> PydanticCustomError:
    # The message goes in as context, not as the template, so braces in user text are safe.
    return PydanticCustomError("policy", "{message}", {"message": message})


def _shown(value: object) -> str:
    text = str(value)
    return f'"{text}"' if len(text) <= 40 else f'"{text[:37]}..."'


# --- value types ---------------------------------------------------------------------------


def _to_seconds(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid(f"{_shown(value)} is not a duration")
    if isinstance(value, int):
        # A bare number is ambiguous (seconds? minutes?), so the unit is required.
        raise _invalid(f"{value} is not a duration; write it with a unit, e.g. 15m, 2h, 1d")
    try:
        return parse_duration(value)
    except UsageError as e:
        # parse_duration's message is `"10x" is not a duration; use ...`: keep the first clause.
        raise _invalid(str(e).split(";")[0]) from e


#: A duration written like ``90s``, ``15m``, ``1h30m`` or ``1d``, held as int seconds.
Duration = Annotated[int, BeforeValidator(_to_seconds)]


def _matching(regex: str, what: str) -> Callable[[object], str]:
    """A before-validator accepting strings that fully match ``regex``; ``what`` names them."""
    compiled = re.compile(regex)

    def check(value: object) -> str:
        if not isinstance(value, str) or compiled.fullmatch(value) is None:
            raise _invalid(f"{_shown(value)} is not {what}")
        return value

    return check


UserId = Annotated[str, BeforeValidator(_matching(r"[UW][A-Z0-9]{2,}", "a Slack user id (U...)"))]
UsergroupId = Annotated[
    str, BeforeValidator(_matching(r"S[A-Z0-9]{2,}", "a Slack user-group id (S...)"))
]
MemberId = Annotated[
    str,
    BeforeValidator(
        _matching(r"[UWS][A-Z0-9]{2,}", "a Slack user id (U...) or user-group id (S...)")
    ),
]
ChannelId = Annotated[
    str,
    BeforeValidator(
        _matching(r"[CG][A-Z0-9]{2,}", "a Slack channel id (C...); use the id, not the #name")
    ),
]
#: Names of groups, roles and on-call schedules.
Name = Annotated[
    str,
    BeforeValidator(
        _matching(
            r"[a-z][a-z0-9_-]*", "a valid name (lowercase letters, digits, - and _, letter first)"
        )
    ),
]
ResourceName = Annotated[
    str,
    BeforeValidator(
        _matching(
            r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*",
            "a valid resource name (lowercase words joined by - or _, e.g. orders-db)",
        )
    ),
]
ProviderType = Annotated[
    str, BeforeValidator(_matching(r"[a-z][a-z0-9_]*", "a provider type (e.g. postgres)"))
]
EnvRef = Annotated[
    str,
    BeforeValidator(
        _matching(
            ENV_REFERENCE_RE.pattern,
            "an ${ENV_VAR} reference; secrets are never written literally",
        )
    ),
]


def _env_ref_only(value: object) -> str:
    # Unlike EnvRef's message, this one never repeats the value: it may be the token itself.
    if not isinstance(value, str) or ENV_REFERENCE_RE.fullmatch(value) is None:
        raise _invalid(
            "is not an ${ENV_VAR} reference; a client's token is never written here "
            "(the value is not repeated)"
        )
    return value


#: A ``${VAR}`` naming where a secret is, whose error never shows what was written instead.
SecretRef = Annotated[str, BeforeValidator(_env_ref_only)]
BaseUrl = Annotated[str, BeforeValidator(_matching(r"https?://\S+", "an http(s) URL"))]


def _not_duration(value: str) -> str:
    # `/access request orders-db 30m` must never be ambiguous between a role and a duration.
    try:
        parse_duration(value)
    except UsageError:
        return value
    raise _invalid(f'"{value}" reads as a duration and cannot be a role name')


RoleName = Annotated[Name, AfterValidator(_not_duration)]


def _check_regex(value: object) -> str:
    if not isinstance(value, str):
        raise _invalid(f"{_shown(value)} is not a regular expression (quote it)")
    try:
        re.compile(value)
    except re.error as e:
        raise _invalid(f"{_shown(value)} is not a valid regular expression: {e}") from e
    return value


#: A regular expression, kept as its source text (``re`` caches the compiled form).
Regex = Annotated[str, BeforeValidator(_check_regex)]


def _to_time(value: object) -> time:
    # YAML 1.1 reads an unquoted 9:30 as the base-60 integer 570; accept that reading too.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str) and (m := re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)):
        return time(int(m[1]), int(m[2]))
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = f"{value // 60}:{value % 60:02d}"  # show it as written, not as YAML read it
    raise _invalid(f'{_shown(value)} is not a time of day like "09:00" (24h, UTC)')


ClockTime = Annotated[time, BeforeValidator(_to_time)]
#: Dates come from YAML as date objects; a quoted "2026-06-30" is accepted too.
Day = Annotated[date, Field(strict=False)]


# --- models --------------------------------------------------------------------------------


class Strict(BaseModel):
    """Base of every policy model: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Member(Strict):
    """A group member: a user (U...) or a Slack user group (S...), optionally until a date.

    ``expires`` is the last day (UTC) on which the member counts.
    """

    id: MemberId
    expires: Day | None = None

    def active(self, today: date) -> bool:
        return self.expires is None or today <= self.expires


def _member_from_str(value: object) -> object:
    return {"id": value} if isinstance(value, str) else value


class Group(Strict):
    """A named set of users and user groups, referenced from requesters and approvers."""

    description: str = ""
    members: list[Annotated[Member, BeforeValidator(_member_from_str)]]


class Requesters(Strict):
    """Who may request: listed principals, or ``everyone: true`` (every person; a machine
    client may request only where ``clients`` lists it by name)."""

    users: list[UserId] = []
    groups: list[Name] = []
    usergroups: list[UsergroupId] = []
    clients: list[Name] = []
    everyone: bool = False

    @model_validator(mode="after")
    def _not_empty(self) -> Requesters:
        if not (self.everyone or self.users or self.groups or self.usergroups or self.clients):
            raise _invalid(
                "lists nobody; give users, groups, usergroups, clients or everyone: true"
            )
        return self


class Approvers(Strict):
    """Who may approve (users, groups, usergroups) and where requests are posted (channel).

    The channel is only a delivery target: being in it gives no authority to approve.
    """

    users: list[UserId] = []
    groups: list[Name] = []
    usergroups: list[UsergroupId] = []
    channel: ChannelId | None = None

    @property
    def has_principals(self) -> bool:
        return bool(self.users or self.groups or self.usergroups)

    @model_validator(mode="after")
    def _not_empty(self) -> Approvers:
        if not (self.has_principals or self.channel):
            raise _invalid("lists nobody; give users, groups or usergroups")
        return self


class AutoApproveRule(Strict):
    """Approve without a person when every given condition holds and the duration fits.

    ``incident: false`` (the default) means "no incident condition", not "outside one".
    """

    on_call: Name | None = None
    incident: bool = False
    #: A window of the policy's ``change_windows``: the request must come while it is open.
    change_window: Name | None = None
    max_duration: Duration
    per_user_per_day: Annotated[int, Field(ge=1)] | None = None


class EscalationTier(Strict):
    """After ``escalate_after`` without a decision, also ask ``approvers`` and/or the
    on-call person."""

    escalate_after: Duration
    approvers: Approvers | None = None
    oncall: Name | None = None

    @model_validator(mode="after")
    def _asks_someone(self) -> EscalationTier:
        if self.approvers is None and self.oncall is None:
            raise _invalid("an escalation tier needs approvers, oncall or both")
        return self


class Limits(Strict):
    """The inheritable keys: in ``defaults``, on a resource and on a role.

    A key absent here is inherited from the level above; one present (even ``[]``, or
    ``null`` for require_ticket) overrides it. Lists and principal blocks replace the
    inherited value whole; they are not merged.
    """

    requesters: Requesters | None = None
    approvers: Approvers | None = None
    approvals_required: Annotated[int, Field(ge=1)] | None = None
    allow_self_approval: bool | None = None
    max_duration: Duration | None = None
    default_duration: Duration | None = None
    require_reason: bool | None = None
    require_ticket: Regex | None = None
    request_timeout: Duration | None = None
    auto_approve: list[AutoApproveRule] | None = None
    escalation: list[EscalationTier] | None = None
    #: The requester's lifecycle (issue 13): a reminder this long before a grant ends
    #: (``null``: none); extensions applied without approval while the grant's whole life
    #: stays within this (``null``: approvers decide every one); how far ahead a start may be.
    remind_before: Duration | None = None
    extend_without_approval: Duration | None = None
    max_lead_time: Duration | None = None

    @field_validator("max_lead_time", mode="before")
    @classmethod
    def _lead_time_not_null(cls, value: object) -> object:
        # remind_before and extend_without_approval take null ("off"); a lead time does not.
        if value is None:
            raise _invalid("has no value; give one or remove the key to inherit")
        return value

    @field_validator(
        "requesters",
        "approvers",
        "approvals_required",
        "allow_self_approval",
        "max_duration",
        "default_duration",
        "require_reason",
        "request_timeout",
        "auto_approve",
        "escalation",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only require_ticket has a meaning for null ("no ticket needed"); elsewhere an empty
        # value is almost always a half-finished edit.
        if value is None:
            raise _invalid("has no value; give one or remove the key to inherit")
        return value


class ProviderSpec(Strict):
    """``type`` picks the provider; every other key is a provider-specific setting."""

    model_config = ConfigDict(extra="allow")

    type: ProviderType

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RoleSpec(Limits):
    description: str = ""
    #: Role-level provider settings, merged over the resource's (e.g. grant_roles).
    provider: dict[str, Any] = {}


class ResourceSpec(Limits):
    description: str = ""
    provider: ProviderSpec
    default_role: Name | None = None
    roles: dict[RoleName, RoleSpec]


class StaticSchedule(Strict):
    """A rotation through ``members``: each shift is ``length`` long, starting at ``start``
    (a date) at ``handoff`` (UTC), the first shift going to the first member."""

    type: Literal["static"]
    members: Annotated[list[UserId], Field(min_length=1)]
    handoff: ClockTime = time(9, 0)
    length: Duration = 7 * 86_400
    start: Day


class PagerDutySchedule(Strict):
    type: Literal["pagerduty"]
    schedule_id: str | None = None
    escalation_policy_id: str | None = None
    token: EnvRef
    base_url: BaseUrl | None = None

    @model_validator(mode="after")
    def _one_target(self) -> PagerDutySchedule:
        if (self.schedule_id is None) == (self.escalation_policy_id is None):
            raise _invalid("give exactly one of schedule_id or escalation_policy_id")
        return self


class OpsgenieSchedule(Strict):
    type: Literal["opsgenie"]
    schedule: str
    api_key: EnvRef
    base_url: BaseUrl | None = None


OnCallSource = Annotated[
    StaticSchedule | PagerDutySchedule | OpsgenieSchedule, Field(discriminator="type")
]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Client(Strict):
    """A machine requester (a deploy pipeline, a release job) that asks through the HTTP
    API. Its bearer token is never written here: ``token`` names the environment variable
    that holds it; the running bot keeps only the token's hash."""

    description: str = ""
    token: SecretRef


class ChangeWindow(Strict):
    """A recurring window (UTC) an ``auto_approve`` rule may require: open on ``days`` from
    ``start`` until ``end`` (an ``end`` not after ``start`` runs past midnight)."""

    description: str = ""
    days: Annotated[list[Weekday], Field(min_length=1)] = [
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    ]
    start: ClockTime
    end: ClockTime

    def is_open(self, now: float) -> bool:
        """Whether the window is open at ``now`` (epoch seconds)."""
        return window_open(
            days=frozenset(self.days),
            start_min=self.start.hour * 60 + self.start.minute,
            end_min=self.end.hour * 60 + self.end.minute,
            now=now,
        )
