"""Reminders before a grant ends and scheduled starts (issue 13, items 1-2), end to end in
process: the bot as serve assembles it, real Redis and scheduler, Slack emulated at the wire
(signed requests, real clicks on the messages as Slack holds them, Block Kit checked)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.devtools.slack_driver import plain_text_value, static_select_value
from bot.devtools.slack_emulator import FakeUser, Message
from bot.domain.model import Grant, Status
from bot.slack import ids
from bot.store.keys import Keys
from tests.integration.slack_harness import (
    ALICE,
    BOB,
    GENERAL,
    INCIDENT,
    SlackHarness,
    running_bot,
)
from tests.integration.support import wait_for

POLICY = Path(__file__).parent.parent / "fixtures" / "lifecycle_policy.yaml"
#: A requester in Berlin, so times are shown back in a zone that is not UTC.
ERIN = "U0ERIN"
BERLIN = "Europe/Berlin"


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


@pytest.fixture
async def slack(redis_url: str, keys: Keys) -> AsyncIterator[SlackHarness]:
    """The bot on the lifecycle policy, on the real clock (jobs fire on time)."""
    erin = FakeUser(ERIN, "erin", "Erin Berlin", "erin@example.com", tz=BERLIN, tz_offset_s=3600)
    async with running_bot(
        redis_url=redis_url,
        prefix=keys.prefix,
        policy=POLICY,
        clock=time.time,
        extra_users=[erin],
    ) as harness:
        yield harness


def reminders_of(slack: SlackHarness, user: str, grant_id: str) -> list[Message]:
    """The reminders ``user`` got about ``grant_id`` (as they stand now)."""
    return [m for m in slack.dms(user) if m.text.startswith(":hourglass:") and grant_id in m.text]


def buttons(message: Message) -> list[tuple[str, str, str]]:
    return [
        (e["action_id"], e["text"]["text"], e["value"])
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def reminder_for(slack: SlackHarness, user: str, grant: Grant) -> Message:
    await wait_for(lambda: reminders_of(slack, user, grant.id), what="the reminder DM")
    [reminder] = reminders_of(slack, user, grant.id)
    return reminder


async def active_grant(slack: SlackHarness, text: str, *, user: str = ALICE) -> Grant:
    await slack.command(user, text)
    grant = await slack.only_grant_of(user)
    assert grant.status is Status.ACTIVE, slack.ephemerals(user)
    return grant


async def approved_grant(slack: SlackHarness, text: str) -> Grant:
    """``text`` asked by Alice and approved by Bob's click: the ACTIVE grant."""
    await slack.command(ALICE, text)
    request = await slack.only_grant_of(ALICE)
    copy = next(m for m in slack.copies(request.id) if m.channel.startswith("D"))
    await slack.click(BOB, copy, ids.APPROVE)
    grant = await slack.bot.store.get(request.id)
    assert grant.status is Status.ACTIVE
    return grant


async def test_reminder_offers_extend_and_done_and_extend_applies_without_approval(
    slack: SlackHarness,
) -> None:
    """remind_before the end the requester gets a DM with `Extend +30m` (the default
    duration; 2h - 1h still allows it) and `I'm done`; Extend within extend_without_approval
    moves the end by 30m with nobody asked, and the reminder says so, buttons gone."""
    grant = await approved_grant(slack, "request desk play 1h checking the desk")
    reminder = await reminder_for(slack, ALICE, grant)
    assert buttons(reminder) == [
        (ids.REMIND_EXTEND, "Extend +30m", grant.id),
        (ids.REMIND_DONE, "I'm done", grant.id),
    ]
    assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE

    resp = await slack.click(ALICE, reminder, ids.REMIND_EXTEND)
    assert resp.status == 200
    extended = await slack.bot.store.get(grant.id)
    assert extended.expires_at == pytest.approx((grant.expires_at or 0) + 1800)
    [updated] = reminders_of(slack, ALICE, grant.id)
    assert updated.history, "the reminder was updated with chat.update"
    assert "extended +30m by <@U0ALICE>" in updated.text
    assert buttons(updated) == []
    extension = next(g for g in await slack.bot.store.list_grants() if g.kind == "extension")
    assert extension.parent_id == grant.id
    assert extension.auto_approved is not None
    assert "extend_without_approval" in extension.auto_approved
    assert slack.copies(extension.id) == [] or all(
        ids.APPROVE not in _text(c.blocks) for c in slack.copies(extension.id)
    )
    # The reminder moved with the end: its job is now for the new expiry.
    run_at = await slack.bot.lifecycle.jobs.run_time("remind", grant.id)
    assert run_at == pytest.approx((extended.expires_at or 0) - (3600 - 4))


