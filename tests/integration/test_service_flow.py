"""The service end to end with real targets: request, approval, a credential that works,
revocation (also from the CLI), and no secret left anywhere but the credential itself."""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError

from bot.cli import SLACK_WHEN_A_BOT_STARTS
from bot.devtools.redis_server import RedisServer
from bot.domain.credentials import Credential
from bot.domain.model import Actor, ActorKind, Event, Grant, Origin, Status
from bot.errors import NotAuthorized, PolicyDenied, TransitionError
from bot.logs import configure_logging
from bot.notify import Notifier
from bot.policy_holder import PolicyHolder
from bot.providers.naming import login_name
from bot.service import GrantService, ServiceContext
from bot.store.grants import GrantStore
from bot.wiring import build_core, close_core
from tests.factories import POLICY_V, make_grant
from tests.integration.providers_fixtures import MYSQL_ADMIN_DSN, PG_ADMIN_DSN
from tests.integration.support import grantbot

pytestmark = pytest.mark.needs("postgres", "mysql")

PG_ROLE = "grantbot_test_readers"

POLICY = """
groups:
  eng: {members: [U0ALICE, U0BOB, U0CAROL]}
  approvers: {members: [U0BOB, U0CAROL]}
defaults:
  requesters: {groups: [eng]}
  approvers: {groups: [approvers]}
  max_duration: 1h
resources:
  cache:
    provider: {type: redis_acl, url: "${FLOW_CACHE_URL}"}
    roles:
      read:
        provider: {commands: "+@read +ping", keys: "~cache:*"}
  orders-db:
    provider: {type: postgres, dsn: "${FLOW_PG_DSN}"}
    roles:
      read:
        approvals_required: 2
        provider: {grant_roles: [grantbot_test_readers]}
  billing-db:
    provider: {type: mysql, dsn: "${FLOW_MYSQL_DSN}"}
    roles:
      read:
        provider: {grants: ["SELECT ON test.*"]}
"""


@pytest.fixture
async def pg_role() -> AsyncIterator[None]:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", PG_ROLE)
        if not exists:
            await conn.execute(f"CREATE ROLE {PG_ROLE} NOLOGIN")
        yield
    finally:
        await conn.close()


