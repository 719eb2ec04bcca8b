"""Issue 13, items 4 and 5 end to end: ``/access explain``, the incident thread told which
auto-approval condition failed, and ``/access request for @x`` (policy ``may_request_for``).

The real bot (as ``grantbot serve`` assembles it) on real Redis, driven by signed Slack
requests and real clicks; Slack is the emulator. On call is a static rotation (Carol)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.slack_emulator import FakeUser, Message
from bot.domain.model import Status
from bot.slack import ids
from bot.store.grants import CREATED_EVENT
from tests.integration.slack_harness import (
    ACCESS_CHANNEL,
    ALICE,
    BOB,
    CAROL,
    GENERAL,
    INCIDENT,
    SlackHarness,
)

ERIN = "U0ERIN"
THREAD = "1700000000.000100"

POLICY = """
incident_channels: "^inc-"
incident_id: '\\b(INC-\\d+)\\b'
groups:
  engineers: {members: [U0ALICE, U0BOB, U0CAROL, U0ERIN]}
  approvers: {members: [U0BOB, U0CAROL, U0ERIN]}
  commanders: {members: [U0BOB]}
  responders: {members: [U0ALICE, U0CAROL]}
oncall:
  primary: {type: static, members: [U0CAROL], handoff: "00:00", length: 7d, start: 2020-01-06}
may_request_for:
  - requesters: {groups: [commanders]}
    beneficiaries: {groups: [responders]}
defaults:
  requesters: {groups: [engineers]}
  approvers: {groups: [approvers], channel: C0ACCESS}
  max_duration: 2h
  default_duration: 30m
  request_timeout: 1h
resources:
  orders-db:
    description: auto-approved for the on-call responder in an incident
    provider: {type: noop}
    default_role: read
    roles:
      read:
        auto_approve:
          - {on_call: primary, incident: true, max_duration: 1h, per_user_per_day: 1}
        escalation:
          - {escalate_after: 10m, oncall: primary}
      write:
        approvals_required: 2
"""


@pytest.fixture
def bot_options(tmp_path: Path) -> dict[str, Any]:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICY)
    return {
        "policy": policy,
        "extra_users": [FakeUser(ERIN, "erin", "Erin Commander", "erin@example.com")],
    }


async def _mention(slack: SlackHarness, user: str, text: str, *, channel: str = INCIDENT) -> None:
    resp = await slack.driver.app_mention(user, text, channel=channel, thread_ts=THREAD)
    assert resp.status == 200
    await slack.settle()


def _copy_in(slack: SlackHarness, grant_id: str, channel: str) -> Message:
    return next(m for m in slack.copies(grant_id) if m.channel == channel)


async def _audit(slack: SlackHarness, event: str) -> list[dict[str, Any]]:
    return [e.data async for e in slack.bot.store.audit.entries() if e.data["event"] == event]


# -- explain ------------------------------------------------------------------------------------


async def test_explain_in_slack_says_who_approves_and_which_condition_fails(
    slack: SlackHarness,
) -> None:
    """Alice (not on call) asks in the incident channel: she may ask, Bob, Carol and Erin
    approve one of them, auto-approval fails on "not on call for primary", and the
    escalation tier names who is on call now. Nothing is stored by explaining."""
    await slack.command(ALICE, "explain orders-db", channel=INCIDENT)
    text = slack.last_ephemeral(ALICE)
    assert "orders-db read for <@U0ALICE>, 30m" in text
    assert "May ask: yes" in text
    assert "Approvers: 1 of <@U0BOB>, <@U0CAROL>, <@U0ERIN>, posted in <#C0ACCESS>" in text
    assert "Auto-approval: not now" in text
    assert "fails: not on call for primary" in text
    assert "Escalation 1: after 10m, also on call for primary (now: <@U0CAROL>)" in text
    assert await slack.grants_of(ALICE) == []


async def test_explain_agrees_with_what_a_request_then_gets(slack: SlackHarness) -> None:
    """Carol, on call, is told auto-approval applies now in the incident channel and not in
    #general; her requests then go exactly that way."""
    await slack.command(CAROL, "explain orders-db read", channel=GENERAL)
    assert "fails: not an incident channel or thread" in slack.last_ephemeral(CAROL)
    await slack.command(CAROL, "explain orders-db read", channel=INCIDENT)
    assert (
        "Auto-approval: yes, now (on call for primary, in an incident channel; "
        "0 of 1 a day used today)"
    ) in slack.last_ephemeral(CAROL)
    await slack.command(CAROL, "request orders-db read 30m INC-42 checking", channel=INCIDENT)
    grant = await slack.only_grant_of(CAROL)
    assert grant.status is Status.ACTIVE and grant.auto_approved is not None
    # Her one auto-approval of the day is used: explain now says so, and a request waits.
    await slack.command(CAROL, "explain orders-db read", channel=INCIDENT)
    assert "the limit of 1 auto-approved orders-db read grant per person per day" in (
        slack.last_ephemeral(CAROL)
    )


