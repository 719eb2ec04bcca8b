"""The Slack surfaces end to end, in process: real Bolt app over real HTTP, real Redis, the
real service and providers; Slack is the emulator, driven by signed requests."""

from __future__ import annotations

import json
import time

import pytest
import redis.asyncio as aioredis

from bot.devtools.slack_driver import plain_text_value, static_select_value
from bot.domain.model import Status
from bot.metrics import REGISTRY
from bot.slack import ids
from bot.slack.notifier import NOTIFY_FAILED
from bot.store.keys import Keys
from tests.integration.slack_harness import (
    ACCESS_CHANNEL,
    ALICE,
    BOB,
    CAROL,
    DAVE,
    GENERAL,
    INCIDENT,
    FakeClock,
    SlackHarness,
    running_bot,
)
from tests.integration.support import wait_for


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


async def test_command_request_asks_every_approver_and_confirms_privately(
    slack: SlackHarness,
) -> None:
    """`/access request` acks at once, files the request, DMs each approver and posts in the
    approval channel, and tells the requester (ephemerally) the id and who was asked."""
    resp = await slack.command(ALICE, "request sandbox play 20m checking the sandbox")
    assert resp.status == 200 and resp.latency_s < 3
    grant = await slack.only_grant_of(ALICE)
    assert grant.status is Status.PENDING and grant.duration_s == 1200
    assert grant.origin.surface == "command" and grant.origin.channel == GENERAL
    confirmation = slack.last_ephemeral(ALICE)
    assert grant.id in confirmation and "group approvers" in confirmation
    copies = slack.copies(grant.id)
    where = sorted(m.channel for m in copies)
    assert where == sorted(
        [ACCESS_CHANNEL, slack.emulator.dm_channel(BOB), slack.emulator.dm_channel(CAROL)]
    )
    for copy in copies:
        buttons = [e for b in copy.blocks if b["type"] == "actions" for e in b["elements"]]
        assert [(b["action_id"], b["value"]) for b in buttons] == [
            (ids.APPROVE, grant.id),
            (ids.DENY, grant.id),
        ]


async def test_an_approval_that_issues_at_once_updates_each_copy_once(
    slack: SlackHarness,
) -> None:
    """The click that approves and issues at once updates each approver's copy once, showing
    the outcome (approved, active, Revoke now), not once for "approved" and again for
    "active"; the credential DM goes out before any copy is updated."""
    slack.bot.notifier.approved_grace_s = 3600.0  # however slow issuing is on this machine
    await slack.command(ALICE, "request sandbox play 20m one update each")
    grant = await slack.only_grant_of(ALICE)
    copies = slack.copies(grant.id)
    since = slack.emulator.call_count()
    await slack.click(BOB, next(m for m in copies if m.channel.startswith("D")), ids.APPROVE)
    assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE
    updates = [c for c in slack.emulator.calls("chat.update", since=since) if c.ok]
    assert sorted(str(c.args["channel"]) for c in updates) == sorted(m.channel for m in copies)
    for copy in slack.copies(grant.id):
        assert "Approved by <@U0BOB>" in _text(copy.blocks) and ids.REVOKE in _text(copy.blocks)
    dm = next(
        c
        for c in slack.emulator.calls("chat.postMessage", since=since)
        if "Your access to sandbox play" in _text(c.args)
    )
    assert dm.received_at <= min(c.received_at for c in updates)


async def test_approval_updates_every_copy_and_dms_the_credential(slack: SlackHarness) -> None:
    """An approver's click decides; every copy loses its buttons and names who decided; the
    requester gets the credential by DM with its expiry and a Revoke now button."""
    await slack.command(ALICE, "request sandbox play 20m checking the sandbox")
    grant = await slack.only_grant_of(ALICE)
    bob_copy = next(m for m in slack.copies(grant.id) if m.channel.startswith("D"))
    resp = await slack.click(BOB, bob_copy, ids.APPROVE)
    assert resp.status == 200
    active = await slack.bot.store.get(grant.id)
    assert active.status is Status.ACTIVE and active.decided_by == BOB
    for copy in slack.copies(grant.id):
        rendered = _text(copy.blocks)
        assert "Approved by <@U0BOB>" in rendered
        assert ids.APPROVE not in rendered and ids.DENY not in rendered
        assert ids.REVOKE in rendered
        assert copy.history, "each copy was updated with chat.update"
    credential_dm = slack.dms(ALICE)[-1]
    assert "Your access to sandbox play" in _text(credential_dm.blocks)
    assert f"<!date^{int(active.expires_at or 0)}^" in _text(credential_dm.blocks)
    assert ids.REVOKE in _text(credential_dm.blocks)