async def test_a_request_from_an_incident_channel_is_reminded_there_too(
    slack: SlackHarness,
) -> None:
    """The reminder also goes where the request was asked (the incident channel's thread),
    and both copies show the outcome once Extend was clicked on one."""
    await slack.command(ALICE, "request sandbox play 1h INC-42 checking", channel=INCIDENT)
    grant = await slack.only_grant_of(ALICE)
    assert grant.status is Status.ACTIVE and grant.origin.incident is not None
    dm_reminder = await reminder_for(slack, ALICE, grant)

    def in_incident() -> list[Message]:
        return [
            m
            for m in slack.emulator.messages(INCIDENT)
            if m.text.startswith(":hourglass:") and grant.id in m.text
        ]

    await wait_for(in_incident, what="the reminder in the incident channel")
    await slack.click(ALICE, dm_reminder, ids.REMIND_EXTEND)
    [thread_copy] = in_incident()
    assert "extended +30m by <@U0ALICE>" in thread_copy.text and buttons(thread_copy) == []
    assert "extended +30m" in reminders_of(slack, ALICE, grant.id)[0].text


async def test_extend_from_the_reminder_goes_to_approvers_without_the_key(
    slack: SlackHarness,
) -> None:
    """Without extend_without_approval the extension is asked of the approvers, as
    `/access extend` would be; the reminder says it is waiting, then what they decided."""
    grant = await approved_grant(slack, "request gated play 1h reading")
    reminder = await reminder_for(slack, ALICE, grant)
    await slack.click(ALICE, reminder, ids.REMIND_EXTEND)
    extension = next(g for g in await slack.bot.store.list_grants() if g.kind == "extension")
    assert extension.status is Status.PENDING and extension.duration_s == 1800
    assert slack.copies(extension.id), "the approvers were asked"
    [updated] = reminders_of(slack, ALICE, grant.id)
    assert f"extension `{extension.id}` is waiting for approval" in updated.text
    assert (await slack.bot.store.get(grant.id)).expires_at == grant.expires_at
    # A person's decision, later, shows on the reminder too.
    copy = next(m for m in slack.copies(extension.id) if m.channel.startswith("D"))
    await slack.click(BOB, copy, ids.APPROVE)
    assert (await slack.bot.store.get(grant.id)).expires_at == (grant.expires_at or 0) + 1800
    [decided] = reminders_of(slack, ALICE, grant.id)
    assert f"extension `{extension.id}` (+30m) was approved by <@U0BOB>" in decided.text


async def test_im_done_ends_the_grant_as_the_requester(slack: SlackHarness) -> None:
    """`I'm done` revokes now, audited as the requester's, and the reminder says so."""
    grant = await active_grant(slack, "request sandbox play 1h checking the sandbox")
    reminder = await reminder_for(slack, ALICE, grant)
    await slack.click(ALICE, reminder, ids.REMIND_DONE)
    ended = await slack.bot.store.get(grant.id)
    assert ended.status is Status.REVOKED and ended.ended_by == ALICE
    assert ended.end_reason == "done (from the reminder)"
    entries = [e.data for e in await slack.bot.store.audit.read_page("-", count=1000)]
    revoke = next(e for e in entries if e.get("grant_id") == grant.id and e["event"] == "REVOKE")
    assert revoke["actor"] == ALICE
    [updated] = reminders_of(slack, ALICE, grant.id)
    assert "<@U0ALICE> is done" in updated.text and buttons(updated) == []


