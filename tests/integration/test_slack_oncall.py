"""Issue 6 end to end: incident threads, on-call auto-approval and escalation.

The real bot (bot.wiring.assemble, as `grantbot serve` runs it) on real Redis, driven by
signed Slack requests; Slack, PagerDuty and Opsgenie are emulators speaking their real JSON
at the wire, reached through the policy's base_url. Nothing else is faked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot import metrics
from bot.devtools.opsgenie_emulator import OpsgenieEmulator
from bot.devtools.pagerduty_emulator import PagerDutyEmulator
from bot.devtools.slack_emulator import FakeChannel, FakeUser, Message
from bot.domain.model import Status
from bot.service import AUTO_APPROVE_UNAVAILABLE, ESCALATED
from bot.slack import ids
from bot.store.grants import CREATED_EVENT
from tests.integration.slack_harness import (
    ACCESS_CHANNEL,
    ALICE,
    BOB,
    CAROL,
    DAVE,
    GENERAL,
    INCIDENT,
    SlackHarness,
)
from tests.integration.support import ONCALL_ENV, FakeClock

ERIN = "U0ERIN"
#: An incident channel with no topic: its incident id comes from its name.
INC_4242 = "C0INC4242"
THREAD = "1700000000.000100"
ONCALL_TIMEOUT_S = 0.5
AUTO_REASON = "auto-approved: U0CAROL on call for primary, in #inc-42-orders-db"

POLICY = """
incident_channels: "^inc-"
incident_id: '\\b(INC-\\d+)\\b'
groups:
  engineers: {members: [U0ALICE, U0BOB, U0CAROL, U0ERIN]}
  approvers: {members: [U0BOB]}
oncall:
  primary: {type: pagerduty, schedule_id: PSCHED1, token: "${GB_PD_TOKEN}", base_url: "PD_URL"}
  dba: {type: opsgenie, schedule: DBA, api_key: "${GB_OG_KEY}", base_url: "OG_URL"}
defaults:
  requesters: {groups: [engineers]}
  approvers: {groups: [approvers], channel: C0ACCESS}
  max_duration: 2h
  default_duration: 30m
  request_timeout: 1h
  require_reason: true
resources:
  orders-db:
    description: Read access, auto-approved for the on-call responder in an incident
    provider: {type: noop}
    roles:
      read:
        auto_approve:
          - {on_call: primary, incident: true, max_duration: 1h, per_user_per_day: 2}
        escalation:
          - escalate_after: 10m
            approvers: {users: [U0ERIN]}
          - escalate_after: 20m
            oncall: dba
"""


@pytest.fixture
def bot_options(tmp_path: Path, pd: PagerDutyEmulator, og: OpsgenieEmulator) -> dict[str, Any]:
    """The policy reaches both on-call emulators (Carol on call for primary and dba); Erin,
    an escalation approver, and #inc-4242, an incident channel with no topic, join Slack."""
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICY.replace("PD_URL", pd.url).replace("OG_URL", og.url))
    return {
        "policy": policy,
        "environ": ONCALL_ENV,
        "oncall_timeout_s": ONCALL_TIMEOUT_S,
        "extra_users": [FakeUser(ERIN, "erin", "Erin Escalation", "erin@example.com")],
        "extra_channels": [FakeChannel(INC_4242, "inc-4242")],
    }


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _count(metric: Any, **labels: str) -> float:
    return float(metric.labels(**labels)._value.get())


async def _mention(slack: SlackHarness, user: str, text: str, *, channel: str = INCIDENT) -> None:
    resp = await slack.driver.app_mention(user, text, channel=channel, thread_ts=THREAD)
    assert resp.status == 200
    await slack.settle()


async def _audit(slack: SlackHarness, event: str) -> list[dict[str, Any]]:
    return [e.data async for e in slack.bot.store.audit.entries() if e.data["event"] == event]


def _dm_copy(slack: SlackHarness, user: str, grant_id: str) -> Message | None:
    dm = slack.emulator.dm_channel(user)
    return next((m for m in slack.copies(grant_id) if m.channel == dm), None)


