"""Cross-checks that run once policies.yaml fits the schema: references, inherited limits."""

from __future__ import annotations

from textwrap import dedent

import pytest

from bot.domain.policy.rules import LoadedPolicy
from bot.errors import PolicyError
from bot.policy_loader import parse_policy

# Line numbers matter below: count from 1 at "groups:".
BASE = """\
groups:
  sre:
    members: [U024BE7LH, U04QK7NJ2MZ]
oncall:
  primary: {type: pagerduty, schedule_id: P7XJ2QK, token: "${PD_TOKEN}"}
defaults:
  requesters: {groups: [sre]}
  approvers: {groups: [sre]}
  max_duration: 1h
resources:
  orders-db:
    provider: {type: noop}
    roles:
      read:
        max_duration: 4h
      write:
        approvals_required: 1
"""


def parse(text: str) -> LoadedPolicy:
    return parse_policy(dedent(text).encode(), filename="policies.yaml")


def errors(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse(text)
    assert all(i.severity == "error" for i in caught.value.issues)
    return [str(i) for i in caught.value.issues]


def test_base_fixture_is_valid() -> None:
    """The fixture the tests below mutate passes every check with no warning."""
    assert parse(BASE).warnings == []


def test_unknown_group_in_requesters_approvers_and_escalation() -> None:
    """Each reference to an undefined group is an error at the reference, listing the groups."""
    text = BASE.replace("requesters: {groups: [sre]}", "requesters: {groups: [sre, dba]}").replace(
        "      write:\n",
        "      write:\n"
        "        approvers: {groups: [sre-typo]}\n"
        "        escalation: [{escalate_after: 15m, approvers: {groups: [managers]}}]\n",
    )
    assert errors(text) == [
        'policies.yaml:7 defaults.requesters.groups[1]: unknown group "dba"; groups: sre',
        "policies.yaml:17 resources.orders-db.roles.write.approvers.groups[0]: "
        'unknown group "sre-typo"; groups: sre',
        "policies.yaml:18 resources.orders-db.roles.write.escalation[0].approvers.groups[0]: "
        'unknown group "managers"; groups: sre',
    ]


def test_unknown_oncall_schedule_in_auto_approve_and_escalation() -> None:
    """auto_approve.on_call and escalation.oncall must name a schedule under oncall:."""
    text = BASE.replace(
        "        max_duration: 4h\n",
        "        max_duration: 4h\n"
        "        auto_approve: [{on_call: secondary, max_duration: 1h}]\n"
        "        escalation: [{escalate_after: 10m, oncall: primry}]\n",
    )
    assert errors(text) == [
        "policies.yaml:16 resources.orders-db.roles.read.auto_approve[0].on_call: "
        'unknown on-call schedule "secondary"; oncall: primary',
        "policies.yaml:17 resources.orders-db.roles.read.escalation[0].oncall: "
        'unknown on-call schedule "primry"; oncall: primary',
    ]


def test_default_duration_above_max_after_inheritance() -> None:
    """A default_duration is compared with the max_duration each role ends up with."""
    # 2h is fine for read (max 4h) but not for write (max 1h, inherited from defaults).
    text = BASE.replace("  max_duration: 1h\n", "  max_duration: 1h\n  default_duration: 2h\n")
    assert errors(text) == [
        "policies.yaml:10 defaults.default_duration: default_duration 2h is above "
        "max_duration 1h for orders-db write"
    ]


def test_approvals_required_above_listed_approvers() -> None:
    """N approvals cannot be met by fewer distinct listed users (users + group members)."""
    text = BASE.replace("approvals_required: 1", "approvals_required: 3")
    assert errors(text) == [
        "policies.yaml:17 resources.orders-db.roles.write.approvals_required: approvals_required "
        "is 3 but orders-db write has only 2 approvers: U024BE7LH, U04QK7NJ2MZ"
    ]
    # A user listed directly and through a group is still one approver.
    doubled = text.replace(
        "approvals_required: 3",
        "approvals_required: 3\n        approvers: {users: [U024BE7LH], groups: [sre]}",
    )
    assert len(errors(doubled)) == 1


@pytest.mark.parametrize(
    "approvers",
    [
        "{groups: [sre], usergroups: [S0614TZR7]}",
        "{users: [U024BE7LH]}\n        escalation: [{escalate_after: 5m, oncall: primary}]",
    ],
)
def test_approvals_required_is_not_checked_when_approver_count_is_unknown(approvers: str) -> None:
    """A Slack user group or an on-call tier has unknown size, so N is not counted against it."""
    text = BASE.replace(
        "approvals_required: 1", f"approvals_required: 3\n        approvers: {approvers}"
    )
    assert parse(text).policy.rule("orders-db", "write").approvals_required == 3


def test_channel_only_approvers_are_an_error() -> None:
    """A channel is where requests go, not who may approve: approvers need principals."""
    text = BASE.replace("  approvers: {groups: [sre]}", "  approvers: {channel: C05ACCESS01}")
    assert errors(text) == [
        "policies.yaml:8 defaults.approvers: names only a channel; add users, groups or "
        "usergroups (a channel is where requests are posted, not who may approve)"
    ]


def test_nobody_to_request_or_approve_is_an_error() -> None:
    """A role that inherits no requesters or no approvers from anywhere is an error."""
    text = BASE.replace("  requesters: {groups: [sre]}\n", "").replace(
        "  approvers: {groups: [sre]}\n", ""
    )
    text = text.replace("      write:\n", "      write:\n        requesters: {everyone: true}\n")
    assert errors(text) == [
        "policies.yaml:12 resources.orders-db.roles.read: orders-db read has no requesters; set "
        "requesters (or requesters: {everyone: true}) in defaults, on the resource or on the role",
        "policies.yaml:12 resources.orders-db.roles.read: orders-db read has no approvers; set "
        "approvers in defaults, on the resource or the role",
        "policies.yaml:14 resources.orders-db.roles.write: orders-db write has no approvers; set "
        "approvers in defaults, on the resource or the role",
    ]


def test_default_role_must_exist_and_role_provider_has_no_type() -> None:
    """default_role must name a role; a role's provider holds settings but not a type."""
    text = BASE.replace("    roles:\n", "    default_role: admin\n    roles:\n").replace(
        "        max_duration: 4h\n", "        max_duration: 4h\n        provider: {type: mysql}\n"
    )
    assert errors(text) == [
        'policies.yaml:13 resources.orders-db.default_role: "admin" is not a role of orders-db; '
        "roles: read, write",
        "policies.yaml:17 resources.orders-db.roles.read.provider.type: the provider type is set "
        "on the resource; a role's provider holds only settings",
    ]


def test_escalation_tiers_must_increase() -> None:
    """Escalation tiers fire in order, so each `after` must exceed the previous one."""
    text = BASE.replace(
        "  max_duration: 1h\n",
        "  max_duration: 1h\n  escalation:\n    - {escalate_after: 30m, oncall: primary}\n"
        "    - {escalate_after: 15m, approvers: {users: [U024BE7LH]}}\n",
    )
    assert errors(text) == [
        "policies.yaml:12 defaults.escalation[1].escalate_after: escalation tiers must come in "
        "increasing order of escalate_after; 15m follows 30m"
    ]


def test_self_approval_with_one_approval_is_a_warning() -> None:
    """allow_self_approval with approvals_required 1 loads, with one warning at the key."""
    text = BASE.replace("  max_duration: 1h\n", "  max_duration: 1h\n  allow_self_approval: true\n")
    loaded = parse(text)
    [warning] = loaded.warnings
    assert warning.severity == "warning"
    assert str(warning) == (
        "policies.yaml:10 defaults.allow_self_approval: allow_self_approval with "
        "approvals_required 1 lets a requester who is also an approver approve their own "
        "request alone"
    )
    assert loaded.policy.rule("orders-db", "read").allow_self_approval is True
    # With two approvals required everywhere, there is nothing to warn about.
    two = text.replace("approvals_required: 1", "approvals_required: 2").replace(
        "  max_duration: 1h\n", "  max_duration: 1h\n  approvals_required: 2\n"
    )
    assert parse(two).warnings == []


def test_cross_check_errors_are_all_reported() -> None:
    """Several cross-check failures come back together in one PolicyError."""
    text = BASE.replace("requesters: {groups: [sre]}", "requesters: {groups: [ops]}").replace(
        "approvals_required: 1", "approvals_required: 5"
    )
    assert [e.split(":", 2)[1] for e in errors(text)] == [
        "7 defaults.requesters.groups[0]",
        "17 resources.orders-db.roles.write.approvals_required",
    ]


def test_provider_settings_are_checked_by_the_provider_schema() -> None:
    """An unknown provider setting and a bad role-level setting are errors with their lines."""
    text = (
        "groups:\n"
        "  sre:\n"
        "    members: [U01, U02]\n"
        "resources:\n"
        "  orders-db:\n"
        "    provider:\n"
        "      type: postgres\n"
        "      dsn: ${ORDERS_DSN}\n"
        "      colour: blue\n"
        "    roles:\n"
        "      read:\n"
        "        requesters: {groups: [sre]}\n"
        "        approvers: {groups: [sre]}\n"
        "        provider:\n"
        '          grant_roles: ["bad role"]\n'
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text.encode(), filename="p.yaml")
    messages = [str(i) for i in caught.value.issues]
    assert messages[0] == "p.yaml:9 resources.orders-db.provider.colour: unknown setting"
    assert messages[1].startswith(
        "p.yaml:15 resources.orders-db.roles.read.provider.grant_roles[0]:"
    )
    assert len(messages) == 2