async def test_deny_opens_a_reason_form_and_tells_the_requester(slack: SlackHarness) -> None:
    """Deny opens a modal for the reason; submitting it denies, updates every copy and DMs
    the requester with the reason."""
    await slack.command(ALICE, "request sandbox play 20m checking the sandbox")
    grant = await slack.only_grant_of(ALICE)
    channel_copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await slack.click(CAROL, channel_copy, ids.DENY)
    [modal] = slack.emulator.views(CAROL)
    assert modal.view["callback_id"] == ids.DENY_FORM
    assert modal.view["private_metadata"] == grant.id
    resp = await slack.driver.view_submission(
        CAROL,
        modal.as_slack(),
        values={ids.DENY_REASON_BLOCK: {ids.DENY_REASON_ACTION: plain_text_value("not now")}},
    )
    await slack.settle()
    assert resp.status == 200 and resp.text == ""
    denied = await slack.bot.store.get(grant.id)
    assert denied.status is Status.DENIED and denied.end_reason == "not now"
    for copy in slack.copies(grant.id):
        assert "Denied by <@U0CAROL>: not now" in _text(copy.blocks)
    assert "Denied by <@U0CAROL>: not now" in slack.dms(ALICE)[-1].text


async def test_two_of_n_needs_two_distinct_approvers(slack: SlackHarness) -> None:
    """orders-db write needs two approvals: one click leaves it pending showing 1 of 2, the
    same approver again is refused, a second approver approves."""
    await slack.command(ALICE, "request orders-db write 30m INC-42 fix the orders table")
    grant = await slack.only_grant_of(ALICE)
    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await slack.click(BOB, copy, ids.APPROVE)
    pending = await slack.bot.store.get(grant.id)
    assert pending.status is Status.PENDING and pending.approvers == [BOB]
    assert "1 of 2 (<@U0BOB>)" in _text(copy.blocks)
    await slack.click(BOB, copy, ids.APPROVE)
    assert "you already approved" in slack.last_ephemeral(BOB)
    assert (await slack.bot.store.get(grant.id)).approvers == [BOB]
    await slack.click(CAROL, copy, ids.APPROVE)
    assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE


async def test_bare_command_opens_a_form_with_only_what_the_user_may_request(
    slack: SlackHarness,
) -> None:
    """`/access` alone opens the modal (views.open with the trigger) listing exactly the
    roles the user may request; someone the policy lets request nothing is told so."""
    await slack.command(ALICE, "")
    [form] = slack.emulator.views(ALICE)
    options = [
        o["value"] for g in form.view["blocks"][0]["element"]["option_groups"] for o in g["options"]
    ]
    assert options == ["sandbox/play", "orders-db/write", "flags/editor", "lab/play", "cache/read"]
    await slack.command(DAVE, "")
    [dave_form] = slack.emulator.views(DAVE)
    assert "request nothing" in _text(dave_form.view["blocks"])


async def test_form_errors_come_back_on_their_fields(slack: SlackHarness) -> None:
    """A bad duration, a duration over the role's limit (the policy's own words) and a bad
    ticket are answered inline with response_action errors; nothing is filed."""
    await slack.command(ALICE, "")
    [form] = slack.emulator.views(ALICE)

    def values(target: str, duration: str, reason: str, tickets: str = "") -> dict[str, object]:
        return {
            ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value(target)},
            ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value(duration)},
            ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value(reason)},
            ids.FORM_TICKETS_BLOCK: {ids.FORM_TICKETS_ACTION: plain_text_value(tickets)},
        }

    bad = await slack.driver.view_submission(
        ALICE, form.as_slack(), values=values("sandbox/play", "soon", "x")
    )
    assert bad.json["response_action"] == "errors"
    assert set(bad.json["errors"]) == {ids.FORM_DURATION_BLOCK}
    over = await slack.driver.view_submission(
        ALICE, form.as_slack(), values=values("sandbox/play", "4h", "looking around")
    )
    assert over.json["errors"] == {
        ids.FORM_DURATION_BLOCK: "sandbox play is limited to 1h; you asked for 4h"
    }
    ticket = await slack.driver.view_submission(
        ALICE, form.as_slack(), values=values("orders-db/write", "30m", "fixing", "nope")
    )
    assert set(ticket.json["errors"]) == {ids.FORM_TICKETS_BLOCK}
    no_ticket = await slack.driver.view_submission(
        ALICE, form.as_slack(), values=values("orders-db/write", "30m", "fixing")
    )
    assert "needs a ticket" in no_ticket.json["errors"][ids.FORM_TICKETS_BLOCK]
    await slack.settle()
    assert await slack.grants_of(ALICE) == []


