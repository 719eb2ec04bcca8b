"""Resolved rules: inheritance, membership, approver authority, what a user may request."""

from __future__ import annotations

from datetime import date

import pytest

from bot.domain.policy.rules import LoadedPolicy, Policy
from bot.errors import PolicyDenied
from tests.unit.policy_example import NO_GROUPS, TODAY, example


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return example()


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


def test_incident_channels_match_by_name(policy: Policy) -> None:
    """incident_channels is searched in the channel name, with or without a leading #."""
    assert policy.is_incident_channel("inc-4512-db-down")
    assert policy.is_incident_channel("#inc-1")
    assert not policy.is_incident_channel("ops-inc-1")
