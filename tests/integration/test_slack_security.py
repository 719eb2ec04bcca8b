"""Security of the Slack surface: signatures, replays, authority on clicks, concurrency,
oversized input, and where a credential may appear (the requester's DM, nowhere else)."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession
from redis import exceptions as redis_errors

from bot.devtools.redis_server import RedisServer
from bot.devtools.slack_driver import Delivery, plain_text_value, static_select_value
from bot.domain.model import Status
from bot.slack import ids
from bot.store.keys import Keys
from tests.integration.slack_harness import (
    ACCESS_CHANNEL,
    ALICE,
    BOB,
    CAROL,
    DAVE,
    SlackHarness,
    running_bot,
)


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _pending_request(slack: SlackHarness, text: str = "request sandbox play 20m x") -> str:
    await slack.command(ALICE, text)
    grant = await slack.only_grant_of(ALICE)
    return grant.id


@pytest.mark.parametrize(
    "delivery", [Delivery.unsigned(), Delivery.bad_signature(), Delivery.stale()], ids=str
)
async def test_unsigned_wrongly_signed_and_stale_requests_get_401(
    slack: SlackHarness, delivery: Delivery
) -> None:
    """Unsigned, wrongly signed and old-timestamp requests are refused with 401 and reach no
    listener: no grant, no Slack call."""
    before = len(slack.emulator.calls())
    resp = await slack.driver.slash_command(
        ALICE,
        "request sandbox play 20m x",
        channel_id="C0GENERAL",
        channel_name="general",
        delivery=delivery,
    )
    await slack.settle()
    assert resp.status == 401
    assert await slack.grants_of(ALICE) == []
    assert len(slack.emulator.calls()) == before


async def test_a_stale_click_cannot_approve(slack: SlackHarness) -> None:
    """A click with a timestamp older than five minutes is refused and changes nothing."""
    grant_id = await _pending_request(slack)
    copy = next(m for m in slack.copies(grant_id) if m.channel == ACCESS_CHANNEL)
    resp = await slack.click(BOB, copy, ids.APPROVE, delivery=Delivery.stale())
    assert resp.status == 401
    assert (await slack.bot.store.get(grant_id)).status is Status.PENDING


async def test_replayed_command_is_processed_once(slack: SlackHarness) -> None:
    """The same signed command sent again (within the 5-minute window) files one request."""
    first = await slack.driver.slash_command(
        ALICE, "request sandbox play 20m x", channel_id="C0GENERAL", channel_name="general"
    )
    again = await slack.driver.replay(first.request)
    retried = await slack.driver.redeliver(first.request, retry_num=1)
    await slack.settle()
    assert first.status == again.status == retried.status == 200
    assert len(await slack.grants_of(ALICE)) == 1


async def test_retried_event_is_processed_once(slack: SlackHarness) -> None:
    """Slack's retry of an event (X-Slack-Retry-Num, same event_id) files one request."""
    first = await slack.driver.app_mention(
        ALICE, "request sandbox play 20m x", channel="C0GENERAL", event_id="Ev0RETRY1"
    )
    second = await slack.driver.redeliver(first.request, retry_num=1, retry_reason="http_timeout")
    await slack.settle()
    assert first.status == second.status == 200
    assert len(await slack.grants_of(ALICE)) == 1


@pytest.mark.parametrize("clicker", [ALICE, DAVE])
async def test_a_non_approver_click_is_refused_and_changes_nothing(
    slack: SlackHarness, clicker: str
) -> None:
    """Someone the policy does not make an approver (the requester, a stranger) is refused
    ephemerally; the request and its messages are unchanged."""
    grant_id = await _pending_request(slack)
    before = await slack.bot.store.get(grant_id)
    copy = next(m for m in slack.copies(grant_id) if m.channel == ACCESS_CHANNEL)
    await slack.click(clicker, copy, ids.APPROVE)
    refusal = slack.last_ephemeral(clicker)
    assert "not an approver" in refusal or "cannot approve your own" in refusal
    after = await slack.bot.store.get(grant_id)
    assert after == before
    assert not copy.history
    await slack.click(clicker, copy, ids.DENY)
    assert slack.emulator.views(clicker) == []
    assert (await slack.bot.store.get(grant_id)) == before


