"""The redis_acl provider against a real redis-server on a private port (so ACL users and a
stopped server never touch the shared Redis)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio

from bot.devtools.redis_server import RedisServer
from bot.domain.credentials import Credential
from bot.errors import TargetUnavailable
from bot.providers.base import BulkRevoker, GrantContext, Provider
from bot.providers.naming import login_name
from bot.providers.redis_acl import DELUSER_CHUNK
from bot.providers.registry import build_provider
from tests.integration.providers_fixtures import assert_secrets_not_logged, make_ctx

ROLE = {"commands": "+@read", "keys": "~cache:*"}


class Resp:
    """A raw RESP client over one TCP connection: no reconnects, so a killed connection
    shows as end-of-stream instead of being silently re-opened."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Resp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, *args: str) -> str:
        """Send one command; return its first reply line (``+OK``, ``-NOPERM ...``, ``$3``)."""
        out = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        self.writer.write(out.encode())
        await self.writer.drain()
        line = await asyncio.wait_for(self.reader.readline(), 5)
        if line.startswith(b"$") and line != b"$-1\r\n":
            await self.reader.readline()  # the bulk string's payload
        return line.decode().rstrip("\r\n")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@dataclass
class Target:
    server: RedisServer
    provider: Provider
    issued: list[GrantContext]

    def ctx(self, role_settings: dict[str, Any] | None = None, **kw: Any) -> GrantContext:
        ctx = make_ctx(role_settings=role_settings or ROLE, **kw)
        self.issued.append(ctx)
        return ctx

    async def login(self, cred: Credential, *, password: str | None = None) -> tuple[Resp, str]:
        conn = await Resp.open(self.server.port)
        reply = await conn.call(
            "AUTH", cred.get("user") or "", password or cred.get("password") or ""
        )
        return conn, reply

    async def admin(self, *args: str) -> str:
        conn = await Resp.open(self.server.port)
        try:
            return await conn.call(*args)
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def redis_target_server() -> Iterator[RedisServer]:
    with RedisServer(appendonly=False) as server:
        yield server


@pytest.fixture
async def rd(redis_target_server: RedisServer) -> AsyncIterator[Target]:
    provider = build_provider(
        {"type": "redis_acl", "url": "${GB_TEST_REDIS_URL}"},
        env={"GB_TEST_REDIS_URL": redis_target_server.url},
    )
    target = Target(server=redis_target_server, provider=provider, issued=[])
    yield target
    for ctx in target.issued:
        await provider.revoke(ctx)
    await provider.aclose()


async def test_issued_user_authenticates_and_is_held_to_its_rules(rd: Target) -> None:
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
    assert await rd.provider.check(ctx)
    assert ctx.grant_id in await rd.provider.live_grant_ids()
    assert "grantbot deletes" in (cred.get("note") or "")  # no target-side expiry: said so


async def test_revoke_kills_open_connections_and_deletes_the_user(rd: Target) -> None:
    """Revoke closes a connection authenticated as the user, and AUTH is refused afterwards."""
    ctx = rd.ctx()
    cred = await rd.provider.issue(ctx, now=time.time())
    conn, reply = await rd.login(cred)
    assert reply == "+OK"
    await rd.provider.revoke(ctx)
    assert await asyncio.wait_for(conn.reader.read(), 5) == b""  # server closed it
    await conn.close()
    again, reply = await rd.login(cred)
    await again.close()
    assert reply.startswith("-WRONGPASS")
    assert not await rd.provider.check(ctx)
    assert ctx.grant_id not in await rd.provider.live_grant_ids()


async def test_revoking_twice_or_what_was_never_issued_succeeds(rd: Target) -> None:
    """Revoke is idempotent: a second revoke, or one for a grant never issued, is success."""
    ctx = rd.ctx()
    await rd.provider.issue(ctx, now=time.time())
    await rd.provider.revoke(ctx)
    await rd.provider.revoke(ctx)
    await rd.provider.revoke(rd.ctx())


async def test_issuing_twice_gives_one_user_with_the_new_password_and_rules(rd: Target) -> None:
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


