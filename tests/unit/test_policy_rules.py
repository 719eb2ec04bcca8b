"""Resolved rules and decisions: inheritance, membership, evaluate_request, auto-approve."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot.domain.policy import (
    LoadedPolicy,
    Policy,
    RequestDecision,
    evaluate_request,
    format_summary,
    match_auto_approve,
)
from bot.errors import PolicyDenied
from bot.policy_loader import parse_policy

POLICY = rb"""
incident_channels: "^inc-"
groups:
  sre:
    members: [U0SRE1, U0SRE2]
  dba:
    members:
      - U0DBA1
      - {id: U0CONTRACT, expires: 2026-06-30}
      - S0DBAGROUP
oncall:
  primary: {type: static, members: [U0SRE1], start: 2026-01-05}
defaults:
  requesters: {groups: [sre, dba]}
  approvers: {groups: [sre], channel: C0ACCESS}
  max_duration: 1h
  request_timeout: 20m
  require_ticket: '^(INC|CHG)-\d+$'
resources:
  orders-db:
    description: Orders PostgreSQL
    provider: {type: postgres, dsn: "${ORDERS_DB_DSN}", host: db.internal}
    max_duration: 2h
    default_role: read
    roles:
      read:
        max_duration: 4h
        default_duration: 1h
        provider: {grant_roles: [orders_read]}
        auto_approve:
          - {on_call: primary, incident: true, max_duration: 2h, per_user_per_day: 2}
          - {incident: true, max_duration: 15m}
      write:
        approvals_required: 2
        approvers: {groups: [dba, sre]}
        provider: {grant_roles: [orders_write]}
        escalation:
          - {escalate_after: 10m, approvers: {users: [U0BOSS]}}
          - {escalate_after: 30m, oncall: primary}
  cache:
    provider: {type: redis_acl, url: "${CACHE_URL}"}
    requesters: {everyone: true}
    require_reason: false
    require_ticket: null
    roles:
      read:
        provider: {commands: "+@read", keys: "~cache:*"}
        auto_approve: [{max_duration: 30m}]
  vault:
    provider: {type: noop}
    requesters: {usergroups: [S0VAULT]}
    allow_self_approval: true
    approvals_required: 2
    roles:
      read: {}
      admin: {}
