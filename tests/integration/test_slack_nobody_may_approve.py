"""A request nobody but its askers may approve is refused when asked, filing nothing
(issue 13): the sole approver asking for herself, a commander asking for the only other
approver, a bundle item needing two of two approvers one of whom asks. A rule with an
escalation tier is filed (escalation may add approvers). Through Slack (the emulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.slack_harness import ALICE, BOB, CAROL, SlackHarness

POLICY = """
groups:
  everyone: {members: [U0ALICE, U0BOB, U0CAROL]}
may_request_for:
  - requesters: {users: [U0BOB]}
    beneficiaries: {users: [U0CAROL]}
defaults:
  requesters: {groups: [everyone]}
  approvers: {users: [U0BOB, U0CAROL], channel: C0ACCESS}
  max_duration: 2h
  default_duration: 30m
  request_timeout: 1h
resources:
  solo:
    provider: {type: noop}
    roles:
      write:
        approvers: {users: [U0ALICE], channel: C0ACCESS}
  orders-db:
    provider: {type: noop}
    default_role: read
    roles:
      read: {}
      write:
        approvals_required: 2
  paged:
    provider: {type: noop}
    roles:
      read:
        approvers: {users: [U0ALICE], channel: C0ACCESS}
        escalation:
          - {escalate_after: 10m, approvers: {users: [U0BOB]}}
bundles:
  pair: [orders-db/read, orders-db/write]
"""


@pytest.fixture
def bot_options(tmp_path: Path) -> dict[str, Any]:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICY)
    return {"policy": policy}


async def test_the_sole_approver_asking_for_herself_is_refused(slack: SlackHarness) -> None:
    await slack.command(ALICE, "request solo write 1h fixing things")
    assert "nobody but you may approve solo write" in slack.last_ephemeral(ALICE)
    assert await slack.grants_of(ALICE) == []


async def test_asking_for_the_only_other_approver_is_refused(slack: SlackHarness) -> None:
    """Bob asks for Carol; only Bob and Carol approve orders-db read, and both are askers."""
    await slack.command(BOB, "request for <@U0CAROL> orders-db read 1h fixing things")
    assert "nobody but the askers may approve orders-db read" in slack.last_ephemeral(BOB)
    assert await slack.grants_of(CAROL) == []
    assert await slack.grants_of(BOB) == []


async def test_a_bundle_item_needing_two_of_two_approvers_one_asking_is_refused(
    slack: SlackHarness,
) -> None:
    await slack.command(CAROL, "request bundle pair 1h fixing things")
    answer = slack.last_ephemeral(CAROL)
    assert "orders-db write needs 2 approvals but only <@U0BOB> may approve it" in answer
    assert await slack.grants_of(CAROL) == []


async def test_a_rule_with_escalation_is_filed(slack: SlackHarness) -> None:
    """Alice alone approves paged read, but its escalation tier adds Bob later: filed."""
    await slack.command(ALICE, "request paged read 1h fixing things")
    [grant] = await slack.grants_of(ALICE)
    assert grant.resource == "paged"
    assert "only escalation can approve paged read" in slack.last_ephemeral(ALICE)


async def test_explain_says_so_too(slack: SlackHarness) -> None:
    await slack.command(ALICE, "explain solo write")
    assert "May ask: no: nobody but you may approve solo write" in slack.last_ephemeral(ALICE)
    await slack.command(ALICE, "explain paged read")
    text = slack.last_ephemeral(ALICE)
    assert "May ask: yes" in text and "Note: only escalation can approve paged read" in text
    assert await slack.grants_of(ALICE) == []