async def test_self_approval_is_refused(slack: SlackHarness) -> None:
    """An approver cannot approve their own request (the policy does not allow it)."""
    await slack.command(BOB, "request sandbox play 20m x")
    grant = await slack.only_grant_of(BOB)
    # Bob is not DMed about his own request; the channel copy is what he can click.
    assert slack.emulator.dm_channel(BOB) not in {m.channel for m in slack.copies(grant.id)}
    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await slack.click(BOB, copy, ids.APPROVE)
    assert "you cannot approve your own request" in slack.last_ephemeral(BOB)
    assert (await slack.bot.store.get(grant.id)).status is Status.PENDING


async def test_a_click_on_a_decided_request_says_who_decided(slack: SlackHarness) -> None:
    """Clicking Approve or Deny after the decision names who decided and changes nothing."""
    grant_id = await _pending_request(slack)
    copies = slack.copies(grant_id)
    bob_copy = next(m for m in copies if m.channel == slack.emulator.dm_channel(BOB))
    stale = next(m for m in copies if m.channel == slack.emulator.dm_channel(CAROL)).as_slack()
    await slack.click(BOB, bob_copy, ids.APPROVE)
    decided = await slack.bot.store.get(grant_id)
    # Carol clicks on the copy as she saw it before it was updated.
    carol_channel = slack.emulator.dm_channel(CAROL)
    for action in (ids.APPROVE, ids.DENY):
        await slack.driver.block_action(CAROL, action, message=stale, channel_id=carol_channel)
        await slack.settle()
        assert "already approved by <@U0BOB>" in slack.last_ephemeral(CAROL) or (
            "no longer pending" in slack.last_ephemeral(CAROL)
        )
    assert await slack.bot.store.get(grant_id) == decided


async def test_concurrent_clicks_give_one_decision(slack: SlackHarness) -> None:
    """Two approvers clicking at once on a one-approval request: one decision, one
    credential, and the other is told it was already decided."""
    for _ in range(5):
        grant_id = await _pending_request(slack)
        copy = next(m for m in slack.copies(grant_id) if m.channel == ACCESS_CHANNEL).as_slack()
        clicks = [
            slack.driver.block_action(user, ids.APPROVE, message=copy, channel_id=ACCESS_CHANNEL)
            for user in (BOB, CAROL, BOB, CAROL)
        ]
        responses = await asyncio.gather(*clicks)
        await slack.settle()
        assert all(r.status == 200 for r in responses)
        grant = await slack.bot.store.get(grant_id)
        assert grant.status is Status.ACTIVE and len(grant.approvals) == 1
        credential_dms = [m for m in slack.dms(ALICE) if f"Grant `{grant_id}`" in _text(m.blocks)]
        assert len(credential_dms) == 1
        await slack.command(ALICE, f"revoke {grant_id}")


async def test_forged_payloads_are_judged_by_policy_and_store(slack: SlackHarness) -> None:
    """A payload naming another request, a made-up id, or an action the message never had is
    refused exactly like a real click by that user."""
    grant_id = await _pending_request(slack)
    other_id = await _pending_request_as(slack, CAROL)
    copy = next(m for m in slack.copies(grant_id) if m.channel == ACCESS_CHANNEL)
    # DAVE forges an approval of Carol's request from Alice's message.
    await slack.click(DAVE, copy, ids.APPROVE, value=other_id)
    assert "not an approver" in slack.last_ephemeral(DAVE)
    # Garbage, and an id that does not exist.
    await slack.click(BOB, copy, ids.APPROVE, value="g-zzzzzzzz")
    assert "no request or grant g-zzzzzzzz" in slack.last_ephemeral(BOB)
    await slack.click(BOB, copy, ids.APPROVE, value="x" * 2000)
    assert "does not name a request" in slack.last_ephemeral(BOB)
    # DAVE forges a Revoke now on Alice's pending request; ALICE a Cancel on Carol's.
    await slack.click(DAVE, copy, ids.REVOKE, value=grant_id, block_id="forged")
    assert "not an approver" in slack.last_ephemeral(DAVE)
    await slack.click(ALICE, copy, ids.CANCEL, value=other_id, block_id="forged")
    assert "only <@U0CAROL> may cancel" in slack.last_ephemeral(ALICE)
    # A deny form naming another request, submitted by a non-approver.
    await slack.driver.view_submission(
        DAVE,
        {"type": "modal", "callback_id": ids.DENY_FORM, "private_metadata": grant_id},
        values={ids.DENY_REASON_BLOCK: {ids.DENY_REASON_ACTION: plain_text_value("no")}},
    )
    await slack.settle()
    for gid in (grant_id, other_id):
        assert (await slack.bot.store.get(gid)).status is Status.PENDING