async def test_explain_of_what_one_may_not_ask_and_of_an_unknown_resource(
    slack: SlackHarness,
) -> None:
    """Someone outside the requesters is told they may not ask and why; an unknown resource
    is named as such; a malformed command gets its usage line."""
    await slack.command("U0DAVE", "explain orders-db write")
    assert "May ask: no: you may not request orders-db write" in slack.last_ephemeral("U0DAVE")
    await slack.command(ALICE, "explain nope")
    assert 'unknown resource "nope"' in slack.last_ephemeral(ALICE)
    await slack.command(ALICE, "explain")
    assert "Usage: /access explain &lt;resource&gt;" in slack.last_ephemeral(ALICE)


# -- the incident thread hears which condition failed --------------------------------------------


async def test_incident_thread_hears_why_a_request_was_not_auto_approved(
    slack: SlackHarness,
) -> None:
    """In the incident thread: Alice is not on call, Carol asks for longer than the cap; each
    announcement says which condition failed, then who was asked."""
    await _mention(slack, ALICE, "request orders-db read 30m INC-42 checking")
    [announced] = slack.emulator.thread(INCIDENT, THREAD)
    assert "not auto-approved: not on call for primary; asked the approvers" in announced.text
    await _mention(slack, CAROL, "request orders-db read 2h INC-42 long look")
    last = slack.emulator.thread(INCIDENT, THREAD)[-1]
    assert "not auto-approved: the duration 2h is over the cap of 1h" in last.text
    grant = next(g for g in await slack.grants_of(CAROL))
    assert grant.status is Status.PENDING


async def test_outside_an_incident_nothing_is_said_about_auto_approval(
    slack: SlackHarness,
) -> None:
    """A request in #general could never be auto-approved (the rule wants an incident): the
    thread is not told a reason."""
    await _mention(slack, ALICE, "request orders-db read 30m INC-42 checking", channel=GENERAL)
    [announced] = slack.emulator.thread(GENERAL, THREAD)
    assert "not auto-approved" not in announced.text


# -- on behalf ------------------------------------------------------------------------------------


async def test_a_commander_asks_for_a_responder_who_alone_gets_the_credential(
    slack: SlackHarness,
) -> None:
    """Bob (commander) asks for Alice: the grant is Alice's, the approvers see who asked,
    Bob cannot approve what he asked for, two others approve, the credential goes only to
    Alice's DM and the audit names both."""
    await slack.command(BOB, "request for <@U0ALICE|alice> orders-db write 30m INC-7 fix data")
    confirmation = slack.last_ephemeral(BOB)
    assert "Asked on behalf of <@U0ALICE>" in json.dumps(
        slack.emulator.ephemerals(user=BOB)[-1].blocks
    )
    grant = await slack.only_grant_of(ALICE)
    assert grant.status is Status.PENDING and grant.requested_by == BOB
    assert grant.id in confirmation
    assert await slack.grants_of(BOB) == []
    assert any(grant.id in m.text and "on your behalf" in m.text for m in slack.dms(ALICE))

    copy = _copy_in(slack, grant.id, ACCESS_CHANNEL)
    assert "Asked by" in json.dumps(copy.blocks) and "<@U0BOB>" in json.dumps(copy.blocks)
    # its notification text says who asked, for whom
    assert copy.text.startswith("<@U0BOB> asks for <@U0ALICE>: orders-db write for 30m"), copy.text
    # Bob is an approver, but not of a request he asked for.
    assert not any(m.channel == slack.emulator.dm_channel(BOB) for m in slack.copies(grant.id))
    await slack.click(BOB, copy, ids.APPROVE)
    assert "cannot approve your own request" in slack.last_ephemeral(BOB)
    await slack.click(CAROL, _copy_in(slack, grant.id, ACCESS_CHANNEL), ids.APPROVE)
    await slack.click(ERIN, _copy_in(slack, grant.id, ACCESS_CHANNEL), ids.APPROVE)
    active = await slack.bot.store.get(grant.id)
    assert active.status is Status.ACTIVE

    def credential_dms(user: str) -> list[Message]:
        return [m for m in slack.dms(user) if grant.id in m.text and "credential" in m.text]

    assert credential_dms(ALICE), [m.text for m in slack.dms(ALICE)]
    assert credential_dms(BOB) == []
    [created] = [e for e in await _audit(slack, CREATED_EVENT) if e["grant_id"] == grant.id]
    assert created["actor"] == BOB
    assert created["details"]["requester"] == ALICE
    assert created["details"]["requested_by"] == BOB