async def test_form_submission_files_the_request(slack: SlackHarness) -> None:
    """A good submission closes the modal, files the request from the modal's channel and
    confirms ephemerally there."""
    await slack.command(ALICE, "", channel=INCIDENT)
    [form] = slack.emulator.views(ALICE)
    resp = await slack.driver.view_submission(
        ALICE,
        form.as_slack(),
        values={
            ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value("flags/editor")},
            ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("90m")},
            ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("flip <b> flag")},
            ids.FORM_TICKETS_BLOCK: {ids.FORM_TICKETS_ACTION: plain_text_value("INC-42")},
        },
    )
    await slack.settle()
    assert resp.status == 200 and resp.text == ""
    grant = await slack.only_grant_of(ALICE)
    assert (grant.resource, grant.role, grant.duration_s) == ("flags", "editor", 5400)
    assert grant.reason == "flip <b> flag" and grant.tickets == ["INC-42"]
    assert grant.origin.surface == "modal" and grant.origin.incident == "inc-42-orders-db"
    assert grant.id in slack.last_ephemeral(ALICE)
    # flags is approved by the user group S0APPROVERS: its members were DMed.
    dm_channels = {m.channel for m in slack.copies(grant.id)}
    assert {slack.emulator.dm_channel(BOB), slack.emulator.dm_channel(CAROL)} <= dm_channels


async def test_a_public_key_pasted_in_the_form_is_registered_before_the_request(
    slack: SlackHarness,
) -> None:
    """The form's SSH key field does what /access ssh-key add does (audited), then files the
    request; a private key pasted there is refused on the field and nothing is stored."""
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJaVFrSN9E/q2jqbzFkoc3JTxhHLgOjMAJo09WklceKv"
    await slack.command(ALICE, "")
    [form] = slack.emulator.views(ALICE)

    def values(pasted: str) -> dict[str, object]:
        return {
            ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value("sandbox/play")},
            ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("10m")},
            ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("ssh debugging")},
            ids.FORM_SSH_KEY_BLOCK: {ids.FORM_SSH_KEY_ACTION: plain_text_value(pasted)},
        }

    private = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    refused = await slack.driver.view_submission(ALICE, form.as_slack(), values=values(private))
    assert set(refused.json["errors"]) == {ids.FORM_SSH_KEY_BLOCK}
    await slack.settle()
    assert await slack.bot.service.ssh_key(ALICE) is None and await slack.grants_of(ALICE) == []

    resp = await slack.driver.view_submission(ALICE, form.as_slack(), values=values(key))
    await slack.settle()
    assert resp.status == 200 and resp.text == ""
    assert await slack.bot.service.ssh_key(ALICE) == key
    grant = await slack.only_grant_of(ALICE)
    assert grant.reason == "ssh debugging"
    events = [e.data["event"] async for e in slack.bot.store.audit.entries()]
    assert "SSH_KEY_SET" in events


async def test_policy_refusal_and_usage_errors_are_specific(slack: SlackHarness) -> None:
    """A policy refusal names the rule and the limit; a usage error gives the grammar's
    message; neither files anything."""
    await slack.command(ALICE, "request sandbox play 4h poking around")
    assert "sandbox play is limited to 1h; you asked for 4h" in slack.last_ephemeral(ALICE)
    await slack.command(ALICE, "request sandbox play")
    assert "missing duration" in slack.last_ephemeral(ALICE)
    await slack.command(ALICE, "frobnicate")
    assert 'unknown subcommand "frobnicate"' in slack.last_ephemeral(ALICE)
    await slack.command(DAVE, "request sandbox play 10m hi")
    assert "you may not request sandbox play" in slack.last_ephemeral(DAVE)
    assert await slack.grants_of(ALICE) == [] and await slack.grants_of(DAVE) == []


