"""The per-person, per-day limit of auto_approve rules (``per_user_per_day``), in Redis.

A count per requester, resource, role and UTC day, under the store's key prefix
(``keys.counter``), so every replica shares it. Taking a slot is one atomic script: two
requests racing for the last slot cannot both get it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import redis.asyncio as aioredis

from bot.store.connection import as_awaitable, unavailable_as_store_error
from bot.store.keys import Keys
from bot.store.scripts import register

#: A day's count is kept a little over a day, so "today" in every time zone near UTC is
#: covered and old counts clean themselves up.
QUOTA_TTL_S: Final = 2 * 86_400


def utc_day(now: float) -> str:
    """``now`` (epoch seconds) as the UTC day the limit counts in, e.g. ``2026-03-02``."""
    return datetime.fromtimestamp(now, tz=UTC).date().isoformat()


def quota_key(keys: Keys, *, user: str, resource: str, role: str, now: float) -> str:
    """The counter of ``user``'s auto-approved ``resource``/``role`` grants on ``now``'s day."""
    return keys.counter(f"auto:{user}:{resource}:{role}:{utc_day(now)}")


class AutoApprovalQuota:
    """Counts auto-approvals per person, resource, role and UTC day. Raises
    StoreUnavailable when Redis cannot be reached."""

    def __init__(self, redis: aioredis.Redis, *, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._take = register(redis, "quota_take.lua")  # one step: see the script

    async def used(self, *, user: str, resource: str, role: str, now: float) -> int:
        """Auto-approvals already taken today."""
        key = quota_key(self.keys, user=user, resource=resource, role=role, now=now)
        async with unavailable_as_store_error():
            value = await as_awaitable(self.redis.get(key))
        return int(value or 0)

    async def take(self, *, user: str, resource: str, role: str, now: float, limit: int) -> bool:
        """Take one of today's ``limit`` slots; False (and nothing taken) when none is left."""
        key = quota_key(self.keys, user=user, resource=resource, role=role, now=now)
        async with unavailable_as_store_error():
            taken = await self._take(keys=[key], args=[limit, QUOTA_TTL_S])
        return int(taken) > 0
