"""Machine clients and change windows in the policy: the schema, the cross-checks, who may
request, and auto-approval inside a named window (pure, ``now`` passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.clients import client_name, client_requester, window_open
from bot.domain.policy.decisions import auto_approve_blocker, evaluate_request, match_auto_approve
from bot.domain.policy.rules import LoadedPolicy
from bot.errors import PolicyDenied, PolicyError
from bot.policy_loader import parse_policy

POLICY = """\
groups:
  sre: {members: [U0SRE1]}
clients:
  deploy-orders:
    description: the orders deploy pipeline
    token: ${DEPLOY_ORDERS_TOKEN}
  nightly:
    token: ${NIGHTLY_TOKEN}
change_windows:
  weekday-deploys:
    days: [mon, tue, wed, thu, fri]
    start: "09:00"
    end: "17:00"
  overnight:
    start: "22:00"
    end: "02:00"
defaults:
  requesters: {everyone: true}
  approvers: {groups: [sre]}
  max_duration: 1h
resources:
  orders-db:
    provider: {type: noop}
    roles:
      migrate:
        requesters: {clients: [deploy-orders], groups: [sre]}
        max_duration: 30m
        auto_approve:
          - change_window: weekday-deploys
            max_duration: 20m
      read: {}
"""

MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC).timestamp()  # a Monday
MONDAY_18 = datetime(2026, 11, 30, 18, 0, tzinfo=UTC).timestamp()
SATURDAY_10 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC).timestamp()


def load(text: str = POLICY) -> LoadedPolicy:
    return parse_policy(text.encode(), filename="p.yaml", environ={})


def test_requester_ids_of_clients() -> None:
    assert client_requester("deploy-orders") == "client:deploy-orders"
    assert client_name("client:deploy-orders") == "deploy-orders"
    assert client_name("U0SRE1") is None


def test_a_client_may_request_only_where_listed_by_name() -> None:
    """`clients:` lets a client ask; `everyone: true` is every person, never a machine."""
    policy = load()
    common = {"duration_s": 600, "reason": "migrate", "tickets": [], "usergroups": {}}
    today = datetime.fromtimestamp(MONDAY_10, UTC).date()
    decision = evaluate_request(
        policy,
        user="client:deploy-orders",
        resource="orders-db",
        role="migrate",
        today=today,
        **common,
    )
    assert decision.rule.role == "migrate"
    with pytest.raises(PolicyDenied, match="open to: group sre, client deploy-orders"):
        evaluate_request(
            policy,
            user="client:nightly",
            resource="orders-db",
            role="migrate",
            today=today,
            **common,
        )
    with pytest.raises(PolicyDenied, match="open to: everyone"):
        evaluate_request(
            policy,
            user="client:deploy-orders",
            resource="orders-db",
            role="read",
            today=today,
            **common,
        )
    assert policy.policy.rule("orders-db", "read").may_request(
        "U0ANYONE", today=today, usergroups={}
    )


@pytest.mark.parametrize(
    ("now", "approved"),
    [(MONDAY_10, True), (MONDAY_18, False), (SATURDAY_10, False), (None, False)],
    ids=["monday-10", "monday-18", "saturday-10", "no-clock"],
)
def test_auto_approval_inside_the_change_window_only(now: float | None, approved: bool) -> None:
    rule = load().policy.rule("orders-db", "migrate")
    match = match_auto_approve(
        rule,
        duration_s=600,
        on_call_schedules=frozenset(),
        in_incident=False,
        grants_today=0,
        now=now,
    )
    assert (match is not None) is approved
    if match is not None:
        assert match.reason == "inside change window weekday-deploys"
    # Outside the window is the requester's circumstance, not something to apologise for.
    blocker = auto_approve_blocker(
        rule,
        duration_s=600,
        on_call_schedules=frozenset(),
        unavailable={},
        in_incident=False,
        grants_today=0,
        now=now,
    )
    assert blocker is None


def test_the_window_still_caps_the_duration() -> None:
    rule = load().policy.rule("orders-db", "migrate")
    assert (
        match_auto_approve(
            rule,
            duration_s=25 * 60,
            on_call_schedules=frozenset(),
            in_incident=False,
            grants_today=0,
            now=MONDAY_10,
        )
        is None
    )


@pytest.mark.parametrize(
    ("hour", "weekday_offset", "is_open"),
    [(23, 0, True), (1, 1, True), (3, 1, False), (21, 0, False)],
)
def test_a_window_past_midnight(hour: int, weekday_offset: int, is_open: bool) -> None:
    """22:00-02:00 on every day: open late evening and into the next morning."""
    window = load().policy.change_windows["overnight"]
    day = datetime(2026, 11, 30, hour, 0, tzinfo=UTC) + timedelta(days=weekday_offset)
    now = day.timestamp()
    assert window.is_open(now) is is_open
    assert window_open(days=frozenset({"mon"}), start_min=22 * 60, end_min=120, now=now) is (
        is_open and (weekday_offset == 0 or hour < 2)
    )


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (("clients: [deploy-orders]", "clients: [deploy-prod]"), 'unknown client "deploy-prod"'),
        (("change_window: weekday-deploys", "change_window: nope"), 'unknown change window "nope"'),
        (("token: ${NIGHTLY_TOKEN}", "token: hunter2"), "an ${ENV_VAR} reference"),
        (('start: "09:00"', 'start: "9am"'), "is not a time of day"),
        (("days: [mon, tue, wed, thu, fri]", "days: [monday]"), "days[0]: must be 'mon'"),
    ],
    ids=["unknown-client", "unknown-window", "literal-token", "bad-time", "bad-day"],
)
def test_policy_check_names_what_is_wrong(edit: tuple[str, str], says: str) -> None:
    with pytest.raises(PolicyError) as raised:
        load(POLICY.replace(*edit))
    assert says in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_an_unset_token_variable_is_a_warning() -> None:
    warnings = [str(w) for w in load().warnings]
    assert any("${DEPLOY_ORDERS_TOKEN} is not set" in w for w in warnings), warnings