async def test_list_pending_resources_help_and_ssh_keys(slack: SlackHarness) -> None:
    """The read-only subcommands answer ephemerally; ssh-key add stores a public key that
    ssh-key show gives back."""
    await slack.command(ALICE, "request sandbox play 20m reading")
    grant = await slack.only_grant_of(ALICE)
    await slack.command(ALICE, "list")
    assert grant.id in slack.last_ephemeral(ALICE)
    await slack.command(BOB, "pending")
    assert grant.id in slack.last_ephemeral(BOB)
    await slack.command(ALICE, "pending")
    assert "Nothing is waiting" in slack.last_ephemeral(ALICE)
    await slack.command(ALICE, "resources")
    assert "*orders-db* write" in slack.last_ephemeral(ALICE)
    await slack.command(ALICE, "help")
    assert "/access request" in slack.last_ephemeral(ALICE)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b"
    await slack.command(ALICE, f"ssh-key add {key}")
    assert "registered" in slack.last_ephemeral(ALICE)
    await slack.command(ALICE, "ssh-key show")
    assert "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" in (
        slack.last_ephemeral(ALICE)
    )
    assert await slack.bot.service.ssh_key(ALICE) == key


async def test_app_home_shows_grants_and_decides_from_home(slack: SlackHarness) -> None:
    """Opening App Home publishes my grants and what waits for me; approving there decides
    and re-publishes the approver's home."""
    await slack.command(ALICE, "request sandbox play 20m reading")
    grant = await slack.only_grant_of(ALICE)
    await slack.driver.app_home_opened(ALICE)
    await slack.settle()
    alice_home = slack.emulator.home_view(ALICE)
    assert alice_home is not None and grant.id in _text(alice_home["blocks"])
    await slack.driver.app_home_opened(BOB)
    await slack.settle()
    bob_home = slack.emulator.home_view(BOB)
    assert bob_home is not None
    await slack.driver.block_action(BOB, ids.APPROVE, view=bob_home)
    await slack.settle()
    assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE
    republished = slack.emulator.home_view(BOB)
    assert republished is not None and grant.id not in _text(republished["blocks"])


async def test_pending_requests_lapse_and_everyone_hears(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis
) -> None:
    """A request nobody decides lapses after request_timeout: copies say so, buttons gone,
    the requester is told by DM."""
    clock = FakeClock(1_795_000_000.0)
    async with running_bot(redis_url=redis_url, prefix=keys.prefix, clock=clock) as slack:
        await slack.command(ALICE, "request sandbox play 20m reading")
        grant = await slack.only_grant_of(ALICE)
        clock.advance(31 * 60)
        lapsed = await slack.bot.service.time_out_due()
        assert [g.id for g in lapsed] == [grant.id]
        await slack.settle()  # the end reaches Slack from the audit stream
        for copy in slack.copies(grant.id):
            assert "nobody decided in time" in _text(copy.blocks)
            assert ids.APPROVE not in _text(copy.blocks)
        assert "nobody decided in time" in slack.dms(ALICE)[-1].text


async def test_mention_in_an_incident_thread(slack: SlackHarness) -> None:
    """`@grantbot request ...` in an incident channel files a request marked as an incident
    and confirms in the thread."""
    resp = await slack.driver.app_mention(
        ALICE, "request sandbox play 15m checking INC-42", channel=INCIDENT, thread_ts="1.000100"
    )
    await slack.settle()
    assert resp.status == 200
    grant = await slack.only_grant_of(ALICE)
    assert grant.origin.surface == "mention" and grant.origin.incident == "inc-42-orders-db"
    assert grant.origin.thread_ts == "1.000100"
    thread = slack.emulator.thread(INCIDENT, "1.000100")
    assert thread and grant.id in thread[-1].text


async def test_auto_approved_request_gets_its_credential_at_once(slack: SlackHarness) -> None:
    """lab play auto-approves up to an hour: the confirmation says so and the credential DM
    follows without any approver."""
    await slack.command(ALICE, "request lab play 30m quick look")
    grant = await slack.only_grant_of(ALICE)
    assert grant.status is Status.ACTIVE and grant.auto_approved
    assert "Active until" in slack.last_ephemeral(ALICE)
    assert "Your access to lab play" in _text(slack.dms(ALICE)[-1].blocks)


