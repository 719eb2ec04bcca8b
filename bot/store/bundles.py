"""Bundle requests (issue 13): which grants are the items of one bundle request, whether it
is still being filed, and its credential DM claimed once across replicas.

A bundle's items are ordinary grants (each with ``Grant.bundle`` naming the bundle); this
record only ties them together for the one approval message and the one credential DM. It
expires by itself after every item can have ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.store.connection import as_awaitable, translate_errors
from bot.store.keys import Keys


@dataclass(frozen=True, slots=True)
class BundleRecord:
    bundle_id: str
    name: str
    requester: str
    item_ids: tuple[str, ...]
    filing: bool


class Bundles:
    """Bundle records. Redis unreachable: StoreUnavailable."""

    def __init__(self, redis: aioredis.Redis, *, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    @translate_errors
    async def start(self, bundle_id: str, *, name: str, requester: str, ttl_s: int) -> None:
        """A new bundle request, being filed (its items follow with :meth:`add_item`)."""
        key = self.keys.bundle(bundle_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"name": name, "requester": requester, "filing": "1"})
            pipe.expire(key, ttl_s)
            pipe.expire(self.keys.bundle_items(bundle_id), ttl_s)
            await pipe.execute()

    @translate_errors
    async def add_item(self, bundle_id: str, grant_id: str, *, ttl_s: int) -> None:
        items = self.keys.bundle_items(bundle_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(items, grant_id)
            pipe.expire(items, ttl_s)
            await pipe.execute()

    @translate_errors
    async def finish(self, bundle_id: str) -> None:
        """Every item is filed."""
        await as_awaitable(self.redis.hset(self.keys.bundle(bundle_id), "filing", "0"))

    @translate_errors
    async def read(self, bundle_id: str) -> BundleRecord | None:
        """The bundle, or None when there is none (or it expired)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.bundle(bundle_id))
            pipe.lrange(self.keys.bundle_items(bundle_id), 0, -1)
            meta, items = await pipe.execute()
        if not meta:
            return None
        return BundleRecord(
            bundle_id=bundle_id,
            name=str(meta.get("name", "")),
            requester=str(meta.get("requester", "")),
            item_ids=tuple(str(i) for i in items),
            filing=meta.get("filing") == "1",
        )

    @translate_errors
    async def claim_delivery(self, bundle_id: str) -> bool:
        """True for the one caller that is to send the bundle's credential DM."""
        return bool(
            await as_awaitable(self.redis.hsetnx(self.keys.bundle(bundle_id), "delivered", "1"))
        )