async def test_someone_else_cannot_use_the_reminders_buttons(slack: SlackHarness) -> None:
    """A click by another person (a forwarded message, a forged payload) changes nothing and
    is answered privately."""
    grant = await active_grant(slack, "request sandbox play 1h checking the sandbox")
    reminder = await reminder_for(slack, ALICE, grant)
    await slack.click(BOB, reminder, ids.REMIND_DONE)
    await slack.click(BOB, reminder, ids.REMIND_EXTEND)
    assert len(slack.ephemerals(BOB)) == 2
    assert all("U0ALICE" in text for text in slack.ephemerals(BOB))
    after = await slack.bot.store.get(grant.id)
    assert after.status is Status.ACTIVE and after.expires_at == grant.expires_at


async def test_no_extend_button_when_max_duration_is_used_up(slack: SlackHarness) -> None:
    """A grant that already has all of max_duration gets `I'm done` only."""
    grant = await active_grant(slack, "request sandbox brief 1h all of it")
    reminder = await reminder_for(slack, ALICE, grant)
    assert [b[0] for b in buttons(reminder)] == [ids.REMIND_DONE]


async def test_a_grant_that_ended_is_not_reminded(slack: SlackHarness) -> None:
    """The reminder job of a grant revoked before it fires runs and sends nothing."""
    grant = await active_grant(slack, "request sandbox play 1h checking the sandbox")
    jobs = slack.bot.lifecycle.jobs
    assert await jobs.run_time("remind", grant.id) is not None
    await slack.command(ALICE, f"revoke {grant.id} finished early")
    assert (await slack.bot.store.get(grant.id)).status is Status.REVOKED
    # The job fires when due and is gone then: the positive signal it ran.
    await wait_for(lambda: _gone(jobs, grant.id), what="the reminder job ran", timeout_s=15)
    assert reminders_of(slack, ALICE, grant.id) == []


async def _gone(jobs: Any, grant_id: str) -> bool:
    return await jobs.run_time("remind", grant_id) is None


async def test_remind_before_null_sends_no_reminder(slack: SlackHarness) -> None:
    grant = await active_grant(slack, "request quiet play 1h reading")
    jobs = slack.bot.lifecycle.jobs
    assert await jobs.run_time("remind", grant.id) is None


# -- scheduled starts -------------------------------------------------------------------------


async def test_scheduled_start_waits_then_issues_at_the_start(slack: SlackHarness) -> None:
    """`in 3s`: approved (here by policy) it waits SCHEDULED with nothing issued, the
    requester is told when it starts (in their zone); at the start the credential is issued
    and the duration counts from the start."""
    await slack.command(ERIN, "request sandbox play 1h in 3s deploy window")
    grant = await slack.only_grant_of(ERIN)
    assert grant.status is Status.SCHEDULED and grant.start_tz == BERLIN
    assert grant.starts_at is not None and grant.credential_ref is None
    confirmation = slack.last_ephemeral(ERIN)
    assert "starts" in confirmation and f"({BERLIN})" in confirmation
    notice = slack.dms(ERIN)[-1]
    assert "is approved. It starts" in notice.text and f"({BERLIN})" in notice.text

    await wait_for(lambda: _status(slack, grant.id, Status.ACTIVE), what="the start", timeout_s=15)
    active = await slack.bot.store.get(grant.id)
    assert active.expires_at == pytest.approx(grant.starts_at + 3600)
    assert (active.activated_at or 0) >= grant.starts_at - 5
    await wait_for(
        lambda: any("Your access to sandbox play" in _text(m.blocks) for m in slack.dms(ERIN)),
        what="the credential DM",
    )


async def _status(slack: SlackHarness, grant_id: str, status: Status) -> bool:
    return (await slack.bot.store.get(grant_id)).status is status