async def _pending_request_as(slack: SlackHarness, user: str) -> str:
    await slack.command(user, "request sandbox play 20m theirs")
    grants = await slack.grants_of(user)
    return grants[-1].id


async def test_oversized_inputs_are_refused(slack: SlackHarness) -> None:
    """A huge command, a huge form reason and a body over 1 MiB are refused cleanly."""
    await slack.command(ALICE, "request sandbox play 20m " + "y" * 5000)
    assert "the limit is 2000" in slack.last_ephemeral(ALICE)
    resp = await slack.driver.view_submission(
        ALICE,
        {"type": "modal", "callback_id": ids.REQUEST_FORM, "private_metadata": "{}"},
        values={
            ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value("sandbox/play")},
            ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("9" * 500)},
            ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("z" * 100_000)},
            ids.FORM_TICKETS_BLOCK: {ids.FORM_TICKETS_ACTION: plain_text_value("T" * 5000)},
        },
    )
    assert resp.json["response_action"] == "errors"
    assert set(resp.json["errors"]) == {
        ids.FORM_DURATION_BLOCK,
        ids.FORM_REASON_BLOCK,
        ids.FORM_TICKETS_BLOCK,
    }
    async with ClientSession() as http:
        huge = io.BytesIO(b"payload=" + b"a" * (1024 * 1024 + 10))
        async with http.post(slack.driver.events_url, data=huge) as r:
            assert r.status == 413
    await slack.settle()
    assert await slack.grants_of(ALICE) == []


async def test_a_private_key_in_the_form_is_refused_unquoted(slack: SlackHarness) -> None:
    """A private key pasted into the form is refused without being echoed anywhere."""
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH"
    resp = await slack.driver.view_submission(
        ALICE,
        {"type": "modal", "callback_id": ids.REQUEST_FORM, "private_metadata": "{}"},
        values={
            ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value("sandbox/play")},
            ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("10m")},
            ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value(key)},
        },
    )
    assert "private key" in resp.json["errors"][ids.FORM_REASON_BLOCK]
    assert "b3BlbnNzaC1rZXktdjE" not in resp.text


async def test_the_credential_appears_in_the_requesters_dm_only(
    redis_url: str,
    keys: Keys,
    redis_client: aioredis.Redis,
    cache_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real Redis ACL password is delivered in exactly one Slack call, the chat.postMessage
    to the requester's DM; it is in no other recorded call, no log line, no Redis value of
    grantbot's; it logs in, and stops working when revoked."""
    caplog.set_level(logging.DEBUG)
    env = {"GRANTBOT_TEST_CACHE_URL": cache_server.url}
    async with running_bot(redis_url=redis_url, prefix=keys.prefix, environ=env) as slack:
        await slack.command(ALICE, "request cache read 30m reading the cache")
        grant = await slack.only_grant_of(ALICE)
        copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
        await slack.click(BOB, copy, ids.APPROVE)
        active = await slack.bot.store.get(grant.id)
        assert active.status is Status.ACTIVE
        credential_dm = slack.dms(ALICE)[-1]
        blocks_text = _text(credential_dm.blocks)
        login = active.credential_ref or ""
        password = blocks_text.split("*password*: `", 1)[1].split("`", 1)[0]
        assert len(password) >= 16

        carrying = [c for c in slack.emulator.calls() if password in _text(c.args)]
        assert len(carrying) == 1
        [call] = carrying
        assert call.method == "chat.postMessage" and call.args["channel"] == ALICE
        assert password not in caplog.text
        async for key in redis_client.scan_iter(match="{" + keys.prefix + "}*"):
            kind = await redis_client.type(key)
            if kind == "string":
                assert password not in str(await redis_client.get(key))
            elif kind == "hash":
                assert password not in str(await redis_client.hgetall(key))
            elif kind == "stream":
                assert password not in str(await redis_client.xrange(key))

        # A real login with the delivered credential works, and stops working once revoked.
        target = aioredis.Redis.from_url(cache_server.url, username=login, password=password)
        assert await target.ping()
        await target.aclose()
        await slack.click(ALICE, credential_dm, ids.REVOKE)
        assert (await slack.bot.store.get(grant.id)).status is Status.REVOKED
        assert password not in _text(credential_dm.blocks)
        target = aioredis.Redis.from_url(cache_server.url, username=login, password=password)
        with pytest.raises(redis_errors.AuthenticationError):
            await target.ping()
        await target.aclose()
