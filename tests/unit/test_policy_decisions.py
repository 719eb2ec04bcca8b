"""The policy's decisions: evaluate_request (accepted, or refused saying why) and
match_auto_approve."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot.domain.policy.decisions import RequestDecision, evaluate_request, match_auto_approve
from bot.domain.policy.rules import LoadedPolicy, Policy
from bot.errors import PolicyDenied
from tests.unit.policy_example import NO_GROUPS, TODAY, example


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return example()


@pytest.fixture(scope="module")
def policy(loaded: LoadedPolicy) -> Policy:
    return loaded.policy


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