async def test_on_a_day_at_a_time_is_read_in_the_requesters_zone(slack: SlackHarness) -> None:
    """`on YYYY-MM-DD 09:00` is 09:00 on the requester's wall clock (Berlin here), shown back
    with the zone, to approvers as well."""
    day = (datetime.now(ZoneInfo(BERLIN)) + timedelta(days=1)).date()
    await slack.command(ALICE, "request gated play 1h warm-up")  # someone else's, for contrast
    await slack.command(ERIN, f"request gated play 1h on {day} 09:00 release day")
    grant = await slack.only_grant_of(ERIN)
    expected = datetime(day.year, day.month, day.day, 9, 0, tzinfo=ZoneInfo(BERLIN))
    assert grant.starts_at == expected.timestamp() and grant.status is Status.PENDING
    shown = f"{day} 09:00 {expected.tzname()} ({BERLIN})"
    assert shown in slack.last_ephemeral(ERIN)
    copy = next(m for m in slack.copies(grant.id) if m.channel.startswith("D"))
    assert shown in _text(copy.blocks)
    await slack.click(BOB, copy, ids.APPROVE)
    scheduled = await slack.bot.store.get(grant.id)
    assert scheduled.status is Status.SCHEDULED and scheduled.credential_ref is None
    jobs = slack.bot.lifecycle.jobs
    assert await jobs.run_time("start", grant.id) == expected.timestamp()
    assert "starts" in _text(next(c for c in slack.copies(grant.id)).blocks)


async def test_a_scheduled_grant_is_cancelled_by_its_requester_or_revoked_by_an_approver(
    slack: SlackHarness,
) -> None:
    """Before its start a SCHEDULED grant ends without anything issued: `/access revoke` by
    the requester cancels it, by an approver revokes it; its start job is removed."""
    jobs = slack.bot.lifecycle.jobs
    await slack.command(ALICE, "request sandbox play 1h in 2h later today")
    first = await slack.only_grant_of(ALICE)
    assert first.status is Status.SCHEDULED
    await slack.command(ALICE, f"revoke {first.id} not needed")
    cancelled = await slack.bot.store.get(first.id)
    assert cancelled.status is Status.CANCELLED and cancelled.ended_by == ALICE
    assert await jobs.run_time("start", first.id) is None

    await slack.command(ALICE, "request sandbox play 1h in 2h later today")
    second = await slack.only_grant_of(ALICE)
    await slack.command(BOB, f"revoke {second.id} not today")
    revoked = await slack.bot.store.get(second.id)
    assert revoked.status is Status.REVOKED and revoked.ended_by == BOB
    assert revoked.activated_at is None and revoked.credential_ref is None
    assert await jobs.run_time("start", second.id) is None
    # The end reaches Slack as every end does (from the audit stream): Alice hears of it.
    assert "Revoked by <@U0BOB>" in slack.dms(ALICE)[-1].text


async def test_a_start_beyond_max_lead_time_is_refused(slack: SlackHarness) -> None:
    await slack.command(ALICE, "request sandbox play 1h in 2d far ahead")
    refusal = slack.last_ephemeral(ALICE)
    # The lead is said as asked (2d), not as the clock has moved on since (1d23h59m59s).
    assert "at most 1d ahead (max_lead_time); this start is 2d ahead" in refusal
    assert await slack.grants_of(ALICE) == []


