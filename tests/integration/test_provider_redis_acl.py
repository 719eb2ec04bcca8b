"""The redis_acl provider against a real redis-server on a private port (so ACL users and a
stopped server never touch the shared Redis), beyond the provider contract
(test_provider_contract.py): the ACL rules held, re-issue, and the bulk revoke path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from bot.devtools.redis_server import RedisServer
from bot.errors import TargetUnavailable
from bot.providers.base import BulkRevoker
from bot.providers.naming import login_name
from bot.providers.redis_acl import DELUSER_CHUNK
from bot.providers.registry import build_provider
from tests.integration.provider_targets import REDIS_ROLE, RedisAclTarget, redis_acl_target
from tests.integration.providers_fixtures import make_ctx


@pytest.fixture
async def rd(cache_server: RedisServer) -> AsyncIterator[RedisAclTarget]:
    async with redis_acl_target(cache_server) as target:
        yield target


async def test_issued_user_authenticates_and_is_held_to_its_rules(rd: RedisAclTarget) -> None:
    """The issued user/password authenticates; a read on an allowed key works, a write and a
    read outside the key pattern are refused, and a wrong password is refused."""
    ctx = rd.ctx()
    cred = await rd.provider.issue(ctx, now=time.time())
    assert cred.ref == login_name(ctx.grant_id) == cred.get("user")
    await rd.admin("SET", "cache:x", "hello")
    conn, reply = await rd.login(cred)
    try:
        assert reply == "+OK"
        assert await conn.call("GET", "cache:x") == "$5"
        assert (await conn.call("SET", "cache:x", "y")).startswith("-NOPERM")
        assert (await conn.call("GET", "other:x")).startswith("-NOPERM")
    finally:
        await conn.close()
    bad, reply = await rd.login(cred, password="not-the-password")
    await bad.close()
    assert reply.startswith("-WRONGPASS")
    assert "grantbot deletes" in (cred.get("note") or "")  # no target-side expiry: said so


async def test_issuing_twice_gives_one_user_with_the_new_password_and_rules(
    rd: RedisAclTarget,
) -> None:
    """A second issue for one grant re-uses the user: listed once, the new password works and
    the old one is refused (``reset`` replaced it rather than adding a second)."""
    ctx = rd.ctx()
    first = await rd.provider.issue(ctx, now=time.time())
    second = await rd.provider.issue(ctx, now=time.time())
    assert first.ref == second.ref
    assert first.get("password") != second.get("password")
    client = redis.asyncio.Redis.from_url(rd.server.url, decode_responses=True)
    try:
        users = await client.acl_users()
    finally:
        await client.aclose()
    assert users.count(first.ref) == 1
    new, reply = await rd.login(second)
    await new.close()
    assert reply == "+OK"
    old, reply = await rd.login(first)
    await old.close()
    assert reply.startswith("-WRONGPASS")


# -- revoke_many: the bulk path the revoker takes for a batch of expiries ------------------


async def test_revoke_many_deletes_every_user_and_closes_their_connections(
    rd: RedisAclTarget,
) -> None:
    """One revoke_many for three grants: each one's open connection is closed by the server,
    its password no longer authenticates, and none is listed live; nothing is reported
    failed."""
    ctxs = [rd.ctx() for _ in range(3)]
    creds = [await rd.provider.issue(ctx, now=time.time()) for ctx in ctxs]
    conns = []
    for cred in creds:
        conn, reply = await rd.login(cred)
        assert reply == "+OK"
        conns.append(conn)
    assert isinstance(rd.provider, BulkRevoker)
    assert await rd.provider.revoke_many(ctxs) == {}
    for conn in conns:
        assert await asyncio.wait_for(conn.reader.read(), 5) == b""  # server closed it
        await conn.close()
    for cred in creds:
        again, reply = await rd.login(cred)
        await again.close()
        assert reply.startswith("-WRONGPASS")
    live = await rd.provider.live_grant_ids()
    assert not live & {ctx.grant_id for ctx in ctxs}
    assert not await rd.acl_users() & {cred.ref for cred in creds}


async def test_revoke_many_leaves_other_grants_of_the_same_user(rd: RedisAclTarget) -> None:
    """Revoking one of a user's two overlapping grants in bulk leaves the other one working
    (its connection stays open and reads)."""
    first, second = rd.ctx(user="U0SAME"), rd.ctx(user="U0SAME")
    await rd.provider.issue(first, now=time.time())
    cred2 = await rd.provider.issue(second, now=time.time())
    conn, reply = await rd.login(cred2)
    try:
        assert reply == "+OK"
        assert isinstance(rd.provider, BulkRevoker)
        assert await rd.provider.revoke_many([first]) == {}
        assert not (await conn.call("GET", "cache:x")).startswith("-")  # still connected
    finally:
        await conn.close()
    assert await rd.provider.check(second)
    assert not await rd.provider.check(first)


async def test_revoke_many_is_idempotent(rd: RedisAclTarget) -> None:
    """A second revoke_many of the same grants, grants never issued, a grant given twice and
    an empty list all succeed."""
    ctxs = [rd.ctx() for _ in range(2)]
    for ctx in ctxs:
        await rd.provider.issue(ctx, now=time.time())
    assert isinstance(rd.provider, BulkRevoker)
    assert await rd.provider.revoke_many([*ctxs, ctxs[0]]) == {}
    assert await rd.provider.revoke_many([*ctxs, rd.ctx()]) == {}
    assert await rd.provider.revoke_many([]) == {}
    assert not any([await rd.provider.check(ctx) for ctx in ctxs])


async def test_revoke_many_beyond_one_deluser_chunk_deletes_them_all(rd: RedisAclTarget) -> None:
    """More grants than one ACL DELUSER carries: every user is deleted."""
    n = DELUSER_CHUNK * 2 + 7
    ctxs = [make_ctx(role_settings=REDIS_ROLE) for _ in range(n)]
    client = redis.asyncio.Redis.from_url(rd.server.url, decode_responses=True)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for ctx in ctxs:
                pipe.execute_command("ACL", "SETUSER", login_name(ctx.grant_id), "on", "+ping")
            await pipe.execute()
        names = {login_name(ctx.grant_id) for ctx in ctxs}
        assert names <= await rd.acl_users()
        assert isinstance(rd.provider, BulkRevoker)
        assert await rd.provider.revoke_many(ctxs) == {}
        assert not names & await rd.acl_users()
    finally:
        await client.aclose()


async def test_revoke_many_at_a_stopped_server_raises_target_unavailable() -> None:
    """With the target down, revoke_many raises TargetUnavailable: every grant it was given
    counts as failed (the revoker then records each one REVOKE_FAILED and retries it)."""
    server = RedisServer(appendonly=False).start()
    provider = build_provider({"type": "redis_acl", "url": server.url}, env={})
    try:
        ctxs = [make_ctx(role_settings=REDIS_ROLE) for _ in range(3)]
        for ctx in ctxs:
            await provider.issue(ctx, now=time.time())
        server.stop()
        assert isinstance(provider, BulkRevoker)
        with pytest.raises(TargetUnavailable):
            await provider.revoke_many(ctxs)
    finally:
        server.stop()
        await provider.aclose()
