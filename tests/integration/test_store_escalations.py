"""Each escalation tier is asked once across replicas, and still asked if its claimer died."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot.store.escalations import EscalationLedger
from bot.store.grants import GrantStore

T0 = 1_800_000_000.0


async def test_one_of_many_concurrent_claims_wins(
    store: GrantStore, redis_client: aioredis.Redis
) -> None:
    """Ten replicas sweeping at once: exactly one asks tier 1; tier 2 is separate."""
    ledgers = [EscalationLedger(redis_client, keys=store.keys) for _ in range(10)]
    wins = await asyncio.gather(*(ledger.claim("g-aaaaaa", tier=1, now=T0) for ledger in ledgers))
    assert sum(wins) == 1
    assert await ledgers[0].claim("g-aaaaaa", tier=2, now=T0)


async def test_a_claim_whose_claimer_died_is_asked_again_after_the_lease(
    store: GrantStore, redis_client: aioredis.Redis
) -> None:
    """Claimed but never marked done (the replica died before posting): nobody else may ask
    during the lease; after it, the next sweep asks. Once done, never again."""
    ledger = EscalationLedger(redis_client, keys=store.keys, lease_s=60)
    assert await ledger.claim("g-bbbbbb", tier=1, now=T0)
    assert not await ledger.claim("g-bbbbbb", tier=1, now=T0 + 59)
    assert await ledger.asked("g-bbbbbb") == {}
    assert await ledger.claim("g-bbbbbb", tier=1, now=T0 + 61)
    await ledger.done("g-bbbbbb", tier=1, now=T0 + 62)
    assert await ledger.asked("g-bbbbbb") == {1: T0 + 62}
    assert not await ledger.claim("g-bbbbbb", tier=1, now=T0 + 10_000)
    assert await redis_client.ttl(store.keys.escalations("g-bbbbbb")) > 0