@pytest.mark.parametrize(
    ("start", "says"),
    [
        ("at 2pm deploy window", '"at 2pm" is not a start'),
        ("in -2h deploy", '"-2h" after "in" is not a duration'),
        ("in 2x deploy", '"2x" after "in" is not a duration'),
        ("at 14:00:00 deploy", '"at 14:00:00" is not a start'),
        ("on 01/12/2026 09:00 deploy", '"on 01/12/2026" is not a start'),
        ("at bad", '"at bad" is not a start'),
        ("on bad", '"on bad" is not a start'),
        ("on 2026-12-01 25:00 deploy", '"25:00" is not a time of day'),
    ],
)
async def test_a_start_written_wrong_is_refused_and_nothing_is_filed(
    slack: SlackHarness, start: str, says: str
) -> None:
    """`sandbox play` is auto-approved: a mistyped start read as the reason would make it
    ACTIVE now. It is refused instead, naming the forms a start takes."""
    await slack.command(ALICE, f"request sandbox play 10m {start}")
    refusal = slack.last_ephemeral(ALICE)
    assert says in refusal and "at 14:00, in 2h or on 2026-12-01 09:00" in refusal
    assert await slack.grants_of(ALICE) == []


async def test_in_followed_by_a_plain_word_is_the_reason(slack: SlackHarness) -> None:
    grant = await active_grant(slack, "request sandbox play 10m in prod to fix it")
    assert grant.reason == "in prod to fix it" and grant.starts_at is None


async def test_the_request_form_takes_a_start(slack: SlackHarness) -> None:
    """The form's Start field: a time is read in the requester's zone; a bad one is an error
    on the field and the modal stays open."""
    await slack.command(ERIN, "")
    [form] = slack.emulator.views(ERIN)
    values: dict[str, Any] = {
        ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value("gated/play")},
        ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("1h")},
        ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("night shift")},
        ids.FORM_START_BLOCK: {ids.FORM_START_ACTION: plain_text_value("at noon")},
    }
    bad = await slack.driver.view_submission(ERIN, form.as_slack(), values=values)
    assert ids.FORM_START_BLOCK in json.loads(bad.text)["errors"]
    assert await slack.grants_of(ERIN) == []
    values[ids.FORM_START_BLOCK] = {ids.FORM_START_ACTION: plain_text_value("in 3h")}
    before = time.time()
    ok = await slack.driver.view_submission(ERIN, form.as_slack(), values=values)
    await slack.settle()
    assert ok.status == 200 and ok.text == ""
    grant = await slack.only_grant_of(ERIN)
    assert grant.starts_at == pytest.approx(before + 3 * 3600, abs=5)
    assert grant.start_tz == BERLIN and grant.origin.surface == "modal"


async def test_a_start_in_the_past_is_refused_on_the_field(slack: SlackHarness) -> None:
    await slack.command(ERIN, "")
    [form] = slack.emulator.views(ERIN)
    yesterday = (datetime.now(ZoneInfo(BERLIN)) - timedelta(days=1)).date()
    values: dict[str, Any] = {
        ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value("gated/play")},
        ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("1h")},
        ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("night shift")},
        ids.FORM_START_BLOCK: {ids.FORM_START_ACTION: plain_text_value(f"{yesterday} 09:00")},
    }
    resp = await slack.driver.view_submission(ERIN, form.as_slack(), values=values)
    error = json.loads(resp.text)["errors"][ids.FORM_START_BLOCK]
    assert "in the past in Europe/Berlin" in error
    assert await slack.grants_of(ERIN) == []


async def test_a_start_beyond_max_lead_time_is_refused_on_the_field(slack: SlackHarness) -> None:
    await slack.command(ERIN, "")
    [form] = slack.emulator.views(ERIN)
    values: dict[str, Any] = {
        ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value("gated/play")},
        ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("1h")},
        ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("far ahead")},
        ids.FORM_START_BLOCK: {ids.FORM_START_ACTION: plain_text_value("in 3d")},
    }
    resp = await slack.driver.view_submission(ERIN, form.as_slack(), values=values)
    error = json.loads(resp.text)["errors"][ids.FORM_START_BLOCK]
    assert "at most 1d ahead (max_lead_time)" in error
    assert await slack.grants_of(ERIN) == []


async def test_help_shows_the_new_commands(slack: SlackHarness) -> None:
    await slack.command(ALICE, "help")
    help_text = slack.last_ephemeral(ALICE)
    assert "at 14:00" in help_text and "in 2h" in help_text and "Extend" in help_text
    assert GENERAL  # the help answers wherever it is asked
