"""Issue 13's policy keys and decisions, pure: ``may_request_for``, ``bundles`` (their
schema, cross-checks and meaning), the auto-approval conditions judged one by one, and the
grammar of ``request for``, ``request bundle`` and ``explain``."""

from __future__ import annotations

import json
from datetime import date
from textwrap import dedent

import pytest

from bot.domain.policy.asking import (
    bundle_items,
    may_ask_for_anyone,
    on_behalf_refusal,
    requestable_bundles,
)
from bot.domain.policy.decisions import Unmet, check_auto_approve, closest_miss
from bot.domain.policy.explain import explain_request, incident_miss, render
from bot.domain.policy.rules import LoadedPolicy
from bot.errors import PolicyDenied, PolicyError, UsageError
from bot.policy_loader import parse_policy
from bot.slack.commands.grammar import parse_command
from bot.slack.commands.parsed import ExplainAccess, RequestBundle, RequestFor

TODAY = date(2026, 6, 1)

POLICY = """
groups:
  ics: {members: [U0IC, {id: U0OLDIC, expires: 2026-05-31}]}
  sre: {members: [U0SRE1, U0SRE2]}
defaults:
  requesters: {groups: [sre, ics]}
  approvers: {users: [U0BOSS]}
may_request_for:
  - requesters: {groups: [ics]}
    beneficiaries: {groups: [sre]}
resources:
  db:
    provider: {type: noop}
    roles:
      read:
        auto_approve:
          - {on_call: primary, incident: true, max_duration: 1h, per_user_per_day: 1}
          - {max_duration: 5m}
      write:
        requesters: {users: [U0SRE1]}
oncall:
  primary: {type: static, members: [U0SRE1], start: 2026-01-05}
bundles:
  responder: [db/read]
  everything: [db/read, db/write]
"""


def parse(text: str) -> LoadedPolicy:
    return parse_policy(dedent(text).encode(), filename="policies.yaml", check_providers=False)


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return parse(POLICY)


def test_may_request_for_follows_its_rules_and_expiry(loaded: LoadedPolicy) -> None:
    """An incident commander may ask for an SRE, not for another commander; a commander
    whose membership expired may not; nobody else may ask for anyone."""
    policy = loaded.policy

    def refusal(requester: str, beneficiary: str) -> str | None:
        return on_behalf_refusal(
            policy, requester=requester, beneficiary=beneficiary, today=TODAY, usergroups={}
        )

    assert refusal("U0IC", "U0SRE1") is None
    assert "group ics for group sre" in (refusal("U0IC", "U0IC") or "")
    assert refusal("U0OLDIC", "U0SRE1") is not None
    assert refusal("U0SRE1", "U0SRE2") is not None
    assert may_ask_for_anyone(policy, requester="U0IC", today=TODAY, usergroups={})
    assert not may_ask_for_anyone(policy, requester="U0SRE1", today=TODAY, usergroups={})


def test_bundles_are_read_and_offered_only_when_every_item_may_be_requested(
    loaded: LoadedPolicy,
) -> None:
    policy = loaded.policy
    assert bundle_items(policy, "everything") == [("db", "read"), ("db", "write")]
    with pytest.raises(PolicyDenied, match='unknown bundle "nope"; bundles: responder, every'):
        bundle_items(policy, "nope")
    assert requestable_bundles(policy, {("db", "read")}) == ["responder"]
    assert requestable_bundles(policy, {("db", "read"), ("db", "write")}) == [
        "responder",
        "everything",
    ]


@pytest.mark.parametrize(
    ("addition", "message"),
    [
        (
            "bundles:\n  bad: [db/nope]\n",
            '"db/nope" is not a resource/role of this policy',
        ),
        ("bundles:\n  bad: [db/read, db/read]\n", "bundle bad lists an item twice"),
        ("bundles:\n  bad: [db]\n", "is not a resource/role pair like orders-db/read"),
        (
            "may_request_for:\n  - requesters: {groups: [nope]}\n"
            "    beneficiaries: {everyone: true}\n",
            'unknown group "nope"',
        ),
    ],
)
def test_cross_checks_of_the_new_keys(addition: str, message: str) -> None:
    """A bundle item naming nothing, an item twice, a malformed item, an unknown group in
    may_request_for: each an error naming where."""
    base = POLICY.split("may_request_for:")[0] + "resources:" + POLICY.split("resources:")[1]
    base = base.split("bundles:")[0]
    with pytest.raises(PolicyError) as caught:
        parse(base + addition)
    assert any(message in str(issue) for issue in caught.value.issues), caught.value.issues


