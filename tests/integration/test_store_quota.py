"""The per-day auto-approval limit in Redis: atomic under concurrency, per user, resource,
role and UTC day, under the store's key prefix."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot.store.keys import Keys
from bot.store.quota import QUOTA_TTL_S, AutoApprovalQuota, quota_key

NOON = 1_772_452_800.0  # 2026-03-02 12:00 UTC


async def test_concurrent_takes_never_exceed_the_limit(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """Twenty requests racing for three slots: exactly three get one; the count stays at
    the limit and expires on its own."""
    quota = AutoApprovalQuota(redis_client, keys=keys)
    who = {"user": "U0CAROL", "resource": "orders-db", "role": "read"}
    taken = await asyncio.gather(*(quota.take(**who, now=NOON, limit=3) for _ in range(20)))
    assert sum(taken) == 3
    assert await quota.used(**who, now=NOON) == 3
    key = quota_key(keys, **who, now=NOON)
    assert key.startswith("{" + keys.prefix + "}:") and key.endswith(":2026-03-02")
    assert 0 < await redis_client.ttl(key) <= QUOTA_TTL_S


async def test_the_count_is_per_day_and_per_role(redis_client: aioredis.Redis, keys: Keys) -> None:
    """Another UTC day, or another role, starts from zero."""
    quota = AutoApprovalQuota(redis_client, keys=keys)
    assert await quota.take(user="U0A", resource="db", role="read", now=NOON, limit=1)
    assert not await quota.take(user="U0A", resource="db", role="read", now=NOON, limit=1)
    assert await quota.take(user="U0A", resource="db", role="write", now=NOON, limit=1)
    assert await quota.take(user="U0A", resource="db", role="read", now=NOON + 86_400, limit=1)