async def test_overlapping_grants_of_one_user_are_independent(rd: Target) -> None:
    """Two grants of the same user and role get two ACL users; revoking one leaves the other
    authenticating and reading."""
    first, second = rd.ctx(user="U0SAME"), rd.ctx(user="U0SAME")
    await rd.provider.issue(first, now=time.time())
    cred2 = await rd.provider.issue(second, now=time.time())
    await rd.provider.revoke(first)
    conn, reply = await rd.login(cred2)
    try:
        assert reply == "+OK"
        assert not (await conn.call("GET", "cache:x")).startswith("-")
    finally:
        await conn.close()


async def test_a_stopped_server_raises_target_unavailable() -> None:
    """With the Redis stopped, revoke, issue and health raise TargetUnavailable."""
    server = RedisServer(appendonly=False).start()
    provider = build_provider({"type": "redis_acl", "url": server.url}, env={})
    try:
        await provider.health()
        server.stop()
        ctx = make_ctx(role_settings=ROLE)
        with pytest.raises(TargetUnavailable):
            await provider.revoke(ctx)
        with pytest.raises(TargetUnavailable):
            await provider.issue(ctx, now=time.time())
        with pytest.raises(TargetUnavailable):
            await provider.health()
    finally:
        server.stop()
        await provider.aclose()


async def test_no_issued_password_reaches_any_log_record(
    rd: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, issue + re-issue + revoke log nothing containing a password, and the
    credential's repr redacts it."""
    caplog.set_level(logging.DEBUG)
    ctx = rd.ctx()
    creds = [await rd.provider.issue(ctx, now=time.time()) for _ in range(2)]
    await rd.provider.revoke(ctx)
    secrets = [s for c in creds for s in c.secret_values()]
    assert len(secrets) == 4
    assert_secrets_not_logged(caplog, secrets)
    assert not any(s in repr(c) for c in creds for s in secrets)


# -- revoke_many: the bulk path the revoker takes for a batch of expiries ------------------


async def acl_users(server: RedisServer) -> set[str]:
    client = redis.asyncio.Redis.from_url(server.url, decode_responses=True)
    try:
        return set(await client.acl_users())
    finally:
        await client.aclose()


async def test_revoke_many_deletes_every_user_and_closes_their_connections(rd: Target) -> None:
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
    assert not await acl_users(rd.server) & {cred.ref for cred in creds}


async def test_revoke_many_leaves_other_grants_of_the_same_user(rd: Target) -> None:
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


async def test_revoke_many_is_idempotent(rd: Target) -> None:
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


async def test_revoke_many_beyond_one_deluser_chunk_deletes_them_all(rd: Target) -> None:
    """More grants than one ACL DELUSER carries: every user is deleted."""
    n = DELUSER_CHUNK * 2 + 7
    ctxs = [make_ctx(role_settings=ROLE) for _ in range(n)]
    client = redis.asyncio.Redis.from_url(rd.server.url, decode_responses=True)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for ctx in ctxs:
                pipe.execute_command("ACL", "SETUSER", login_name(ctx.grant_id), "on", "+ping")
            await pipe.execute()
        names = {login_name(ctx.grant_id) for ctx in ctxs}
        assert names <= await acl_users(rd.server)
        assert isinstance(rd.provider, BulkRevoker)
        assert await rd.provider.revoke_many(ctxs) == {}
        assert not names & await acl_users(rd.server)
    finally:
        await client.aclose()


async def test_revoke_many_at_a_stopped_server_raises_target_unavailable() -> None:
    """With the target down, revoke_many raises TargetUnavailable: every grant it was given
    counts as failed (the revoker then records each one REVOKE_FAILED and retries it)."""
    server = RedisServer(appendonly=False).start()
    provider = build_provider({"type": "redis_acl", "url": server.url}, env={})
    try:
        ctxs = [make_ctx(role_settings=ROLE) for _ in range(3)]
        for ctx in ctxs:
            await provider.issue(ctx, now=time.time())
        server.stop()
        assert isinstance(provider, BulkRevoker)
        with pytest.raises(TargetUnavailable):
            await provider.revoke_many(ctxs)
    finally:
        server.stop()
        await provider.aclose()
