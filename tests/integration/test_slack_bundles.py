"""Issue 13, item 3 end to end: ``/access request bundle`` (policy ``bundles:``).

The real bot on real Redis, driven by signed Slack requests and real clicks on the one
approval message; the Slack emulator checks every message's Block Kit. One item is a real
Redis ACL user (a real password), one is auto-approved, one cannot be issued (its target is
down), one needs a person."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.devtools.redis_server import RedisServer
from bot.devtools.slack_emulator import Message
from bot.domain.model import Status
from bot.slack import ids
from bot.store.keys import Keys
from tests.integration.slack_harness import (
    ACCESS_CHANNEL,
    ALICE,
    BOB,
    CAROL,
    SlackHarness,
    running_bot,
)
from tests.integration.support import FakeClock, wait_for

POLICY = """
groups:
  engineers: {members: [U0ALICE, U0BOB, U0CAROL]}
  approvers: {members: [U0BOB, U0CAROL]}
defaults:
  requesters: {groups: [engineers]}
  approvers: {groups: [approvers], channel: C0ACCESS}
  max_duration: 2h
  default_duration: 30m
  request_timeout: 30m
resources:
  lab:
    provider: {type: noop}
    roles:
      play:
        auto_approve: [{max_duration: 1h}]
  cache:
    provider: {type: redis_acl, url: "${GB_CACHE_URL}"}
    roles:
      read:
        provider: {commands: "+@read +ping", keys: "~cache:*"}
  broken:
    provider: {type: redis_acl, url: "redis://127.0.0.1:1"}
    roles:
      read:
        auto_approve: [{max_duration: 1h}]
        provider: {commands: "+ping", keys: "~x:*"}
  vault:
    provider: {type: noop}
    roles:
      admin:
        requesters: {users: [U0CAROL]}
bundles:
  responder: [lab/play, cache/read, broken/read]
  too-much: [lab/play, vault/admin]