"""

TODAY = date(2026, 3, 1)
NO_GROUPS: dict[str, frozenset[str]] = {}


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return parse_policy(POLICY, filename="policies.yaml")


@pytest.fixture(scope="module")
def policy(loaded: LoadedPolicy) -> Policy:
    return loaded.policy


def test_fixture_loads_without_warnings(loaded: LoadedPolicy) -> None:
    """The policy these tests share is valid and raises no warning."""
    assert loaded.warnings == []


def test_inheritance_defaults_then_resource_then_role(policy: Policy) -> None:
    """Each key comes from the most specific level that sets it, else built-in values."""
    read = policy.rule("orders-db", "read")
    assert (read.max_duration_s, read.default_duration_s) == (4 * 3600, 3600)  # role
    assert read.request_timeout_s == 20 * 60  # defaults
    assert read.require_ticket is not None
    assert read.require_ticket.pattern == r"^(INC|CHG)-\d+$"
    assert (read.approvals_required, read.allow_self_approval, read.require_reason) == (
        1,
        False,
        True,
    )

    write = policy.rule("orders-db", "write")
    assert write.max_duration_s == 2 * 3600  # resource
    assert write.default_duration_s == 3600  # unset: the smaller of max_duration and 1h
    assert write.approvals_required == 2

    cache = policy.rule("cache", "read")
    assert cache.max_duration_s == 3600  # defaults
    assert (cache.require_ticket, cache.require_reason) == (None, False)  # resource overrides

    vault = policy.rule("vault", "admin")
    assert (vault.approvals_required, vault.allow_self_approval) == (2, True)


def test_role_provider_settings_are_the_roles_own(policy: Policy) -> None:
    """A rule carries its role's provider block; the type is the resource's."""
    write = policy.rule("orders-db", "write")
    assert write.provider_type == "postgres"
    assert dict(write.role_provider_settings) == {"grant_roles": ["orders_write"]}
    assert dict(policy.rule("vault", "read").role_provider_settings) == {}


def test_role_none_resolves_to_default_or_only_role(policy: Policy) -> None:
    """No role means default_role, else the only role, else a refusal listing the roles."""
    assert policy.rule("orders-db", None).role == "read"
    assert policy.rule("cache", None).role == "read"
    with pytest.raises(PolicyDenied, match=r"^vault has several roles; name one of: read, admin$"):
        policy.rule("vault", None)


def test_unknown_resource_and_role_list_what_exists(policy: Policy) -> None:
    """An unknown name is refused with a message listing the names that exist."""
    with pytest.raises(PolicyDenied) as caught:
        policy.rule("ordrs-db", "read")
    assert (
        str(caught.value) == 'unknown resource "ordrs-db"; you may request: orders-db, cache, vault'
    )
    with pytest.raises(PolicyDenied) as caught:
        policy.rule("orders-db", "wrte")
    assert str(caught.value) == 'unknown role "wrte" for orders-db; roles: read, write'


def test_expired_group_member_stops_counting_after_the_date(policy: Policy) -> None:
    """A member's expires date is the last day they count."""
    rule = policy.rule("orders-db", "read")
    assert rule.may_request("U0CONTRACT", today=date(2026, 6, 30), usergroups=NO_GROUPS)
    assert not rule.may_request("U0CONTRACT", today=date(2026, 7, 1), usergroups=NO_GROUPS)
    assert rule.may_request("U0DBA1", today=date(2030, 1, 1), usergroups=NO_GROUPS)


def test_usergroup_membership_comes_from_the_passed_mapping(policy: Policy) -> None:
    """Slack user-group members are whoever the mapping says; an absent group is empty."""
    rule = policy.rule("orders-db", "read")
    via_group = {"S0DBAGROUP": frozenset({"U0VIA"})}
    assert rule.may_request("U0VIA", today=TODAY, usergroups=via_group)
    assert not rule.may_request("U0VIA", today=TODAY, usergroups=NO_GROUPS)
    vault = policy.rule("vault", "read")
    assert vault.may_request("U0V", today=TODAY, usergroups={"S0VAULT": frozenset({"U0V"})})
    assert not vault.may_request("U0SRE1", today=TODAY, usergroups=NO_GROUPS)


def test_everyone_may_request_an_open_resource(policy: Policy) -> None:
    """requesters: {everyone: true} admits any user."""
    assert policy.rule("cache", "read").may_request("U0ANYONE", today=TODAY, usergroups=NO_GROUPS)


def test_approver_authority_is_principals_not_the_channel(policy: Policy) -> None:
    """Approvers are the listed principals; the channel (or its members) grants nothing."""
    read = policy.rule("orders-db", "read")
    assert read.approvers is not None
    assert read.approvers.channel == "C0ACCESS"
    assert read.is_approver("U0SRE2", today=TODAY, usergroups=NO_GROUPS)
    assert not read.is_approver("U0DBA1", today=TODAY, usergroups=NO_GROUPS)
    write = policy.rule("orders-db", "write")
    assert write.is_approver("U0DBA1", today=TODAY, usergroups=NO_GROUPS)
    assert not write.is_approver("U0CONTRACT", today=date(2026, 7, 1), usergroups=NO_GROUPS)


def test_escalation_tiers_add_approvers_once_reached(policy: Policy) -> None:
    """Tier approvers, and the on-call person of a tier's schedule, count once it is reached."""
    write = policy.rule("orders-db", "write")
    assert not write.is_approver("U0BOSS", today=TODAY, usergroups=NO_GROUPS)
    assert write.is_approver("U0BOSS", today=TODAY, usergroups=NO_GROUPS, tiers_reached=1)
    on_call = frozenset({"primary"})
    for tiers, expected in ((1, False), (2, True)):
        assert expected == write.is_approver(
            "U0ONCALL",
            today=TODAY,
            usergroups=NO_GROUPS,
            tiers_reached=tiers,
            on_call_schedules=on_call,
        )