async def test_the_beneficiary_may_not_approve_either(slack: SlackHarness) -> None:
    """Bob asks for Carol, an approver: Carol's click is refused as her own request. (Read:
    write needs two approvers besides the askers Bob and Carol, and only Erin is left, so
    asking for it is refused outright.)"""
    await slack.command(BOB, "request for <@U0CAROL> orders-db read 30m fix data")
    grant = await slack.only_grant_of(CAROL)
    assert not any(m.channel == slack.emulator.dm_channel(CAROL) for m in slack.copies(grant.id))
    await slack.click(CAROL, _copy_in(slack, grant.id, ACCESS_CHANNEL), ids.APPROVE)
    assert "cannot approve your own request" in slack.last_ephemeral(CAROL)
    assert (await slack.bot.store.get(grant.id)).approvals == []


async def test_asking_for_someone_the_policy_does_not_allow_changes_nothing(
    slack: SlackHarness,
) -> None:
    """Alice is no commander; Bob may not ask for Erin (no responder): each is told why and
    nothing is stored; a name that is not a mention gets the usage line."""
    await slack.command(ALICE, "request for <@U0CAROL> orders-db read 30m INC-7 look")
    assert "does not let you request access for <@U0CAROL>" in slack.last_ephemeral(ALICE)
    await slack.command(BOB, "request for <@U0ERIN> orders-db read 30m INC-7 look")
    assert "may_request_for allows: group commanders for group responders" in (
        slack.last_ephemeral(BOB)
    )
    await slack.command(BOB, "request for carol orders-db read 30m INC-7 look")
    assert "Usage: /access request for @person &lt;resource&gt;" in slack.last_ephemeral(BOB)
    for user in (ALICE, CAROL, ERIN):
        assert await slack.grants_of(user) == []


async def test_the_form_asks_for_someone_else(slack: SlackHarness) -> None:
    """Bob's form has "Request for" (Alice's has not); a choice the policy refuses is an
    error on that field; Alice chosen files her request, asked by Bob."""
    from bot.devtools.slack_driver import (
        plain_text_value,
        static_select_value,
        users_select_value,
    )

    await slack.command(ALICE, "")
    [alice_form] = slack.emulator.views(ALICE)
    assert all(b.get("block_id") != ids.FORM_FOR_BLOCK for b in alice_form.view["blocks"])
    await slack.command(BOB, "")
    [form] = slack.emulator.views(BOB)
    assert any(b.get("block_id") == ids.FORM_FOR_BLOCK for b in form.view["blocks"])

    def values(person: str) -> dict[str, Any]:
        return {
            ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value("orders-db/read")},
            ids.FORM_FOR_BLOCK: {ids.FORM_FOR_ACTION: users_select_value(person)},
            ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("30m")},
            ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("INC-7 look")},
        }

    refused = await slack.driver.view_submission(BOB, form.as_slack(), values=values(ERIN))
    assert "does not let you request access for" in refused.json["errors"][ids.FORM_FOR_BLOCK]
    done = await slack.driver.view_submission(BOB, form.as_slack(), values=values(ALICE))
    assert done.status == 200 and not done.body
    await slack.settle()
    grant = await slack.only_grant_of(ALICE)
    assert grant.requested_by == BOB and grant.status is Status.PENDING
    assert await slack.grants_of(ERIN) == []


async def test_list_shows_what_one_asked_for_others(slack: SlackHarness) -> None:
    """Bob asks for Alice: Bob's /access list shows it under "Asked by you for others"
    (he may cancel it), Alice's under her own; Carol's shows neither."""
    await slack.command(BOB, "request for <@U0ALICE> orders-db write 30m INC-7 fix data")
    grant = await slack.only_grant_of(ALICE)
    await slack.command(BOB, "list")
    bobs = slack.last_ephemeral(BOB)
    assert "Asked by you for others" in bobs
    assert grant.id in bobs.split("Asked by you for others", 1)[1]
    assert "<@U0ALICE>" in bobs
    await slack.command(ALICE, "list")
    alices = slack.last_ephemeral(ALICE)
    assert grant.id in alices and "Asked by you for others" not in alices
    await slack.command(CAROL, "list")
    assert grant.id not in slack.last_ephemeral(CAROL)