async def test_extension_is_a_new_approval_round(slack: SlackHarness) -> None:
    """`/access extend` on an active grant asks the approvers; once approved the grant's
    expiry moves by the extra time and the requester hears it; the grant ran on meanwhile."""
    await slack.command(ALICE, "request sandbox play 20m reading")
    grant = await slack.only_grant_of(ALICE)
    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await slack.click(BOB, copy, ids.APPROVE)
    active = await slack.bot.store.get(grant.id)
    await slack.command(ALICE, f"extend {grant.id} 15m need more time")
    extension = next(g for g in await slack.grants_of(ALICE) if g.kind == "extension")
    assert extension.parent_id == grant.id and extension.status is Status.PENDING
    assert extension.id in slack.last_ephemeral(ALICE)
    assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE
    ext_copy = next(m for m in slack.copies(extension.id) if m.channel == ACCESS_CHANNEL)
    assert f"Extension of {grant.id}" in _text(ext_copy.blocks)
    await slack.click(CAROL, ext_copy, ids.APPROVE)
    extended = await slack.bot.store.get(grant.id)
    assert extended.status is Status.ACTIVE
    assert extended.expires_at == pytest.approx((active.expires_at or 0) + 900)
    closed = await slack.bot.store.get(extension.id)
    assert closed.status is Status.EXPIRED and closed.terminal
    assert any("now lasts until" in m.text for m in slack.dms(ALICE))


async def test_extension_of_someone_elses_grant_is_refused(slack: SlackHarness) -> None:
    """Only the requester may extend their grant."""
    await slack.command(ALICE, "request lab play 30m quick look")
    grant = await slack.only_grant_of(ALICE)
    await slack.command(BOB, f"extend {grant.id} 15m mine now")
    assert "only <@U0ALICE> may extend" in slack.last_ephemeral(BOB)


async def test_slack_failures_are_retried_or_reported_without_touching_state(
    slack: SlackHarness,
) -> None:
    """A 429 with Retry-After is retried and the message still arrives; a chat.update that
    keeps failing is reported (audit NOTIFY_FAILED) while the decision stands."""
    slack.emulator.faults.ratelimit("chat.postMessage", times=1, retry_after_s=0)
    await slack.command(ALICE, "request sandbox play 20m reading")
    grant = await slack.only_grant_of(ALICE)
    assert len(slack.copies(grant.id)) == 3
    assert any(c.status == 429 for c in slack.emulator.calls("chat.postMessage"))
    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    slack.emulator.faults.server_error("chat.update", times=100, status=503)
    await slack.click(BOB, copy, ids.APPROVE)
    assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE
    reported = [
        e.data async for e in slack.bot.store.audit.entries() if e.data["event"] == NOTIFY_FAILED
    ]
    assert reported and all(e["grant_id"] == grant.id for e in reported)
    assert {e["details"]["error"] for e in reported} == {"service_unavailable"}
    slack.emulator.faults.clear()
    await slack.bot.notifier.refresh(grant.id)
    assert "Approved by <@U0BOB>" in _text(copy.blocks)


async def test_redis_down_means_try_again_shortly(redis_client: aioredis.Redis) -> None:
    """With Redis unreachable a request is answered "try again shortly", ephemerally."""
    async with running_bot(redis_url="redis://127.0.0.1:1/0", prefix="down") as slack:
        resp = await slack.command(ALICE, "request sandbox play 20m reading")
        assert resp.status == 200
        assert "try again shortly" in slack.last_ephemeral(ALICE)


async def test_revoke_now_ends_the_grant_and_every_message_says_so(slack: SlackHarness) -> None:
    """The requester's Revoke now button ends the grant at once: the credential DM loses its
    secret part, every approver copy says who revoked it, and no button is left."""
    await slack.command(ALICE, "request sandbox play 20m reading")
    grant = await slack.only_grant_of(ALICE)
    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await slack.click(BOB, copy, ids.APPROVE)
    credential_dm = slack.dms(ALICE)[-1]
    await slack.click(ALICE, credential_dm, ids.REVOKE)
    revoked = await slack.bot.store.get(grant.id)
    assert revoked.status is Status.REVOKED and revoked.ended_by == ALICE
    assert "Revoked by <@U0ALICE>" in _text(credential_dm.blocks)
    assert ids.REVOKE not in _text(credential_dm.blocks)
    for c in slack.copies(grant.id):
        assert "Revoked by <@U0ALICE>" in _text(c.blocks) and ids.REVOKE not in _text(c.blocks)


