"""Pure policy decisions behind incident threads: the incident id, why an auto-approval that
would have applied could not, and which escalation tiers a request has reached."""

from __future__ import annotations

from datetime import date

import pytest

from bot.domain.policy.decisions import auto_approve_blocker
from bot.domain.policy.rules import Policy
from bot.policy_loader import parse_policy

POLICY = rb"""
incident_channels: "^inc-"
incident_id: '\b(INC-\d+)\b'
groups:
  sre: {members: [U0SRE1, U0SRE2, S0SREGROUP]}
oncall:
  primary: {type: static, members: [U0SRE1], start: 2026-01-05}
defaults:
  requesters: {groups: [sre]}
  approvers: {groups: [sre]}
  max_duration: 4h
resources:
  orders-db:
    provider: {type: noop}
    roles:
      read:
        auto_approve:
          - {on_call: primary, incident: true, max_duration: 1h, per_user_per_day: 2}
        escalation:
          - {escalate_after: 10m, approvers: {users: [U0BOSS], groups: [sre]}}
          - {escalate_after: 30m, oncall: primary}
"""
DOWN = {"primary": "PagerDuty did not answer within 2.5 s"}


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY, filename="policies.yaml", environ={}).policy


@pytest.mark.parametrize(
    ("name", "topic", "expected"),
    [
        ("inc-42-orders", "INC-42: orders-db latency", "INC-42"),  # the topic names it
        ("inc-INC-7", "", "INC-7"),  # no topic: searched in the name
        ("inc-4242", "", "inc-4242"),  # neither matches: the channel name
        ("#inc-4242", "payments down", "inc-4242"),
        ("general", "INC-42: not an incident channel", None),  # only the name qualifies
    ],
)
def test_incident_id_from_topic_then_name(
    policy: Policy, name: str, topic: str, expected: str | None
) -> None:
    """The id comes from the topic, else the name, else is the channel name itself."""
    assert policy.incident_of(name, topic=topic) == expected


def test_without_incident_id_the_channel_name_is_the_id(policy: Policy) -> None:
    """No incident_id pattern: an incident channel's id is its name."""
    plain = policy.model_copy(update={"incident_id": None})
    assert plain.incident_of("inc-42-orders", topic="INC-42: x") == "inc-42-orders"


@pytest.mark.parametrize(
    ("on_call", "unavailable", "in_incident", "grants_today", "duration_s", "expected"),
    [
        # the source is down: the rule would have applied had it answered
        (set(), DOWN, True, 0, 1800, "on-call schedule primary: " + DOWN["primary"]),
        # the day's limit is reached
        (
            {"primary"},
            {},
            True,
            2,
            1800,
            "the limit of 2 auto-approved orders-db read grants per person per day is reached",
        ),
        # not eligible anyway: no reason to give
        (set(), DOWN, False, 0, 1800, None),  # not in an incident
        (set(), DOWN, True, 0, 7200, None),  # longer than the rule's cap
        (set(), {}, True, 0, 1800, None),  # asked and not on call
        ({"primary"}, {}, True, 0, 1800, None),  # it matched
    ],
)
def test_auto_approve_blocker_names_only_what_stood_in_the_way(
    policy: Policy,
    on_call: set[str],
    unavailable: dict[str, str],
    in_incident: bool,
    grants_today: int,
    duration_s: int,
    expected: str | None,
) -> None:
    """A reason is given only when a rule would have matched but for a source that could not
    answer or the per-day limit."""
    assert (
        auto_approve_blocker(
            policy.rule("orders-db", "read"),
            duration_s=duration_s,
            on_call_schedules=frozenset(on_call),
            unavailable=unavailable,
            in_incident=in_incident,
            grants_today=grants_today,
        )
        == expected
    )


def test_tiers_reached_and_who_they_empower(policy: Policy) -> None:
    """A tier is reached once its `after` has passed; its approvers and its on-call person
    may approve from then on, not before."""
    rule = policy.rule("orders-db", "read")
    t0 = 1_000_000.0
    assert [rule.tiers_reached(asked_at=t0, now=t0 + s) for s in (0, 599, 600, 1799, 1800)] == [
        0,
        0,
        1,
        1,
        2,
    ]
    today = date(2026, 3, 2)
    for reached, boss, on_call in ((0, False, False), (1, True, False), (2, True, True)):
        assert rule.is_approver("U0BOSS", today=today, usergroups={}, tiers_reached=reached) is boss
        assert (
            rule.is_approver(
                "U0PAGED",
                today=today,
                usergroups={},
                tiers_reached=reached,
                on_call_schedules=frozenset({"primary"}),
            )
            is on_call
        )
    tier = rule.escalation[0]
    assert rule.members_of(
        tier.approvers, today=today, usergroups={"S0SREGROUP": frozenset({"U0X"})}
    ) == {
        "U0BOSS",
        "U0SRE1",
        "U0SRE2",
        "U0X",
    }