@pytest.fixture
def env(cache_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "FLOW_CACHE_URL": cache_server.url,
        "FLOW_PG_DSN": PG_ADMIN_DSN,
        "FLOW_MYSQL_DSN": MYSQL_ADMIN_DSN,
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
def notifier() -> Notifier | None:
    """What the service tells (a test overrides this to listen); None: nothing."""
    return None


@pytest.fixture
async def service(
    tmp_path: Path,
    store: GrantStore,
    env: dict[str, str],
    pg_role: None,
    notifier: Notifier | None,
) -> AsyncIterator[GrantService]:
    """The service and its revoker as the CLI builds them (bot.wiring)."""
    path = tmp_path / "policies.yaml"
    path.write_text(POLICY)
    holder = PolicyHolder.load(path)
    core = build_core(ServiceContext(store=store, policy=holder, notifier=notifier, environ=env))
    yield core.service
    await close_core(core)


async def redis_login(cred: Credential, url: str) -> aioredis.Redis:
    client = aioredis.Redis.from_url(
        url, username=cred.get("user"), password=cred.get("password"), decode_responses=True
    )
    await client.ping()
    return client


async def test_request_approve_issue_revoke_with_a_real_redis_acl_user(
    service: GrantService, cache_server: RedisServer
) -> None:
    """An approved request yields an ACL user that can read; a revoke kills it and its session."""
    result = await service.request_access(
        user="U0ALICE",
        resource="cache",
        role=None,
        duration_s=600,
        reason="debugging INC-7",
        tickets=["INC-7"],
        origin=Origin(surface="command"),
    )
    assert result.grant.status is Status.PENDING
    grant = await service.approve(result.grant.id, user="U0BOB")
    assert grant.status is Status.ACTIVE and grant.expires_at is not None
    assert grant.credential_ref is not None

    # The notifier DMs the credential; here the test re-issues (idempotent at the target:
    # same user, fresh password) to hold one of its own.
    provider, ctx = service.resolve(grant)
    cred = await provider.issue(ctx, now=grant.activated_at or 0.0)
    session = await redis_login(cred, cache_server.url)
    assert await session.get("cache:x") is None

    ended = await service.revoke(grant.id, user="U0ALICE", reason="done")
    assert ended.status is Status.REVOKED
    with pytest.raises(Exception):  # noqa: B017,PT011 - the killed session errors on any command
        await session.ping()
    await session.aclose()
    with pytest.raises(AuthenticationError):
        await redis_login(cred, cache_server.url)


async def test_authority_comes_from_the_policy(service: GrantService) -> None:
    """A non-approver, the requester themself, and a second click are all refused; N-of-M
    needs two distinct approvers before a PostgreSQL login exists."""
    result = await service.request_access(
        user="U0ALICE",
        resource="orders-db",
        role="read",
        duration_s=600,
        reason="report",
        tickets=[],
    )
    gid = result.grant.id
    with pytest.raises(NotAuthorized, match="not an approver for orders-db read"):
        await service.approve(gid, user="U0ALICE")
    with pytest.raises(NotAuthorized):
        await service.approve(gid, user="U0NOBODY")
    first = await service.approve(gid, user="U0BOB")
    assert first.status is Status.PENDING
    with pytest.raises(NotAuthorized, match="already approved"):
        await service.approve(gid, user="U0BOB")
    active = await service.approve(gid, user="U0CAROL")
    assert active.status is Status.ACTIVE
    with pytest.raises(TransitionError, match="already approved"):
        await service.approve(gid, user="U0CAROL")
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        assert (
            await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", active.credential_ref)
            == 1
        )
        valid_until = await conn.fetchval(
            "SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1", active.credential_ref
        )
        assert (
            valid_until is not None and abs(valid_until.timestamp() - (active.expires_at or 0)) < 2
        )
    finally:
        await conn.close()
    await service.revoke(gid, user="U0BOB", reason="cleanup")


async def test_policy_refusal_changes_nothing(service: GrantService, store: GrantStore) -> None:
    """Asking beyond max_duration is refused with the limit named, and nothing is stored."""
    with pytest.raises(PolicyDenied, match="cache read is limited to 1h; you asked for 4h"):
        await service.request_access(
            user="U0ALICE",
            resource="cache",
            role="read",
            duration_s=4 * 3600,
            reason="x",
            tickets=[],
        )
    assert await store.list_grants() == []
    assert (await store.audit.verify()).entries == 0


async def _every_value_in_redis(client: aioredis.Redis, pattern: str) -> str:
    """Every key and value under ``pattern``, whatever the type, as one text blob."""
    parts: list[str] = []
    async for key in client.scan_iter(match=pattern, count=1000):
        kind = await client.type(key)
        if kind == "string":
            parts.append(str(await client.get(key)))
        elif kind == "hash":
            parts.append(repr(await client.hgetall(key)))
        elif kind == "set":
            parts.append(repr(await client.smembers(key)))
        elif kind == "zset":
            parts.append(repr(await client.zrange(key, 0, -1, withscores=True)))
        elif kind == "list":
            parts.append(repr(await client.lrange(key, 0, -1)))
        elif kind == "stream":
            parts.append(repr(await client.xrange(key)))
        parts.append(key)
    return "\n".join(parts)


class CapturingNotifier:
    """Keeps every secret the requester's DM would carry, logs a careless line about each
    credential, and ignores every other notification."""

    def __init__(self) -> None:
        self.secrets_seen: list[str] = []

    async def credential_issued(self, grant: Any, credential: Credential) -> None:
        self.secrets_seen.extend(credential.secret_values())
        logging.getLogger("test").info("issued %s", credential)  # a careless log line

    def __getattr__(self, name: str) -> Any:
        async def ignore(*args: Any, **kwargs: Any) -> None:
            return None

        return ignore


@pytest.mark.parametrize("notifier", [CapturingNotifier()])
async def test_no_secret_in_logs_audit_or_redis(
    service: GrantService,
    store: GrantStore,
    redis_client: aioredis.Redis,
    notifier: CapturingNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every password issued for postgres, mysql and redis grants is absent from the JSON
    logs, the captured log records, the audit stream and every Redis key of the bot."""
    sink = io.StringIO()
    configure_logging(level="DEBUG", stream=sink)
    caplog.set_level(logging.DEBUG)
    secrets_seen = notifier.secrets_seen
    try:
        for resource, approvers in (
            ("cache", ["U0BOB"]),
            ("orders-db", ["U0BOB", "U0CAROL"]),
            ("billing-db", ["U0BOB"]),
        ):
            r = await service.request_access(
                user="U0ALICE",
                resource=resource,
                role="read",
                duration_s=300,
                reason="audit",
                tickets=[],
            )
            for a in approvers:
                g = await service.approve(r.grant.id, user=a)
            assert g.status is Status.ACTIVE
            await service.revoke(g.id, user="U0ALICE", reason="done")
    finally:
        logging.getLogger().handlers = [
            h for h in logging.getLogger().handlers if not getattr(h, "_grantbot", False)
        ]

    assert len(secrets_seen) >= 3 and all(len(s) >= 16 for s in secrets_seen)
    audit_text = "\n".join([e.body async for e in store.audit.entries()])
    redis_text = await _every_value_in_redis(redis_client, "{" + store.keys.prefix + "}*")
    log_text = sink.getvalue() + "\n".join(r.getMessage() for r in caplog.records)
    assert "issued" in sink.getvalue()  # the careless line was logged, redacted
    for secret in secrets_seen:
        assert secret not in audit_text
        assert secret not in redis_text
        assert secret not in sink.getvalue()
        assert secret not in log_text


async def test_cli_revoke_all_ends_every_grant_of_a_user(
    service: GrantService, store: GrantStore, cache_server: RedisServer, redis_url: str
) -> None:
    """`grantbot revoke-all --user U --reason R` (a real process) ends live grants and pending
    requests of that user, is audited with the operator, and the credential stops working."""
    live = await service.request_access(
        user="U0ALICE", resource="cache", role="read", duration_s=600, reason="a", tickets=[]
    )
    active = await service.approve(live.grant.id, user="U0BOB")
    pending = await service.request_access(
        user="U0ALICE", resource="cache", role="read", duration_s=600, reason="b", tickets=[]
    )
    other = await service.request_access(
        user="U0CAROL", resource="cache", role="read", duration_s=600, reason="c", tickets=[]
    )
    provider, ctx = service.resolve(active)
    cred = await provider.issue(ctx, now=active.activated_at or 0.0)

    env = {
        "REDIS_URL": redis_url,
        "GRANTBOT_REDIS_PREFIX": store.keys.prefix,
        "GRANTBOT_POLICY": str(service.policy.path),
        "FLOW_CACHE_URL": cache_server.url,
        "FLOW_PG_DSN": PG_ADMIN_DSN,
        "FLOW_MYSQL_DSN": MYSQL_ADMIN_DSN,
    }
    done = grantbot(
        "revoke-all", "--user", "U0ALICE", "--reason", "offboarding", "--operator", "ops", env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [
        "2 grant(s) of U0ALICE ended; 0 still need attention",
        SLACK_WHEN_A_BOT_STARTS.format(it="them"),
    ]
    assert (await store.get(active.id)).status is Status.REVOKED
    assert (await store.get(pending.grant.id)).status is Status.CANCELLED
    assert (await store.get(other.grant.id)).status is Status.PENDING
    with pytest.raises(AuthenticationError):
        await redis_login(cred, cache_server.url)
    last = [e.data async for e in store.audit.entries()][-2:]
    assert {e["actor"] for e in last} == {"cli:ops"}
    assert {e["reason"] for e in last} == {"offboarding"}
    assert os.environ.get("FLOW_CACHE_URL") == cache_server.url


async def test_cli_grants_revoke_one(
    service: GrantService, store: GrantStore, cache_server: RedisServer, redis_url: str
) -> None:
    """`grantbot grants revoke ID` ends that grant, audited; a second run is idempotent: it
    reports the grant as revoked and writes nothing."""
    r = await service.request_access(
        user="U0ALICE", resource="cache", role="read", duration_s=600, reason="a", tickets=[]
    )
    g = await service.approve(r.grant.id, user="U0BOB")
    env = {
        "REDIS_URL": redis_url,
        "GRANTBOT_REDIS_PREFIX": store.keys.prefix,
        "GRANTBOT_POLICY": str(service.policy.path),
        "FLOW_CACHE_URL": cache_server.url,
        "FLOW_PG_DSN": PG_ADMIN_DSN,
        "FLOW_MYSQL_DSN": MYSQL_ADMIN_DSN,
    }
    done = grantbot(
        "grants", "revoke", g.id, "--reason", "incident over", "--operator", "ops", env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{g.id}: REVOKED",
        SLACK_WHEN_A_BOT_STARTS.format(it="it"),  # no `grantbot serve` runs here
    ]
    entries = (await store.audit.verify()).entries
    again = grantbot("grants", "revoke", g.id, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"{g.id}: REVOKED"
    assert (await store.audit.verify()).entries == entries
    revoked = [e.data async for e in store.audit.entries()][-1]
    assert (
        revoked["event"] == "REVOKE"
        and revoked["actor"] == "cli:ops"
        and revoked["reason"] == "incident over"
    )


async def test_a_revoke_landing_while_an_extension_is_applied_leaves_no_access(
    service: GrantService, cache_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The extension re-issues the credential (new expiry at the target) before storing
    EXTEND; a revoke that lands in between wins: EXTEND is not stored, the re-issued ACL
    user is taken back, the grant is REVOKED and the extension record says it was not
    applied. No login is left at the target behind an ended grant."""
    result = await service.request_access(
        user="U0ALICE",
        resource="cache",
        role=None,
        duration_s=600,
        reason="debugging INC-8",
        tickets=["INC-8"],
        origin=Origin(surface="command"),
    )
    grant = await service.approve(result.grant.id, user="U0BOB")
    assert grant.status is Status.ACTIVE

    issue_again = service.reissuer.issue_again

    async def issue_inside_a_revoke(g: Grant, *, expires_at: float) -> Any:
        # The revoke's two steps straddle the re-issue: access taken away at the target
        # first, the re-issue creates the login again, then the revoke is stored.
        provider, ctx = service.resolve(g)
        await provider.revoke(ctx)
        issued = await issue_again(g, expires_at=expires_at)
        await service.store.transition(
            g.id,
            Event.REVOKE,
            actor=Actor(kind=ActorKind.REQUESTER, id="U0ALICE"),
            now=time.time(),
            policy_version=service.policy.version,
            reason="done after all",
        )
        return issued

    monkeypatch.setattr(service.reissuer, "issue_again", issue_inside_a_revoke)
    ext = await service.request_extension(
        grant.id, user="U0ALICE", duration_s=600, reason="more time INC-8", tickets=["INC-8"]
    )
    closed = await service.approve(ext.grant.id, user="U0BOB")

    assert (await service.store.get(grant.id)).status is Status.REVOKED
    assert closed.end_reason is not None and closed.end_reason.startswith("not applied")
    admin = aioredis.Redis.from_url(cache_server.url, decode_responses=True)
    try:
        users = await admin.acl_users()
    finally:
        await admin.aclose()
    assert grant.credential_ref not in users


async def test_an_approved_grant_whose_issuing_never_finished_is_taken_back(
    service: GrantService, store: GrantStore, cache_server: RedisServer
) -> None:
    """A login was created at the target but ACTIVE was never stored (the process died in
    between): after the grace period the sweep deletes the login and marks the grant FAILED,
    audited; one still within the grace period is left to its issuer. revoke-all handles
    such a grant too instead of stopping at it."""
    long_ago = time.time() - 3600
    stuck = await store.create(
        make_grant(
            requester="U0ALICE",
            resource="cache",
            provider="redis_acl",
            status=Status.APPROVED,
            approved_at=long_ago,
            created_at=long_ago,
            updated_at=long_ago,
        ),
        actor=Actor.system(),
        policy_version=POLICY_V,
    )
    fresh = await store.create(
        make_grant(
            requester="U0ALICE",
            resource="cache",
            provider="redis_acl",
            status=Status.APPROVED,
            approved_at=time.time(),
            updated_at=time.time(),
        ),
        actor=Actor.system(),
        policy_version=POLICY_V,
    )
    for g in (stuck, fresh):
        provider, ctx = service.resolve(g.model_copy(update={"expires_at": time.time() + 600}))
        await provider.issue(ctx, now=time.time())

    [closed] = await service.fail_stuck_approved()
    assert closed.id == stuck.id and closed.status is Status.FAILED
    assert "taken back" in (closed.last_error or "")
    admin = aioredis.Redis.from_url(cache_server.url, decode_responses=True)
    try:
        users = await admin.acl_users()
        assert login_name(stuck.id) not in users
        assert login_name(fresh.id) in users
        [ended] = await service.revoke_all(user="U0ALICE", operator="ops", reason="left")
        assert ended.id == fresh.id and ended.status is Status.FAILED
        assert login_name(fresh.id) not in await admin.acl_users()
    finally:
        await admin.aclose()
    await store.audit.verify()