def test_each_auto_approve_condition_is_named(loaded: LoadedPolicy) -> None:
    """Every failing condition of every rule is listed; the nearest rule is the one with the
    fewest; inside an incident that is what the thread hears."""
    rule = loaded.policy.rule("db", "read")
    checks = check_auto_approve(
        rule,
        duration_s=7200,
        on_call_schedules=frozenset(),
        in_incident=False,
        grants_today=1,
    )
    assert [[kind for kind, _ in c.failed] for c in checks] == [
        [Unmet.DURATION, Unmet.NOT_ON_CALL, Unmet.NOT_INCIDENT, Unmet.DAILY_LIMIT],
        [Unmet.DURATION],
    ]
    nearest = closest_miss(checks)
    assert nearest is not None and nearest.index == 1
    assert incident_miss(checks, incident=None) is None
    assert incident_miss(checks, incident="INC-1") == "the duration 2h is over the cap of 5m"
    on_call = check_auto_approve(
        rule,
        duration_s=600,
        on_call_schedules=frozenset({"primary"}),
        in_incident=True,
        grants_today=0,
    )
    assert on_call[0].holds and incident_miss(on_call, incident="INC-1") is None


def test_explain_renders_every_part(loaded: LoadedPolicy) -> None:
    explanation = explain_request(
        loaded,
        user="U0SRE2",
        resource="db",
        role="write",
        duration_s=None,
        today=TODAY,
        usergroups={},
        on_call_schedules=frozenset(),
        unavailable={},
        incident=None,
        grants_today=0,
        tier_on_call={},
    )
    assert not explanation.may_request and not explanation.auto_approves
    text = "\n".join(render(explanation, person=str, place=str, now_text="now"))
    assert "May ask: no: you may not request db write; it is open to: user U0SRE1" in text
    assert "Approvers: 1 of U0BOSS" in text
    assert "Auto-approval: none for this role" in text


def test_the_grammar_of_the_new_commands() -> None:
    assert parse_command("request for <@U0DANA|dana> db read 1h INC-1 x") == RequestFor(
        beneficiary="U0DANA",
        request=parse_command("request db read 1h INC-1 x"),  # type: ignore[arg-type]
    )
    assert parse_command("request bundle responder 30m INC-1 outage") == RequestBundle(
        "responder", 1800, "INC-1 outage", ("INC-1",)
    )
    assert parse_command("EXPLAIN db read") == ExplainAccess("db", "read")
    for bad, usage in [
        ("request for dana db 1h x", "/access request for @person"),
        ("request bundle responder", "/access request bundle <name>"),
        ("request bundle responder 1h", "a reason is required"),
        ("explain db read more", "/access explain"),
    ]:
        with pytest.raises(UsageError, match=usage):
            parse_command(bad)


def test_help_shows_the_new_commands() -> None:
    """``/access help`` lists request for, request bundle and explain (mrkdwn-escaped)."""
    from bot.slack.blocks.lists import help_message

    text = help_message().text + json.dumps(help_message().blocks)
    for line in (
        "/access request for @person &lt;resource&gt;",
        "/access request bundle &lt;name&gt; &lt;duration&gt;",
        "/access explain &lt;resource&gt; [&lt;role&gt;]",
    ):
        assert line in text


def test_policy_check_summary_lists_bundles_and_who_may_ask_for_whom(
    loaded: LoadedPolicy,
) -> None:
    from bot.domain.policy.summary import format_summary

    text = format_summary(loaded)
    assert "bundles:\n  responder: db read\n  everything: db read, db write" in text
    assert "may request for others:\n  group ics for group sre" in text