def request(loaded: LoadedPolicy, **overrides: Any) -> RequestDecision:
    args: dict[str, Any] = {
        "user": "U0SRE1",
        "resource": "orders-db",
        "role": "write",
        "duration_s": 1800,
        "reason": "fixing INC-42 fallout",
        "tickets": ["INC-42"],
        "today": TODAY,
        "usergroups": NO_GROUPS,
    }
    args.update(overrides)
    return evaluate_request(loaded, **args)


def test_evaluate_request_accepts_and_snapshots_limits(loaded: LoadedPolicy) -> None:
    """An allowed request yields the rule, the duration and the limits to store with it."""
    decision = evaluate_request(
        loaded,
        user="U0SRE1",
        resource="orders-db",
        role="write",
        duration_s=1800,
        reason="fixing INC-42 fallout",
        tickets=("INC-42",),
        today=TODAY,
        usergroups=NO_GROUPS,
    )
    assert decision.rule.name == "orders-db write"
    assert decision.duration_s == 1800
    assert (decision.approvals_required, decision.allow_self_approval) == (2, False)
    assert decision.request_timeout_s == 1200
    assert decision.policy_version == loaded.version


def test_evaluate_request_uses_default_duration_and_role(loaded: LoadedPolicy) -> None:
    """No duration means the rule's default; no role means the resource's default role."""
    decision = evaluate_request(
        loaded,
        user="U0SRE1",
        resource="orders-db",
        role=None,
        duration_s=None,
        reason="CHG-7",
        tickets=[],
        today=TODAY,
        usergroups=NO_GROUPS,
    )
    assert (decision.rule.role, decision.duration_s) == ("read", 3600)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"duration_s": 4 * 3600}, "orders-db write is limited to 2h; you asked for 4h"),
        ({"reason": "  ", "tickets": []}, "orders-db write needs a reason"),
        (
            {"reason": "debugging the queue", "tickets": []},
            r"orders-db write needs a ticket matching ^(INC|CHG)-\d+$ in the reason",
        ),
        (
            {"reason": "see INC-42x", "tickets": ["INC-42x"]},
            r"orders-db write needs a ticket matching ^(INC|CHG)-\d+$ in the reason",
        ),
        (
            {"user": "U0STRANGER"},
            "you may not request orders-db write; it is open to: group sre, group dba",
        ),
        (
            {"user": "U0CONTRACT", "today": date(2026, 7, 1)},
            "you may not request orders-db write; it is open to: group sre, group dba",
        ),
        (
            {"resource": "ordrs-db"},
            'unknown resource "ordrs-db"; you may request: orders-db, cache, vault',
        ),
    ],
)
def test_evaluate_request_refusals_name_the_rule(
    loaded: LoadedPolicy, overrides: dict[str, object], message: str
) -> None:
    """Each refusal says which rule refused and what it allows."""
    with pytest.raises(PolicyDenied) as caught:
        request(loaded, **overrides)
    assert str(caught.value) == message


def test_ticket_may_appear_as_a_word_of_the_reason(loaded: LoadedPolicy) -> None:
    """require_ticket also matches reason words with surrounding punctuation stripped."""
    decision = request(loaded, reason="rollback (CHG-7).", tickets=[])
    assert decision.duration_s == 1800


def test_open_resource_needs_neither_reason_nor_ticket(loaded: LoadedPolicy) -> None:
    """With require_reason false and require_ticket null, an empty reason is accepted."""
    decision = request(
        loaded, user="U0ANY", resource="cache", role="read", reason="", tickets=[], duration_s=None
    )
    assert decision.duration_s == 3600


