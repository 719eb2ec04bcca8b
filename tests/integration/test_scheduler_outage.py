"""A Redis outage: nothing is lost, and revocations catch up when Redis returns."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.devtools.redis_server import RedisServer
from bot.devtools.scheduler_worker import RecordingListener, StaticResolver
from bot.domain.model import Actor, Status
from bot.providers.noop import NoopProvider
from bot.revocation.revoker import Revoker
from bot.scheduling.scheduler import RevocationScheduler
from bot.store.connection import connect
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from tests.factories import POLICY_V, make_grant
from tests.integration.support import wait_for

LEASE_TTL_S = 1.0
GRANTS = 50


@pytest.mark.slow
async def test_grants_expiring_during_an_outage_are_revoked_when_redis_returns(
    tmp_path: Path,
) -> None:
    """Redis (appendonly) is stopped before 50 grants expire and restarted on the same data
    dir after they all have: the leader steps down while it cannot renew its lease, takes it
    back, and every grant is then revoked, once, none before its expiry."""
    server = RedisServer(data_dir=tmp_path / "redis", appendonly=True).start()
    client = connect(server.url, timeout_s=1.0)
    store = GrantStore(client, keys=Keys(prefix="outage"))
    revoker = Revoker(
        store,
        resolver=StaticResolver(default=NoopProvider()),
        listener=RecordingListener(),
        policy_version=lambda: POLICY_V,
    )
    scheduler = RevocationScheduler(
        store, revoker, redis=server.url, replica_id="outage", lease_ttl_s=LEASE_TTL_S
    )
    try:
        t0 = time.time()
        grants = []
        for i in range(GRANTS):
            expires_at = t0 + 2.0 + i / GRANTS
            g = make_grant(
                status=Status.ACTIVE,
                created_at=t0,
                updated_at=t0,
                activated_at=t0,
                expires_at=expires_at,
            )
            grants.append(await store.create(g, actor=Actor.system(), policy_version=POLICY_V))
        await scheduler.start()
        await scheduler.schedule_many((g.id, g.expires_at or 0) for g in grants)
        await wait_for(lambda: scheduler.is_leader, what="the scheduler to lead")

        server.stop(keep_data=True)  # SIGTERM: AOF flushed, as in a maintenance restart
        # Could not renew: it stops running jobs (before its lease could lapse).
        await wait_for(lambda: not scheduler.is_leader, what="the scheduler to step down")
        # The outage lasts until every grant's expiry has passed (the scenario's clock).
        await asyncio.sleep(max(0.0, t0 + 4.0 - time.time()))
        assert not scheduler.is_leader
        server.start()
        back_at = time.time()

        async def all_expired() -> bool:
            stored = await store.get_many(g.id for g in grants)
            return all(g.status is Status.EXPIRED for g in stored)

        caught_up_s = await wait_for(all_expired, what="every grant to expire", timeout_s=20)

        stored = await store.get_many(g.id for g in grants)
        assert [g.status for g in stored] == [Status.EXPIRED] * GRANTS
        assert all((g.ended_at or 0) >= back_at > (g.expires_at or 0) for g in stored)
        assert caught_up_s < 10
        expires = [
            e.data["grant_id"] async for e in store.audit.entries() if e.data["event"] == "EXPIRE"
        ]
        assert sorted(expires) == sorted(g.id for g in grants)
        await store.audit.verify()
    finally:
        await scheduler.stop()
        await revoker.aclose()
        await client.aclose()
        server.stop()