async def test_on_call_responder_in_an_incident_thread_is_auto_approved(
    slack: SlackHarness,
) -> None:
    """Carol, on call for primary in PagerDuty, asks in the incident thread: approved at once;
    the thread and the audit say why and name the incident from the channel topic; the
    approvers get a review copy whose Revoke now works for them and nobody else."""
    auto_before = _count(metrics.REQUESTS, outcome="auto_approved")
    by_resource = _count(metrics.AUTO_APPROVALS, resource="orders-db")
    await _mention(slack, CAROL, "request orders-db read 30m INC-42 checking latency")
    grant = await slack.only_grant_of(CAROL)
    assert grant.status is Status.ACTIVE and grant.auto_approved == AUTO_REASON
    assert grant.origin.incident == "INC-42"  # from the topic "INC-42: orders-db latency"

    thread = slack.emulator.thread(INCIDENT, THREAD)
    assert any(AUTO_REASON in m.text and grant.id in m.text for m in thread)
    [approved] = [e for e in await _audit(slack, "AUTO_APPROVE") if e["grant_id"] == grant.id]
    assert approved["reason"] == AUTO_REASON
    assert approved["details"]["incident"] == "INC-42"
    [created] = await _audit(slack, CREATED_EVENT)
    assert created["details"]["origin"]["incident"] == "INC-42"
    assert _count(metrics.REQUESTS, outcome="auto_approved") == auto_before + 1
    assert _count(metrics.AUTO_APPROVALS, resource="orders-db") == by_resource + 1

    review = _dm_copy(slack, BOB, grant.id)
    assert review is not None and ids.REVOKE in _text(review.blocks)
    assert ids.APPROVE not in _text(review.blocks)
    assert any(m.channel == ACCESS_CHANNEL for m in slack.copies(grant.id))

    await slack.click(DAVE, review, ids.REVOKE)
    assert "not an approver" in slack.last_ephemeral(DAVE)
    assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE
    await slack.click(BOB, review, ids.REVOKE)
    assert (await slack.bot.store.get(grant.id)).status is Status.REVOKED
    thread = slack.emulator.thread(INCIDENT, THREAD)
    assert "Revoked by <@U0BOB>" in thread[-1].text


async def test_pagerduty_down_means_manual_approval_and_the_thread_hears_why(
    slack: SlackHarness, pd: PagerDutyEmulator
) -> None:
    """PagerDuty refusing connections: Carol is not taken to be on call; her request waits
    for the approvers, and the thread, her and the audit are told why."""
    await pd.refuse()
    await _mention(slack, CAROL, "request orders-db read 30m INC-42 checking latency")
    grant = await slack.only_grant_of(CAROL)
    assert grant.status is Status.PENDING and grant.auto_approved is None
    [announced] = slack.emulator.thread(INCIDENT, THREAD)
    assert grant.id in announced.text
    assert "auto-approval not possible: on-call schedule primary: PagerDuty is unreachable" in (
        announced.text
    )
    assert "asked the approvers" in announced.text
    [why] = await _audit(slack, AUTO_APPROVE_UNAVAILABLE)
    assert why["grant_id"] == grant.id and "PagerDuty is unreachable" in why["reason"]
    assert why["details"]["incident"] == "INC-42"
    bob_copy = _dm_copy(slack, BOB, grant.id)
    assert bob_copy is not None and ids.APPROVE in _text(bob_copy.blocks)


async def test_pagerduty_answering_after_the_timeout_means_manual_approval(
    slack: SlackHarness, pd: PagerDutyEmulator
) -> None:
    """PagerDuty answering only after the lookup's timeout counts as down: the request waits
    no longer than the timeout, falls back to the approvers and the thread hears why."""
    pd.slow(delay_s=5.0)
    started = time.monotonic()
    await _mention(slack, CAROL, "request orders-db read 30m INC-42 checking latency")
    assert time.monotonic() - started < 3.0
    grant = await slack.only_grant_of(CAROL)
    assert grant.status is Status.PENDING
    [announced] = slack.emulator.thread(INCIDENT, THREAD)
    assert (
        "auto-approval not possible: on-call schedule primary: "
        f"PagerDuty did not answer within {ONCALL_TIMEOUT_S:g} s; asked the approvers"
    ) in announced.text


async def test_the_per_day_limit_sends_the_next_request_to_the_approvers(
    slack: SlackHarness,
) -> None:
    """per_user_per_day 2: Carol's first two requests are auto-approved, the third waits for
    a person and says the limit was reached."""
    for _ in range(2):
        await _mention(slack, CAROL, "request orders-db read 10m INC-42 checking latency")
    grants = await slack.grants_of(CAROL)
    assert [g.status for g in grants] == [Status.ACTIVE, Status.ACTIVE]
    await _mention(slack, CAROL, "request orders-db read 10m INC-42 one more look")
    third = next(g for g in await slack.grants_of(CAROL) if g.status is Status.PENDING)
    assert third.auto_approved is None
    last = slack.emulator.thread(INCIDENT, THREAD)[-1]
    assert third.id in last.text
    assert "the limit of 2 auto-approved orders-db read grants per person per day" in last.text


async def test_outside_an_incident_channel_even_the_on_call_person_waits(
    slack: SlackHarness,
) -> None:
    """The rule needs an incident: Carol, on call, asking in #general waits for approvers;
    nothing stood in the way, so no excuse is given, only the request in the thread."""
    await _mention(slack, CAROL, "request orders-db read 30m INC-42 checking", channel=GENERAL)
    grant = await slack.only_grant_of(CAROL)
    assert grant.status is Status.PENDING and grant.origin.incident is None
    [announced] = slack.emulator.thread(GENERAL, THREAD)
    assert grant.id in announced.text and "auto-approval not possible" not in announced.text
    assert await _audit(slack, AUTO_APPROVE_UNAVAILABLE) == []


