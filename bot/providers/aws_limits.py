"""AWS's limits on how long access lasts, checked where they can be known. Pure.

STS ``AssumeRole`` sessions last from 15 minutes to the role's ``MaxSessionDuration`` (1 to 12
hours, set on the role in IAM), and at most 1 hour when the caller is itself a role's session
("role chaining": an instance or task role, or credentials from another AssumeRole). An IAM
Identity Center permission set has its own session duration (1 to 12 hours): a portal
session opened while the assignment exists lasts that long whatever grantbot does.

Three places use these: ``grantbot policy check`` (a role whose max_duration or
default_duration can never be met is an error), the request (refused with the reason before
anyone is asked) and issuing (the duration asked of AWS).
"""

from __future__ import annotations

import re
from typing import Final

from bot.domain.duration import format_duration
from bot.providers.base import RoleLimits, SettingsFinding

#: AssumeRole's DurationSeconds bounds, and the cap when grantbot's own credentials are a role's.
STS_MIN_S: Final = 900
STS_MAX_S: Final = 43_200
ROLE_CHAINING_MAX_S: Final = 3_600
#: A role's MaxSessionDuration, as IAM allows it to be set.
ROLE_MAX_SESSION_MIN_S: Final = 3_600

_ISO_DURATION_RE: Final = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)


def sts_limit_s(*, max_session_s: int | None, role_chaining: bool) -> int:
    """The longest session AWS will give: the role's MaxSessionDuration (12 h when unknown),
    and at most 1 hour when role chaining."""
    limit = STS_MAX_S if max_session_s is None else min(max_session_s, STS_MAX_S)
    return min(limit, ROLE_CHAINING_MAX_S) if role_chaining else limit


def sts_duration_refusal(
    duration_s: int, *, max_session_s: int | None, role_chaining: bool, role_name: str
) -> str | None:
    """Why AWS cannot give a session of ``duration_s``, for the requester; None if it can."""
    if duration_s < STS_MIN_S:
        return (
            f"AWS STS credentials last at least {format_duration(STS_MIN_S)}; "
            f"ask for {format_duration(STS_MIN_S)} or more"
        )
    limit = sts_limit_s(max_session_s=max_session_s, role_chaining=role_chaining)
    if duration_s <= limit:
        return None
    if role_chaining and limit == ROLE_CHAINING_MAX_S:
        why = (
            "grantbot's own AWS credentials are a role's session, and AWS limits a session "
            f"assumed from one (role chaining) to {format_duration(ROLE_CHAINING_MAX_S)}"
        )
    elif max_session_s is not None and max_session_s < STS_MAX_S:
        why = (
            f"the IAM role {role_name} allows sessions of at most "
            f"{format_duration(max_session_s)} (its MaxSessionDuration)"
        )
    else:
        why = f"AWS STS sessions last at most {format_duration(STS_MAX_S)}"
    return f"{why}; ask for {format_duration(limit)} or less"


def sts_role_findings(
    limits: RoleLimits, *, max_session_s: int | None, role_chaining: bool
) -> list[SettingsFinding]:
    """``grantbot policy check``'s view of one aws_sts role: errors for a max_duration or
    default_duration AWS can never give."""
    found: list[SettingsFinding] = []
    cap = sts_limit_s(max_session_s=max_session_s, role_chaining=role_chaining)
    for key, value in (
        ("max_duration", limits.max_duration_s),
        ("default_duration", limits.default_duration_s),
    ):
        if value < STS_MIN_S:
            found.append(
                SettingsFinding(
                    key,
                    f"{key} {format_duration(value)} is below the {format_duration(STS_MIN_S)} "
                    "AWS STS credentials last at least; no such request could be met",
                )
            )
    if limits.max_duration_s > cap:
        if role_chaining and cap == ROLE_CHAINING_MAX_S:
            why = "role_chaining is on: AWS gives such sessions at most 1h"
        elif max_session_s is not None and max_session_s < STS_MAX_S:
            why = f"the role's max_session_duration is {format_duration(max_session_s)}"
        else:
            why = f"AWS STS sessions last at most {format_duration(STS_MAX_S)}"
        found.append(
            SettingsFinding(
                "max_duration",
                f"max_duration {format_duration(limits.max_duration_s)} cannot be met: {why}",
            )
        )
    return found


def permission_set_findings(
    limits: RoleLimits, *, session_duration_s: int | None
) -> list[SettingsFinding]:
    """A warning when an Identity Center portal session may outlive the longest grant."""
    if session_duration_s is None or session_duration_s <= limits.max_duration_s:
        return []
    return [
        SettingsFinding(
            "provider.session_duration",
            f"the permission set's session duration {format_duration(session_duration_s)} "
            f"is longer than max_duration {format_duration(limits.max_duration_s)}: an AWS "
            "portal session opened during a grant lasts until its session duration ends, "
            "after grantbot has removed the assignment",
            severity="warning",
        )
    ]


def iso_duration_s(text: str) -> int | None:
    """``PT8H``, ``PT1H30M``, ``P1D`` (Identity Center's SessionDuration) in seconds; None
    when it is not such a duration."""
    m = _ISO_DURATION_RE.match(text or "")
    if m is None or not any(m.groupdict().values()):
        return None
    d, h, mi, s = (int(m[g] or 0) for g in ("d", "h", "m", "s"))
    return ((d * 24 + h) * 60 + mi) * 60 + s
