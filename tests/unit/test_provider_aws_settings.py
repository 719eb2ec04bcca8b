"""AWS providers without AWS: their settings as `grantbot policy check` sees them, AWS's
duration limits, the deny policy document and who CloudTrail names. All pure."""

from __future__ import annotations

from textwrap import dedent

import pytest

from bot.errors import PolicyError
from bot.policy_loader import parse_policy
from bot.providers.aws_identity_center import poll_delays
from bot.providers.aws_limits import (
    STS_MIN_S,
    iso_duration_s,
    sts_duration_refusal,
    sts_limit_s,
)
from bot.providers.aws_sts import deny_policy_document, deny_policy_name, source_identity
from bot.providers.base import GrantContext

ROLE_ARN = "arn:aws:iam::123456789012:role/prod-admin"
INSTANCE = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
PERMISSION_SET = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef"

POLICY = """\
groups:
  sre: {{members: [U024BE7LH]}}
defaults:
  requesters: {{groups: [sre]}}
  approvers: {{groups: [sre]}}
resources:
  aws-prod:
    provider:
      type: aws_sts
      secret_access_key: ${{AWS_SECRET}}
      access_key_id: AKIAEXAMPLE
{sts_resource}
    roles:
      admin:
{sts_role}
        provider:
          role_arn: {role_arn}
{sts_provider}
  aws-sso:
    provider:
      type: aws_identity_center
    roles:
      admin:
{ic_role}
        provider:
          instance_arn: {instance}
          permission_set_arn: {permission_set}
          account_id: "123456789012"
{ic_provider}
"""


def policy(
    *,
    sts_resource: str = "",
    sts_role: str = "        max_duration: 1h",
    sts_provider: str = "",
    ic_role: str = "        max_duration: 1h",
    ic_provider: str = "",
    role_arn: str = ROLE_ARN,
) -> bytes:
    text = POLICY.format(
        sts_resource=sts_resource,
        sts_role=sts_role,
        sts_provider=sts_provider,
        ic_role=ic_role,
        ic_provider=ic_provider,
        role_arn=role_arn,
        instance=INSTANCE,
        permission_set=PERMISSION_SET,
    )
    return dedent(text).encode()


def issues(data: bytes) -> list[str]:
    with pytest.raises(PolicyError) as e:
        parse_policy(data, filename="policies.yaml")
    return [str(i) for i in e.value.issues]


def test_valid_aws_roles_pass_without_aws_or_warnings() -> None:
    """Both AWS types validate statically: no AWS call, no credentials, no warning."""
    loaded = parse_policy(policy(), filename="policies.yaml")
    assert loaded.warnings == []
    assert loaded.policy.resources["aws-prod"].provider.type == "aws_sts"


def test_a_role_shorter_than_sts_allows_is_refused() -> None:
    """max_duration (or default_duration) under 15 minutes can never be met: an error at
    that key's line, saying why."""
    found = issues(policy(sts_role="        max_duration: 10m"))
    assert any(
        "roles.admin.max_duration: max_duration 10m is below the 15m AWS STS" in i for i in found
    )


def test_role_chaining_holds_roles_to_one_hour() -> None:
    """With role_chaining declared, a 2h max_duration is refused (AWS gives 1h)."""
    found = issues(
        policy(sts_resource="      role_chaining: true", sts_role="        max_duration: 2h")
    )
    assert any("cannot be met: role_chaining is on: AWS gives such sessions" in i for i in found)


def test_max_duration_above_the_roles_max_session_duration_is_refused() -> None:
    """A declared max_session_duration of 1h refuses a 2h max_duration; 12h allows it."""
    found = issues(
        policy(
            sts_role="        max_duration: 2h",
            sts_provider="          max_session_duration: 1h",
        )
    )
    assert any("the role's max_session_duration is 1h" in i for i in found)
    parse_policy(
        policy(
            sts_role="        max_duration: 2h", sts_provider="          max_session_duration: 12h"
        ),
        filename="policies.yaml",
    )


