"""The parts ``grantbot serve`` builds (bot.wiring.assemble) work together: the reconciler of
serve's scheduler looks for access at the policy's targets that no live grant accounts for,
through the very provider objects the service issues with, and takes it away."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.devtools.redis_server import RedisServer
from bot.domain.model import Actor, Status
from bot.providers.base import GrantContext
from bot.providers.naming import login_name
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from tests.factories import POLICY_V, make_grant
from tests.integration.slack_harness import SlackHarness, running_bot
from tests.integration.support import wait_for

ORPHAN = "g-orphan22"  # access at the target, no grant anywhere


@pytest.fixture
async def cache_admin(cache_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(cache_server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def test_serve_removes_an_acl_user_no_grant_accounts_for(
    redis_url: str,
    keys: Keys,
    store: GrantStore,
    cache_server: RedisServer,
    cache_admin: aioredis.Redis,
) -> None:
    """An ACL user grantbot made for a grant that does not exist is deleted by serve's first
    reconcile pass (the leader sweeps on taking the lease); the ACL user of a live grant is
    left alone, and the removal is audited."""
    now = time.time()
    live = await store.create(
        make_grant(
            resource="cache",
            provider="redis_acl",
            status=Status.ACTIVE,
            activated_at=now,
            expires_at=now + 3600,
        ),
        actor=Actor.system(),
        policy_version=POLICY_V,
    )
    for grant_id in (ORPHAN, live.id):
        login = login_name(grant_id)
        await cache_admin.acl_setuser(login, enabled=True, passwords=["+left-behind"])

    env = {"GRANTBOT_TEST_CACHE_URL": cache_server.url}
    async with running_bot(redis_url=redis_url, prefix=keys.prefix, environ=env) as slack:
        await wait_for(
            lambda: slack.bot.scheduler.last_report is not None,
            what="serve's first reconcile pass",
        )
        report = slack.bot.scheduler.last_report
        assert report is not None and report.orphans_revoked == [f"cache/{ORPHAN}"]

    users = await cache_admin.acl_users()
    assert login_name(ORPHAN) not in users
    assert login_name(live.id) in users
    reconciled = [e.data async for e in store.audit.entries() if e.data["event"] == "RECONCILE"]
    assert [e["details"]["orphans_revoked_ids"] for e in reconciled] == [[f"cache/{ORPHAN}"]]
    await cache_admin.acl_deluser(login_name(live.id))


async def test_a_reconcile_pass_takes_back_noop_access_without_a_grant(
    slack: SlackHarness,
) -> None:
    """Access the service's own noop provider holds for a grant id the store does not know
    is gone after one pass of serve's reconciler; the access of a live grant it issued (an
    auto-approved request) stays."""
    provider = slack.bot.service.provider_for("lab")
    await slack.command("U0ALICE", "request lab play 20m reading logs")
    grant = await slack.only_grant_of("U0ALICE")
    assert grant.status is Status.ACTIVE
    now = time.time()
    orphan = GrantContext(
        grant_id=ORPHAN, user="U0ALICE", resource="lab", role="play", expires_at=now + 600
    )
    await provider.issue(orphan, now=now)
    assert ORPHAN in await provider.live_grant_ids()

    report = await slack.bot.scheduler.reconcile()

    assert report.orphans_revoked == [f"lab/{ORPHAN}"]
    assert await provider.live_grant_ids() == {grant.id}
