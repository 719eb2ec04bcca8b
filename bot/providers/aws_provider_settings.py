"""What policies.yaml says for the AWS providers: the resource- and role-level settings of
``aws_sts`` and ``aws_identity_center``, checked as they are read, and what ``grantbot policy
check`` finds about a role's limits against AWS's (:mod:`bot.providers.aws_limits`).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Final, Literal

from pydantic import Field, field_validator

from bot.envrefs import has_reference
from bot.providers.aws_client import ACCOUNT_ID_RE, AWSSettings, DurationSetting, matching
from bot.providers.aws_limits import (
    ROLE_MAX_SESSION_MIN_S,
    STS_MAX_S,
    permission_set_findings,
    sts_role_findings,
)
from bot.providers.base import ProviderSettings, RoleLimits, SettingsFinding

_ROLE_ARN_RE: Final = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_POLICY_ARN_RE: Final = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+$")
#: AWS's limit on an inline session policy (its plain-text length).
SESSION_POLICY_MAX_CHARS: Final = 2048
POLICY_ARNS_MAX: Final = 10
#: AWS's own form, and moto's (``instance/<id>/ps-...``), which the tests run against.
_PERMISSION_SET_RE: Final = re.compile(
    r"^arn:aws[a-z-]*:sso:::(permissionSet|instance)/[\w.-]+/ps-[\w.-]+$"
)
_INSTANCE_RE: Final = re.compile(r"^arn:aws[a-z-]*:sso:::instance/[\w.-]+$")
_STORE_ID_RE: Final = re.compile(r"^d-[0-9a-z]{10}$|^[0-9a-f-]{36}$")


# --- aws_sts -----------------------------------------------------------------------------------


class AWSSTSSettings(AWSSettings):
    """Resource-level settings (see :class:`AWSSettings`), plus ``role_chaining``: declare
    that grantbot runs with a role's credentials (an instance or task role), so
    ``policy check`` holds every role to 1 hour. grantbot also finds this out itself
    (sts:GetCallerIdentity) when a request is made."""

    type: Literal["aws_sts"] = "aws_sts"
    role_chaining: bool = False


class AWSSTSRoleSettings(ProviderSettings):
    """Role-level settings: the IAM role, and what narrows its sessions.

    ``max_session_duration`` mirrors the role's MaxSessionDuration in IAM so that
    ``policy check`` can hold max_duration to it (grantbot reads the real one with
    iam:GetRole when a request is made)."""

    role_arn: Annotated[
        str,
        matching(_ROLE_ARN_RE, "must be an IAM role ARN (arn:aws:iam::123456789012:role/name)"),
    ]
    session_policy: dict[str, Any] | None = None
    policy_arns: list[Annotated[str, matching(_POLICY_ARN_RE, "is not an IAM policy ARN")]] = Field(
        default_factory=list, max_length=POLICY_ARNS_MAX
    )
    max_session_duration: DurationSetting | None = Field(
        default=None, ge=ROLE_MAX_SESSION_MIN_S, le=STS_MAX_S
    )

    @field_validator("session_policy")
    @classmethod
    def _session_policy(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and len(compact_json(v)) > SESSION_POLICY_MAX_CHARS:
            raise ValueError(f"is longer than AWS's {SESSION_POLICY_MAX_CHARS} characters")
        return v

    @property
    def role_name(self) -> str:
        return role_name(self.role_arn)


def role_name(arn: str) -> str:
    """``arn:aws:iam::123456789012:role/path/name`` -> ``name`` (what IAM's APIs take)."""
    return arn.rsplit("/", 1)[-1]


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def sts_limit_findings(
    settings: ProviderSettings, role: ProviderSettings, limits: RoleLimits
) -> list[SettingsFinding]:
    """For ``grantbot policy check`` (see :func:`bot.providers.aws_limits.sts_role_findings`)."""
    assert isinstance(settings, AWSSTSSettings) and isinstance(role, AWSSTSRoleSettings)
    return sts_role_findings(
        limits, max_session_s=role.max_session_duration, role_chaining=settings.role_chaining
    )


# --- aws_identity_center -----------------------------------------------------------------------


class AWSIdentityCenterSettings(AWSSettings):
    """Resource-level settings (see :class:`AWSSettings`): the Identity Store (default: the
    instance's, from sso:ListInstances), the access portal URL shown in the DM, and how long
    to wait for an assignment to be created or deleted."""

    type: Literal["aws_identity_center"] = "aws_identity_center"
    identity_store_id: (
        Annotated[str, matching(_STORE_ID_RE, "must be an Identity Store id (d-1234567890)")] | None
    ) = None
    portal_url: str | None = None
    wait_timeout_s: float = Field(default=120.0, gt=0, le=900)
    poll_initial_s: float = Field(default=1.0, gt=0)
    poll_max_s: float = Field(default=10.0, gt=0)

    @field_validator("portal_url")
    @classmethod
    def _portal(cls, v: str | None) -> str | None:
        if v is not None and not has_reference(v) and not v.startswith("https://"):
            raise ValueError("must be an https:// URL (the AWS access portal's)")
        return v


class AWSIdentityCenterRoleSettings(ProviderSettings):
    """Role-level settings: the instance, the permission set and the account.
    ``session_duration`` mirrors the permission set's session duration so that
    ``policy check`` can warn when it outlasts max_duration."""

    instance_arn: Annotated[
        str,
        matching(
            _INSTANCE_RE, "must be an Identity Center instance ARN (arn:aws:sso:::instance/…)"
        ),
    ]
    permission_set_arn: Annotated[
        str,
        matching(
            _PERMISSION_SET_RE, "must be a permission set ARN (arn:aws:sso:::permissionSet/…)"
        ),
    ]
    account_id: Annotated[
        str, matching(ACCOUNT_ID_RE, "must be a 12-digit AWS account id (quote it in YAML)")
    ]
    session_duration: DurationSetting | None = Field(default=None, ge=3600, le=43_200)


def identity_center_limit_findings(
    settings: ProviderSettings, role: ProviderSettings, limits: RoleLimits
) -> list[SettingsFinding]:
    """For ``grantbot policy check``: warn when a portal session can outlive the grant."""
    assert isinstance(role, AWSIdentityCenterRoleSettings)
    return permission_set_findings(limits, session_duration_s=role.session_duration)