def test_a_permission_set_session_longer_than_the_grant_is_a_warning() -> None:
    """session_duration 8h on a role of max_duration 1h loads, with a warning that an open
    portal session outlasts the grant."""
    loaded = parse_policy(
        policy(ic_provider="          session_duration: 8h"), filename="policies.yaml"
    )
    [warning] = loaded.warnings
    assert "session_duration" in warning.path
    assert "8h is longer than max_duration 1h" in warning.message
    assert "portal session" in warning.message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"role_arn": "prod-admin"}, "role_arn: must be an IAM role ARN"),
        ({"sts_resource": "      region: Frankfurt"}, "region: must be an AWS region"),
        (
            {"sts_provider": "          policy_arns: [arn:aws:iam::aws:policy/ok, read-only]"},
            "policy_arns[1]: is not an IAM policy ARN",
        ),
        (
            {"ic_provider": "          session_duration: 3600"},
            "3600 is not a duration; write it with a unit",
        ),
    ],
)
def test_malformed_settings_are_named(change: dict[str, str], expected: str) -> None:
    """A setting that is not what AWS takes is an error naming the key and what is wanted."""
    assert any(expected in i for i in issues(policy(**change)))


def test_a_literal_secret_key_is_refused() -> None:
    """secret_access_key must be a ${VAR} reference, like every secret setting."""
    data = policy().replace(b"${AWS_SECRET}", b"wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY")
    assert any("secret_access_key" in i for i in issues(data))


@pytest.mark.parametrize(
    ("duration_s", "max_session_s", "chaining", "expected"),
    [
        (600, None, False, "at least 15m; ask for 15m or more"),
        (STS_MIN_S, None, False, None),
        (7200, 3600, False, "IAM role r allows sessions of at most 1h (its MaxSessionDuration)"),
        (7200, 4 * 3600, True, "role chaining) to 1h; ask for 1h or less"),
        (13 * 3600, None, False, "AWS STS sessions last at most 12h; ask for 12h or less"),
        (12 * 3600, None, False, None),
    ],
)
def test_sts_duration_refusals_say_why(
    duration_s: int, max_session_s: int | None, chaining: bool, expected: str | None
) -> None:
    """Each AWS limit refuses with its own reason and what to ask for instead."""
    refusal = sts_duration_refusal(
        duration_s, max_session_s=max_session_s, role_chaining=chaining, role_name="r"
    )
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None and expected in refusal


def test_sts_limit_is_the_smallest_that_applies() -> None:
    """The longest session: 12h, the role's max, 1h when chaining, whichever is least."""
    assert sts_limit_s(max_session_s=None, role_chaining=False) == 43_200
    assert sts_limit_s(max_session_s=7200, role_chaining=False) == 7200
    assert sts_limit_s(max_session_s=7200, role_chaining=True) == 3600


def test_iso_durations_of_identity_center() -> None:
    """SessionDuration as AWS writes it; anything else is None."""
    assert iso_duration_s("PT8H") == 8 * 3600
    assert iso_duration_s("PT1H30M") == 5400
    assert iso_duration_s("P1D") == 86_400
    assert iso_duration_s("8h") is None
    assert iso_duration_s("PT") is None


def test_the_deny_policy_names_one_session() -> None:
    """The policy denies everything to the session whose aws:userid ends with the grant id,
    and its name carries the grant id."""
    assert deny_policy_name("g-7k3p9xqm") == "grantbot-revoked-g-7k3p9xqm"
    [statement] = deny_policy_document("g-7k3p9xqm")["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "*"
    assert statement["Condition"] == {"StringLike": {"aws:userid": "*:g-7k3p9xqm"}}


def test_source_identity_is_the_email_when_aws_accepts_it() -> None:
    """CloudTrail names the requester's email; without one (or one AWS would refuse), the
    Slack user id."""
    ctx = GrantContext(
        grant_id="g-2", user="U0ALICE", resource="r", role="a", expires_at=1.0, email="a@b.co"
    )
    assert source_identity(ctx) == "a@b.co"
    assert source_identity(GrantContext(**{**_fields(ctx), "email": None})) == "U0ALICE"
    assert source_identity(GrantContext(**{**_fields(ctx), "email": "x y@b.co"})) == "U0ALICE"


def _fields(ctx: GrantContext) -> dict[str, object]:
    return {name: getattr(ctx, name) for name in GrantContext.__dataclass_fields__}


def test_assignment_polls_double_up_to_a_cap_within_the_budget() -> None:
    """Waits between status polls double from the first up to the cap, and add up to no more
    than the budget (a revoke's 25 s: five waits, then TargetUnavailable)."""
    assert poll_delays(initial_s=1, max_s=10, budget_s=25) == [1, 2, 4, 8, 10]
    assert poll_delays(initial_s=1, max_s=10, budget_s=120)[-3:] == [10, 10, 10]
    assert sum(poll_delays(initial_s=1, max_s=10, budget_s=120)) <= 120
    assert poll_delays(initial_s=5, max_s=10, budget_s=4) == []