def test_requestable_lists_what_the_user_may_request(policy: Policy) -> None:
    """requestable returns (resource, role, rule) for every role the user may request."""
    sre = policy.requestable("U0SRE1", today=TODAY, usergroups=NO_GROUPS)
    assert [(r, role) for r, role, _ in sre] == [
        ("orders-db", "read"),
        ("orders-db", "write"),
        ("cache", "read"),
    ]
    vault_user = policy.requestable("U0V", today=TODAY, usergroups={"S0VAULT": frozenset({"U0V"})})
    assert [(r, role) for r, role, _ in vault_user] == [
        ("cache", "read"),
        ("vault", "read"),
        ("vault", "admin"),
    ]
    assert vault_user[1][2].provider_type == "noop"


@pytest.mark.parametrize(
    ("duration_s", "on_call", "in_incident", "grants_today", "expected"),
    [
        (3600, {"primary"}, True, 0, (0, "on call for primary, in an incident channel")),
        (7200, {"primary"}, True, 1, (0, "on call for primary, in an incident channel")),
        (7201, {"primary"}, True, 0, None),  # above both caps
        (3600, {"primary"}, False, 0, None),  # needs an incident
        (3600, set(), True, 0, None),  # not on call; the second rule caps at 15m
        (900, set(), True, 0, (1, "in an incident channel")),
        (900, {"primary"}, True, 2, (1, "in an incident channel")),  # first rule used up today
        (900, set(), False, 0, None),
    ],
)
def test_match_auto_approve_requires_every_condition_and_the_cap(
    policy: Policy,
    duration_s: int,
    on_call: set[str],
    in_incident: bool,
    grants_today: int,
    expected: tuple[int, str] | None,
) -> None:
    """A rule matches only when all its conditions hold and the duration is within its cap."""
    match = match_auto_approve(
        policy.rule("orders-db", "read"),
        duration_s=duration_s,
        on_call_schedules=frozenset(on_call),
        in_incident=in_incident,
        grants_today=grants_today,
    )
    assert (None if match is None else (match.index, match.reason)) == expected
    if match is not None:
        assert match.rule == policy.rule("orders-db", "read").auto_approve[match.index]


def test_unconditional_auto_approve_and_none_configured(policy: Policy) -> None:
    """A rule without conditions matches any request within its cap; no rules, no match."""
    kwargs: dict[str, Any] = {
        "on_call_schedules": frozenset(),
        "in_incident": False,
        "grants_today": 9,
    }
    match = match_auto_approve(policy.rule("cache", "read"), duration_s=1800, **kwargs)
    assert match is not None
    assert match.reason == "any request up to 30m"
    assert match_auto_approve(policy.rule("cache", "read"), duration_s=1801, **kwargs) is None
    assert match_auto_approve(policy.rule("orders-db", "write"), duration_s=60, **kwargs) is None


def test_incident_channels_match_by_name(policy: Policy) -> None:
    """incident_channels is searched in the channel name, with or without a leading #."""
    assert policy.is_incident_channel("inc-4512-db-down")
    assert policy.is_incident_channel("#inc-1")
    assert not policy.is_incident_channel("ops-inc-1")


def test_format_summary_is_a_table_of_every_role(loaded: LoadedPolicy) -> None:
    """The check summary has a header, then one row per resource role with its limits."""
    lines = format_summary(loaded).splitlines()
    assert lines[0] == (
        f"policies.yaml: ok, version {loaded.version[:12]}, 3 resources, 5 roles, 0 warnings"
    )
    assert lines[2].split() == [
        "resource",
        "role",
        "requesters",
        "approvers",
        "N",
        "max",
        "duration",
    ]
    assert lines[4].split("  ")[0] == "orders-db"
    assert " ".join(lines[4].split()) == (
        # write replaces the approvers block whole, so it has no channel
        "orders-db write group sre, group dba group dba, group sre 2 2h"
    )
    assert " ".join(lines[5].split()) == "cache read everyone group sre (posted to C0ACCESS) 1 1h"
    assert len(lines) == 2 + 1 + 5