async def test_an_approver_may_revoke_from_their_copy(slack: SlackHarness) -> None:
    """An approver's Revoke now on their copy ends the grant; the requester hears by DM."""
    await slack.command(ALICE, "request sandbox play 20m reading")
    grant = await slack.only_grant_of(ALICE)
    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await slack.click(BOB, copy, ids.APPROVE)
    await slack.click(CAROL, copy, ids.REVOKE)
    assert (await slack.bot.store.get(grant.id)).status is Status.REVOKED
    assert "Revoked by <@U0CAROL>" in slack.dms(ALICE)[-1].text


async def test_revoke_command_and_cancel(slack: SlackHarness) -> None:
    """`/access revoke` on a pending request cancels it; on an active grant it revokes."""
    await slack.command(ALICE, "request sandbox play 20m reading")
    pending = await slack.only_grant_of(ALICE)
    await slack.command(ALICE, f"revoke {pending.id} changed my mind")
    assert (await slack.bot.store.get(pending.id)).status is Status.CANCELLED
    assert pending.id in slack.last_ephemeral(ALICE)
    await slack.command(ALICE, "request lab play 30m quick look")
    active = await slack.only_grant_of(ALICE)
    await slack.command(ALICE, f"revoke {active.id}")
    assert (await slack.bot.store.get(active.id)).status is Status.REVOKED


async def test_grants_expire_on_time_and_the_requester_hears(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis
) -> None:
    """A short grant is revoked by the scheduler at its expiry; the credential DM and every
    copy are updated."""
    async with running_bot(redis_url=redis_url, prefix=keys.prefix, clock=time.time) as slack:
        await slack.command(ALICE, "request lab play 2s quick look")
        grant = await slack.only_grant_of(ALICE)
        assert grant.status is Status.ACTIVE

        async def expired() -> bool:
            return (await slack.bot.store.get(grant.id)).status is Status.EXPIRED

        await wait_for(expired, what="the grant to expire")
        await slack.settle()
        await slack.emulator.wait_for(lambda: "Expired at" in _text(slack.dms(ALICE)[-2].blocks))


async def test_a_decision_while_copies_are_still_being_posted_reaches_every_copy(
    slack: SlackHarness,
) -> None:
    """Carol approves from her copy while Bob's copy is still on its way to Slack: once it
    arrives, it too is brought up to date."""
    slack.emulator.faults.delay("chat.postMessage", delay_s=0.5, times=1)
    await slack.driver.slash_command(
        ALICE, "request sandbox play 20m racing", channel_id=GENERAL, channel_name="general"
    )
    carol_dm = slack.emulator.dm_channel(CAROL)
    carol_copy = await slack.emulator.wait_for(
        lambda: next((m for m in slack.emulator.messages(carol_dm) if "racing" in m.text), None)
    )
    await slack.click(CAROL, carol_copy, ids.APPROVE)
    grant = await slack.only_grant_of(ALICE)
    assert grant.status is Status.ACTIVE
    copies = slack.copies(grant.id)
    assert len(copies) == 3
    for copy in copies:
        assert "Approved by <@U0CAROL>" in _text(copy.blocks), copy.channel


async def test_an_undeliverable_credential_is_reported_and_the_grant_stands(
    slack: SlackHarness,
) -> None:
    """When the credential DM cannot be delivered even after retries, the failure is logged
    and audited (without the secret); the grant's state is untouched."""
    await slack.command(ALICE, "request sandbox play 20m reading")
    grant = await slack.only_grant_of(ALICE)
    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    slack.emulator.faults.server_error("chat.postMessage", times=10, status=500)
    await slack.click(BOB, copy, ids.APPROVE)
    assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE
    failed = [
        e.data async for e in slack.bot.store.audit.entries() if e.data["event"] == NOTIFY_FAILED
    ]
    assert any(
        f["details"] == {"method": "chat.postMessage", "error": "internal_error", "channel": ALICE}
        for f in failed
    )


async def test_slack_calls_failing_after_retries_are_counted(slack: SlackHarness) -> None:
    """A chat.postMessage that still fails after the client's retries moves
    grantbot_slack_api_errors_total for that method and Slack's error code."""
    labels = {"method": "chat.postMessage", "error": "internal_error"}
    before = REGISTRY.get_sample_value("grantbot_slack_api_errors_total", labels) or 0.0
    slack.emulator.faults.server_error("chat.postMessage", times=100, status=500)
    await slack.command(ALICE, "request sandbox play 20m reading")
    after = REGISTRY.get_sample_value("grantbot_slack_api_errors_total", labels) or 0.0
    assert after >= before + 3  # two approvers' DMs and the approval channel