async def test_a_command_in_an_incident_channel_is_announced_and_its_outcomes_threaded(
    slack: SlackHarness,
) -> None:
    """/access in #inc-4242 (no topic: the id is the channel name): the request is posted in
    the channel for the responders, and its approval, a denial and a time-out are posted in
    the threads under those posts."""
    clock = slack.bot.service.clock
    assert isinstance(clock, FakeClock)
    await slack.command(ALICE, "request orders-db read 30m INC-4242 reading", channel=INC_4242)
    grant = await slack.only_grant_of(ALICE)
    assert grant.status is Status.PENDING and grant.origin.incident == "inc-4242"
    [root] = slack.emulator.messages(INC_4242)
    assert grant.id in root.text and root.thread_ts is None
    assert grant.id in slack.last_ephemeral(ALICE)

    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await slack.click(BOB, copy, ids.APPROVE)
    [approved] = slack.emulator.thread(INC_4242, root.ts)
    assert grant.id in approved.text and "Approved by <@U0BOB>" in approved.text

    await slack.command(ALICE, "request orders-db read 30m INC-4242 again", channel=INC_4242)
    second = next(g for g in await slack.grants_of(ALICE) if g.status is Status.PENDING)
    second_root = next(m for m in slack.emulator.messages(INC_4242) if second.id in m.text)
    await slack.command(ALICE, "request orders-db read 30m INC-4242 third", channel=INC_4242)
    third = next(
        g for g in await slack.grants_of(ALICE) if g.status is Status.PENDING and g != second
    )
    third_root = next(m for m in slack.emulator.messages(INC_4242) if third.id in m.text)
    await slack.bot.service.deny(third.id, user=BOB, reason="use the replica")
    [denied] = slack.emulator.thread(INC_4242, third_root.ts)
    assert "Denied by <@U0BOB>: use the replica" in denied.text

    clock.advance(61 * 60)
    await slack.bot.service.time_out_due()
    await slack.settle()  # the end reaches Slack from the audit stream
    [lapsed] = slack.emulator.thread(INC_4242, second_root.ts)
    assert "nobody decided in time" in lapsed.text


async def test_escalation_asks_the_next_tier_whose_click_then_counts(slack: SlackHarness) -> None:
    """Erin (tier 1, after 10m) may not approve before the tier is reached; 10 minutes on
    she gets the approval request, it is audited, and her click approves."""
    clock = slack.bot.service.clock
    assert isinstance(clock, FakeClock)
    approvals = _count(metrics.APPROVAL_DECISIONS, decision="approve")
    await slack.command(ALICE, "request orders-db read 30m INC-42 reading")
    grant = await slack.only_grant_of(ALICE)
    channel_copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await slack.click(ERIN, channel_copy, ids.APPROVE)
    assert "not an approver" in slack.last_ephemeral(ERIN)
    assert _dm_copy(slack, ERIN, grant.id) is None

    clock.advance(10 * 60 + 1)
    await slack.bot.service.escalate_due()
    erin_copy = await slack.emulator.wait_for(lambda: _dm_copy(slack, ERIN, grant.id))
    assert ids.APPROVE in _text(erin_copy.blocks)
    [escalated] = await _audit(slack, ESCALATED)
    assert escalated["grant_id"] == grant.id and escalated["details"]["tier"] == 1
    assert escalated["details"]["asked"] == [ERIN]

    await slack.click(ERIN, erin_copy, ids.APPROVE)
    active = await slack.bot.store.get(grant.id)
    assert active.status is Status.ACTIVE and active.decided_by == ERIN
    assert _count(metrics.APPROVAL_DECISIONS, decision="approve") == approvals + 1
    assert await slack.bot.service.escalate_due() == []  # each tier is asked once


async def test_escalation_to_the_owning_teams_on_call(slack: SlackHarness) -> None:
    """Tier 2 pages whoever Opsgenie says is on call for dba (Carol): before 20 minutes her
    click is refused; after, she is asked and her approval counts."""
    clock = slack.bot.service.clock
    assert isinstance(clock, FakeClock)
    await slack.command(ALICE, "request orders-db read 30m INC-42 reading")
    grant = await slack.only_grant_of(ALICE)
    channel_copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    clock.advance(10 * 60 + 1)
    await slack.bot.service.escalate_due()
    await slack.click(CAROL, channel_copy, ids.APPROVE)
    assert "not an approver" in slack.last_ephemeral(CAROL)

    clock.advance(10 * 60)
    await slack.bot.service.escalate_due()
    carol_copy = await slack.emulator.wait_for(lambda: _dm_copy(slack, CAROL, grant.id))
    tiers = {e["details"]["tier"]: e["details"] for e in await _audit(slack, ESCALATED)}
    assert tiers[2]["oncall"] == "dba" and tiers[2]["on_call"] == [CAROL]
    await slack.click(CAROL, carol_copy, ids.APPROVE)
    active = await slack.bot.store.get(grant.id)
    assert active.status is Status.ACTIVE and active.decided_by == CAROL