"""


@pytest.fixture
def bot_options(tmp_path: Path, cache_server: RedisServer) -> dict[str, Any]:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICY)
    return {"policy": policy, "environ": {"GB_CACHE_URL": cache_server.url}}


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _bundle_copies(slack: SlackHarness) -> list[Message]:
    return [
        m
        for messages in slack.emulator.workspace.messages.values()
        for m in messages
        if not m.deleted and "Bundle request: responder" in _text(m.blocks)
    ]


def _bundle_dms(slack: SlackHarness, user: str) -> list[Message]:
    return [m for m in slack.dms(user) if "Your bundle" in _text(m.blocks)]


async def test_a_bundle_is_one_request_one_message_and_one_dm(
    slack: SlackHarness, cache_server: RedisServer
) -> None:
    """Alice asks for bundle responder: each item follows its own rule (lab auto-approved,
    broken auto-approved but its target is down, cache waits for a person); one approval
    message lists them with whose approval cache still needs; Bob's click on it issues cache;
    then one DM carries both live credentials and says broken failed; each item then ends on
    its own, and only its part of the DM loses its secret."""
    await slack.command(ALICE, "request bundle responder 30m INC-9 outage")
    answer = slack.last_ephemeral(ALICE)
    assert "Bundle *responder*" in answer and "3 items filed" in answer
    grants = {g.resource: g for g in await slack.grants_of(ALICE)}
    assert grants["lab"].status is Status.ACTIVE
    assert grants["cache"].status is Status.PENDING
    failed = await slack.bot.store.get(
        next(g.id for g in await slack.bot.store.list_grants(user=ALICE) if g.resource == "broken")
    )
    assert failed.status is Status.FAILED
    assert len({g.bundle for g in [*grants.values(), failed]}) == 1

    copies = _bundle_copies(slack)
    channels = {m.channel for m in copies}
    assert ACCESS_CHANNEL in channels
    assert slack.emulator.dm_channel(BOB) in channels
    assert slack.emulator.dm_channel(ALICE) not in channels
    assert len(copies) == len(channels)  # one message per place, not one per item
    shown = _text(next(m for m in copies if m.channel == ACCESS_CHANNEL).blocks)
    assert "needs 1 more approval from: <@U0BOB>, <@U0CAROL>" in shown
    assert "issuing the credential failed" in shown
    assert _bundle_dms(slack, ALICE) == []  # nothing until every item is decided

    copy = next(m for m in _bundle_copies(slack) if m.channel == ACCESS_CHANNEL)
    await slack.click(BOB, copy, ids.APPROVE, block_id=f"bundle-decide-{grants['cache'].id}")
    cache = await slack.bot.store.get(grants["cache"].id)
    assert cache.status is Status.ACTIVE
    updated = _text(next(m for m in _bundle_copies(slack) if m.channel == ACCESS_CHANNEL).blocks)
    assert "Approved by <@U0BOB>" in updated and "needs 1 more" not in updated

    [dm] = _bundle_dms(slack, ALICE)
    blocks = _text(dm.blocks)
    password = blocks.split("*password*: `", 1)[1].split("`", 1)[0]
    login = cache.credential_ref or ""
    target = aioredis.Redis.from_url(cache_server.url, username=login, password=password)
    try:
        assert await target.ping()
    finally:
        await target.aclose()
    assert (
        grants["lab"].id in blocks
        and "broken" in blocks
        and "issuing the credential failed" in blocks
    )
    assert [m for m in slack.dms(ALICE) if "Your access to" in _text(m.blocks)] == []

    # Each item ends on its own: lab revoked, the cache credential stays in the DM and works.
    await slack.bot.service.revoke(grants["lab"].id, user=ALICE, reason="done with lab")
    await slack.settle()
    [dm] = _bundle_dms(slack, ALICE)
    after = _text(dm.blocks)
    assert password in after
    assert "Revoked" in after and grants["lab"].id in after
    assert (await slack.bot.store.get(grants["cache"].id)).status is Status.ACTIVE
    await slack.bot.service.revoke(grants["cache"].id, user=ALICE, reason="done")
    await slack.settle()
    [dm] = _bundle_dms(slack, ALICE)
    assert password not in _text(dm.blocks)


async def test_a_bundle_with_an_item_one_may_not_request_is_refused_whole(
    slack: SlackHarness,
) -> None:
    """Alice may not request vault admin: the bundle too-much is refused, naming that item,
    and nothing is filed; an unknown bundle names those that exist."""
    await slack.command(ALICE, "request bundle too-much 30m INC-9 outage")
    refusal = slack.last_ephemeral(ALICE)
    assert "its item vault admin is refused" in refusal
    assert await slack.grants_of(ALICE) == []
    await slack.command(ALICE, "request bundle nope 30m INC-9 outage")
    assert 'unknown bundle "nope"; bundles: responder, too-much' in slack.last_ephemeral(ALICE)
    await slack.command(CAROL, "request bundle too-much 30m INC-9 outage")
    assert {g.resource for g in await slack.grants_of(CAROL)} == {"lab", "vault"}


async def test_the_form_offers_a_bundle_and_files_it(slack: SlackHarness) -> None:
    """``/access`` alone: the form lists the bundle Alice may ask for (not too-much, whose
    vault item she may not request); choosing it files every item and confirms."""
    from bot.devtools.slack_driver import plain_text_value, static_select_value

    await slack.command(ALICE, "")
    [form] = slack.emulator.views(ALICE)
    target = next(b for b in form.view["blocks"] if b.get("block_id") == ids.FORM_TARGET_BLOCK)
    values = [o["value"] for g in target["element"]["option_groups"] for o in g["options"]]
    assert "bundle:responder" in values and "bundle:too-much" not in values
    resp = await slack.driver.view_submission(
        ALICE,
        form.as_slack(),
        values={
            ids.FORM_TARGET_BLOCK: {
                ids.FORM_TARGET_ACTION: static_select_value("bundle:responder")
            },
            ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("20m")},
            ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("INC-9 outage")},
        },
    )
    assert resp.status == 200 and not resp.body
    await slack.settle()
    grants = await slack.grants_of(ALICE)
    assert {g.resource for g in grants} == {"lab", "cache"}  # broken failed: not open
    assert all(g.duration_s == 20 * 60 and g.bundle for g in grants)
    assert "Bundle *responder*" in _text(slack.emulator.ephemerals(user=ALICE)[-1].blocks)


async def test_an_item_nobody_decides_lapses_and_the_others_are_delivered(
    slack: SlackHarness,
) -> None:
    """The cache item lapses (request_timeout): the bundle's DM then goes out with lab's
    credential and says cache lapsed; the approval message says so too."""
    clock = slack.bot.service.clock
    assert isinstance(clock, FakeClock)
    await slack.command(ALICE, "request bundle responder 30m INC-9 outage")
    assert _bundle_dms(slack, ALICE) == []
    clock.advance(31 * 60)
    await slack.bot.service.time_out_due()
    await slack.settle()
    [dm] = _bundle_dms(slack, ALICE)
    text = _text(dm.blocks)
    assert "nobody decided in time" in text and "Your access to" not in text
    assert "*note*" in text  # lab's (noop) credential field
    copy = next(m for m in _bundle_copies(slack) if m.channel == ACCESS_CHANNEL)
    assert "nobody decided in time" in _text(copy.blocks)
    assert ids.APPROVE not in _text(copy.blocks)


async def test_each_item_ends_on_time_on_its_own(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis, bot_options: dict[str, Any]
) -> None:
    """Real time, 3 s grants: lab (auto-approved) expires by its own job while cache still
    waits; cache, approved afterwards, runs its own 3 s and expires by its own job; the DM
    shows lab ended and cache's password until cache ends, then neither secret."""
    async with running_bot(
        redis_url=redis_url, prefix=keys.prefix, clock=time.time, **bot_options
    ) as slack:
        await slack.command(ALICE, "request bundle responder 3s INC-9 outage")
        grants = {g.resource: g for g in await slack.grants_of(ALICE)}

        def status_of(grant_id: str) -> Callable[[], Awaitable[bool]]:
            async def ended() -> bool:
                return (await slack.bot.store.get(grant_id)).status is Status.EXPIRED

            return ended

        await wait_for(status_of(grants["lab"].id), what="lab to expire")
        assert (await slack.bot.store.get(grants["cache"].id)).status is Status.PENDING
        copy = next(m for m in _bundle_copies(slack) if m.channel == ACCESS_CHANNEL)
        await slack.click(BOB, copy, ids.APPROVE, block_id=f"bundle-decide-{grants['cache'].id}")
        cache = await slack.bot.store.get(grants["cache"].id)
        assert cache.status is Status.ACTIVE
        [dm] = _bundle_dms(slack, ALICE)
        assert "*password*" in _text(dm.blocks) and "Expired at" in _text(dm.blocks)
        await wait_for(status_of(cache.id), what="cache to expire")
        await slack.settle()
        await slack.emulator.wait_for(
            lambda: "*password*" not in _text(_bundle_dms(slack, ALICE)[0].blocks)
        )


