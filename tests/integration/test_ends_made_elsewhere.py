"""A grant ended where there is no Slack (the CLI) updates the same Slack messages an end by
the scheduler does, exactly once, by a running bot: the credential DM loses its password,
the approvers' copies show the end, the requester and the incident thread hear. With no bot
running the CLI says Slack will be updated when one starts, and it is. Real bots, real
Redis, a real Redis ACL target; Slack is the emulator."""

from __future__ import annotations

import argparse
import json

import pytest
import redis.asyncio as aioredis

from bot.announcer import EndAnnouncer
from bot.cli import SLACK_BY_RUNNING_BOT, SLACK_WHEN_A_BOT_STARTS, cmd_grants_revoke
from bot.devtools.redis_server import RedisServer
from bot.devtools.slack_emulator import Message, SlackEmulator
from bot.domain.model import Grant, Status
from bot.slack import ids
from bot.store.audit_feed import AuditFeed
from bot.store.connection import redis_outage
from bot.store.keys import Keys
from tests.integration.slack_harness import (
    ACCESS_CHANNEL,
    ALICE,
    BOB,
    INCIDENT,
    SlackHarness,
    running_bot,
    settings_for,
)


@pytest.fixture
def env(cache_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The policy's ${GRANTBOT_TEST_CACHE_URL}, for the bots and the CLI alike."""
    monkeypatch.setenv("GRANTBOT_TEST_CACHE_URL", cache_server.url)
    return {"GRANTBOT_TEST_CACHE_URL": cache_server.url}


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _active_grant_with_password(slack: SlackHarness) -> tuple[Grant, Message, str]:
    """Alice asks for the cache from the incident channel; Bob approves; the credential DM
    (with the password) is returned."""
    await slack.command(ALICE, "request cache read 30m incident triage", channel=INCIDENT)
    grant = next(g for g in await slack.grants_of(ALICE) if g.status is Status.PENDING)
    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await slack.click(BOB, copy, ids.APPROVE)
    active = await slack.bot.store.get(grant.id)
    assert active.status is Status.ACTIVE
    dm = next(m for m in slack.dms(ALICE) if "*password*: `" in _text(m.blocks))
    password = _text(dm.blocks).split("*password*: `", 1)[1].split("`", 1)[0]
    assert len(password) >= 16
    return active, dm, password


async def _revoke_from_cli(
    emulator: SlackEmulator,
    redis_url: str,
    prefix: str,
    grant_id: str,
    capsys: pytest.CaptureFixture[str],
) -> list[str]:
    """`grantbot grants revoke ID --operator ops --reason offboarded`, its stdout lines."""
    args = argparse.Namespace(grant_id=grant_id, force=False, operator="ops", reason="offboarded")
    settings = settings_for(emulator, prefix=prefix, REDIS_URL=redis_url)
    assert await cmd_grants_revoke(args, settings) == 0
    return capsys.readouterr().out.splitlines()


def _assert_told_once(
    slack: SlackHarness, grant: Grant, dm: Message, password: str, *, copies: list[Message]
) -> None:
    """The credential DM rewritten once without its password; every approver copy shows the
    revocation; exactly one thread post and one requester notice about it."""
    assert password not in _text(dm.blocks)
    assert "Revoked by cli:ops" in _text(dm.blocks)
    assert len(dm.history) == 1  # one rewrite: the end
    assert len(copies) == 3  # Bob's and Carol's DMs, the approval channel
    for copy in copies:
        assert "Revoked by cli:ops" in _text(copy.blocks) and ids.REVOKE not in _text(copy.blocks)
    [root] = [
        m for m in slack.emulator.messages(INCIDENT) if grant.id in m.text and not m.thread_ts
    ]
    thread = [m for m in slack.emulator.thread(INCIDENT, root.ts) if "Revoked" in m.text]
    assert len(thread) == 1
    notices = [m for m in slack.dms(ALICE) if "Revoked by cli:ops" in m.text and m.ts != dm.ts]
    assert len(notices) == 1
    carrying = [c for c in slack.emulator.calls() if password in _text(c.args)]
    assert [c.method for c in carrying] == ["chat.postMessage"]  # the DM that delivered it


async def test_a_cli_end_while_the_bot_runs_updates_slack_once(
    redis_url: str,
    keys: Keys,
    redis_client: aioredis.Redis,
    emulator: SlackEmulator,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`grantbot grants revoke` while a bot runs: the CLI says the running bot updates Slack;
    the bot rewrites the credential DM without the password, updates every approver copy,
    tells the thread and the requester, once."""
    async with running_bot(
        redis_url=redis_url, prefix=keys.prefix, environ=env, emulator=emulator
    ) as slack:
        grant, dm, password = await _active_grant_with_password(slack)
        copies = slack.copies(grant.id)
        capsys.readouterr()
        out = await _revoke_from_cli(emulator, redis_url, keys.prefix, grant.id, capsys)
        assert out == [f"{grant.id}: REVOKED", SLACK_BY_RUNNING_BOT.format(it="it")]
        assert await slack.bot.announcer.settled()
        _assert_told_once(slack, grant, dm, password, copies=copies)
        assert slack.bot.announcer.announced == 1


async def test_a_cli_end_with_no_bot_running_is_announced_when_one_starts(
    redis_url: str,
    keys: Keys,
    redis_client: aioredis.Redis,
    emulator: SlackEmulator,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the bot stopped the CLI says Slack will be updated when one starts; Slack is
    untouched meanwhile; the next bot to start updates it, once."""
    async with running_bot(
        redis_url=redis_url, prefix=keys.prefix, environ=env, emulator=emulator
    ) as slack:
        grant, dm, password = await _active_grant_with_password(slack)
        copies = slack.copies(grant.id)
    capsys.readouterr()
    calls_before = len(emulator.calls())

    out = await _revoke_from_cli(emulator, redis_url, keys.prefix, grant.id, capsys)
    assert out == [f"{grant.id}: REVOKED", SLACK_WHEN_A_BOT_STARTS.format(it="it")]
    assert len(emulator.calls()) == calls_before  # nobody told Slack
    assert password in _text(dm.blocks)

    async with running_bot(
        redis_url=redis_url, prefix=keys.prefix, environ=env, emulator=emulator
    ) as restarted:
        assert await restarted.bot.announcer.settled()
        _assert_told_once(restarted, grant, dm, password, copies=copies)
        assert restarted.bot.announcer.announced == 1


async def test_two_replicas_announce_a_cli_end_once(
    redis_url: str,
    keys: Keys,
    redis_client: aioredis.Redis,
    emulator: SlackEmulator,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two bots share the Redis and the Slack: a CLI end is announced by exactly one."""
    async with (
        running_bot(
            redis_url=redis_url, prefix=keys.prefix, environ=env, emulator=emulator
        ) as first,
        running_bot(
            redis_url=redis_url, prefix=keys.prefix, environ=env, emulator=emulator
        ) as second,
    ):
        grant, dm, password = await _active_grant_with_password(first)
        copies = first.copies(grant.id)
        capsys.readouterr()
        out = await _revoke_from_cli(emulator, redis_url, keys.prefix, grant.id, capsys)
        assert out[-1] == SLACK_BY_RUNNING_BOT.format(it="it")
        assert await first.bot.announcer.settled()
        _assert_told_once(first, grant, dm, password, copies=copies)
        assert first.bot.announcer.announced + second.bot.announcer.announced == 1


async def test_an_end_a_dead_replica_took_is_claimed_by_another_and_announced_once(
    redis_url: str,
    keys: Keys,
    redis_client: aioredis.Redis,
    emulator: SlackEmulator,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A replica that took the end's entry and died before announcing it leaves it pending;
    a live replica's announcer claims it once it has been idle long enough and announces it,
    once, and nothing is left pending."""
    async with running_bot(
        redis_url=redis_url, prefix=keys.prefix, environ=env, emulator=emulator
    ) as slack:
        grant, dm, password = await _active_grant_with_password(slack)
        copies = slack.copies(grant.id)
        await slack.bot.announcer.stop()  # this bot reads no more: the "dead" one will
        capsys.readouterr()
        await _revoke_from_cli(emulator, redis_url, keys.prefix, grant.id, capsys)
        dead = AuditFeed(redis_client, keys=keys, consumer="dead-replica")
        taken = await dead.read(count=100, block_ms=100)
        assert any(grant.id in e.body and '"to":"REVOKED"' in e.body for e in taken)

        claimer = EndAnnouncer(
            AuditFeed(redis_client, keys=keys, consumer="live-replica"),
            store=slack.bot.store,
            notifier=slack.bot.notifier,
            redis_outage=redis_outage(),
            claim_idle_s=0.2,
            claim_every_s=0.1,
        )
        claimer.start()
        try:
            assert await claimer.settled()
        finally:
            await claimer.stop()
        _assert_told_once(slack, grant, dm, password, copies=copies)
        assert claimer.announced == 1
