"""A Redis written by grantbot before the renovation (main at 93a0e28) is served by today's code:
its chain verifies, its jobs run, every grant ends as it should, and what it kept is read.

tests/fixtures/redis_v1.json is a logical dump of every key under ``{grantbot}`` (type, value,
PTTL) of a Redis populated by that version under tests/fixtures/redis_v1_policy.yaml: grants
in every state (an ACTIVE one and an extended one, both past their expiry; a PENDING request
past its timeout; an APPROVED grant whose issuing never finished; a REVOKE_FAILED grant whose
ACL target was down, with its retry state and retry job), revocation jobs, the audit chain,
an escalation, an auto-approval count, Slack message refs, a Slack dedupe key and an SSH key.
It is restored into a private redis-server, and the bot is assembled as ``grantbot serve``
does (scheduler, revoker, sweeps, end announcer) against a private redis-server as the
``cache`` resource's ACL target and the Slack emulator.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.devtools.redis_server import RedisServer
from bot.domain.model import Status
from bot.store.connection import connect
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from tests.integration.slack_harness import running_bot
from tests.integration.support import wait_for

FIXTURES = Path(__file__).parent.parent / "fixtures"
DUMP = json.loads((FIXTURES / "redis_v1.json").read_text())
POLICY = FIXTURES / "redis_v1_policy.yaml"
GRANTS: dict[str, str] = DUMP["grants"]
WRITTEN_AT: float = DUMP["written_at"]
KEYS = Keys(prefix="grantbot")
#: The REVOKE_FAILED grant's login, still at its target: the revocation that failed left it.
STUCK_LOGIN = "gb_g_aapvzyfa"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFj6wVOE2cMCX0mYQ1y6Yk5t2pP1Ck8t9sVq2f0hJm7H compat"


async def restore(client: aioredis.Redis, dump: dict[str, Any]) -> None:
    """Write every key of ``dump`` back as it was, with its remaining time to live."""
    async with client.pipeline(transaction=False) as pipe:
        for key, item in dump.items():
            kind, value = item["type"], item["value"]
            if kind == "string":
                pipe.set(key, value)
            elif kind == "hash":
                pipe.hset(key, mapping=value)
            elif kind == "set":
                pipe.sadd(key, *value)
            elif kind == "zset":
                pipe.zadd(key, {member: score for member, score in value})
            elif kind == "stream":
                for entry_id, fields in value:
                    pipe.xadd(key, fields, id=entry_id)
            else:
                raise AssertionError(f"the dump holds a {kind} at {key}")
            if item["pttl"] > 0:
                pipe.pexpire(key, item["pttl"])
        await pipe.execute()


@pytest.fixture
async def acl_target() -> AsyncIterator[tuple[str, aioredis.Redis]]:
    """The ``cache`` resource's target (its URL and an admin client), still holding the login
    whose revocation failed."""
    with RedisServer(appendonly=False) as server:
        client = aioredis.Redis.from_url(server.url, decode_responses=True)
        try:
            await client.acl_setuser(STUCK_LOGIN, enabled=True, passwords=["+left-behind"])
            yield server.url, client
        finally:
            await client.aclose()


@pytest.fixture
async def v1_redis() -> AsyncIterator[tuple[str, GrantStore]]:
    """A private redis-server holding the fixture's keys, and a store on it."""
    with RedisServer(appendonly=False) as server:
        client = connect(server.url)
        try:
            await restore(client, DUMP["keys"])
            yield server.url, GrantStore(client, keys=KEYS)
        finally:
            await client.aclose()


async def test_a_redis_written_before_the_renovation_is_served(
    v1_redis: tuple[str, GrantStore], acl_target: tuple[str, aioredis.Redis]
) -> None:
    """The restored chain verifies before anything runs; served by today's code, the overdue
    jobs run and the live grants end (EXPIRED), the REVOKE_FAILED grant's retry ends it once
    its target answers (REVOKED, its login gone), the PENDING request times out, the
    APPROVED-never-issued grant is taken back (FAILED), the escalation, the day's count, the
    SSH key, the dedupe key and the Slack message refs are read, and the chain, grown by all
    of that, still verifies."""
    url, store = v1_redis
    target_url, target = acl_target
    before = await store.audit.verify()
    assert before.entries == len(DUMP["keys"]["{grantbot}:audit"]["value"]) == 35
    assert {name: (await store.get(gid)).status.value for name, gid in GRANTS.items()} == (
        DUMP["statuses"]
    )
    # The dump holds stream entries, not consumer groups: the group is made at the stream's
    # end, as the CLI and the first serve do, before any end is made here.
    await store.audit_feed().ensure_group()

    async with running_bot(
        redis_url=url,
        prefix=KEYS.prefix,
        policy=POLICY,
        environ={"COMPAT_ACL_URL": target_url},
        clock=time.time,
    ) as slack:
        expected = {
            "active": Status.EXPIRED,
            "extended": Status.EXPIRED,
            "revoke_failed": Status.REVOKED,
            "pending": Status.TIMED_OUT,
            "approved": Status.FAILED,
        }

        async def statuses() -> dict[str, Status]:
            return {name: (await store.get(GRANTS[name])).status for name in expected}

        async def all_ended() -> bool:
            return await statuses() == expected

        await wait_for(all_ended, what="every grant to end as it should", timeout_s=30)
        jobs = store.revocation_jobs()
        assert await jobs.count() == 0  # the overdue jobs ran, the retry job too
        assert await store.retry_states.get_many([GRANTS["revoke_failed"]]) == {}
        assert await target.acl_getuser(STUCK_LOGIN) is None
        assert await store.live_by_resource() == {}

        # What v1 kept is read by today's code.
        service = slack.bot.service
        assert await service.ssh_key("U0ALICE") == SSH_KEY
        assert await store.escalations.asked(GRANTS["pending"]) == {1: pytest.approx(WRITTEN_AT)}
        used = await store.quota.used(user="U0ALICE", resource="box", role="use", now=WRITTEN_AT)
        assert used == 1
        assert not await slack.bot.deps.dedupe.first_time("compat-delivery-token")

        # The message refs v1 stored are the messages today's code updates when those grants
        # end (the announcer tells Slack of each end from the audit stream).
        def updated() -> set[tuple[str, str]]:
            return {(c.args["channel"], c.args["ts"]) for c in slack.emulator.calls("chat.update")}

        refs = {
            ("C0ACCESS", "1700000003.000400"),  # the active grant's approver copy
            ("D0ALICE", "1700000002.000300"),  # its credential DM, which loses its secret
            ("C0ACCESS", "1700000001.000200"),  # the pending request's approver copy
        }
        await slack.emulator.wait_for(lambda: refs <= updated(), timeout_s=10)

        def told_in_thread() -> bool:
            return any(
                c.args.get("channel") == "C0INC42"
                and c.args.get("thread_ts") == "1700000000.000100"
                for c in slack.emulator.calls("chat.postMessage")
            )

        await slack.emulator.wait_for(told_in_thread, timeout_s=10)
        await slack.settle()

    after = await store.audit.verify()
    assert after.entries > before.entries
    ends = {
        entry.data["grant_id"]: entry.data["details"].get("to")
        async for entry in store.audit.entries()
        if entry.seq > before.entries and entry.data["grant_id"] in GRANTS.values()
    }
    assert ends == {GRANTS[name]: status.value for name, status in expected.items()}