async def test_each_credential_in_the_bundle_dm_names_its_resource_and_role(
    slack: SlackHarness,
) -> None:
    """The bundle DM labels every live item's credential with its resource and role (a
    header right before it), so two credentials are told apart."""
    await slack.command(ALICE, "request bundle responder 30m INC-9 outage")
    grants = {g.resource: g for g in await slack.grants_of(ALICE)}
    copy = next(m for m in _bundle_copies(slack) if m.channel == ACCESS_CHANNEL)
    await slack.click(BOB, copy, ids.APPROVE, block_id=f"bundle-decide-{grants['cache'].id}")
    [dm] = _bundle_dms(slack, ALICE)
    for resource, role in (("lab", "play"), ("cache", "read")):
        grant = grants[resource]
        mine = [b for b in dm.blocks if str(b.get("block_id", "")).endswith(f"{grant.id}-0")]
        assert mine and mine[0]["type"] == "header", dm.blocks
        assert mine[0]["text"]["text"] == f"{resource} {role}"
        item = [b for b in dm.blocks if f"{grant.id}-" in str(b.get("block_id", ""))]
        assert "pproved" in _text(item[1])  # the credential's own blocks follow the label


async def test_a_bundle_the_form_may_not_file_is_refused_on_the_field(
    slack: SlackHarness,
) -> None:
    """An unknown bundle or one with an item Alice may not request is answered on the
    target field (response_action errors), the form stays open, nothing is filed or DMed."""
    from bot.devtools.slack_driver import plain_text_value, static_select_value

    await slack.command(ALICE, "")
    [form] = slack.emulator.views(ALICE)
    dms_before = len(slack.dms(ALICE))
    for value, says in [
        ("bundle:nosuch", 'unknown bundle "nosuch"'),
        ("bundle:too-much", "its item vault admin is refused"),
    ]:
        resp = await slack.driver.view_submission(
            ALICE,
            form.as_slack(),
            values={
                ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value(value)},
                ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("20m")},
                ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("INC-9 x")},
            },
        )
        assert resp.status == 200
        assert resp.json["response_action"] == "errors", resp.body
        assert says in resp.json["errors"][ids.FORM_TARGET_BLOCK]
    await slack.settle()
    assert await slack.grants_of(ALICE) == []
    assert len(slack.dms(ALICE)) == dms_before
