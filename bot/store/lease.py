"""A lease key in Redis: whoever holds it does a job no two replicas may do at once (the
revocation scheduler). Taken only where nobody else holds it (``lua/lease_take.lua``: a take
sent twice by redis-py's retry still reads as taken); renewed and released only by the token
that holds it (``lua/lease_renew.lua``, ``lua/lease_release.lua``). How long a holder may trust
its lease is :mod:`bot.scheduling.lease`'s to judge. Redis being unreachable is
:class:`~bot.errors.StoreUnavailable`."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.store.connection import translate_errors
from bot.store.scripts import register


class LeaseKey:
    """One lease key; ``token`` names the holder (``GET`` on the key shows who holds it)."""

    def __init__(self, client: aioredis.Redis, *, key: str) -> None:
        self._r = client
        self.key = key
        self._take = register(client, "lease_take.lua")
        self._renew = register(client, "lease_renew.lua")
        self._release = register(client, "lease_release.lua")

    @translate_errors
    async def take(self, token: str, *, ttl_ms: int) -> bool:
        """Hold the lease for ``ttl_ms`` unless someone does; True when now held."""
        return bool(await self._take(keys=[self.key], args=[token, ttl_ms]))

    @translate_errors
    async def renew(self, token: str, *, ttl_ms: int) -> bool:
        """Hold it ``ttl_ms`` longer if ``token`` still holds it; False otherwise."""
        return bool(await self._renew(keys=[self.key], args=[token, ttl_ms]))

    @translate_errors
    async def release(self, token: str) -> None:
        """Let it go, if ``token`` holds it."""
        await self._release(keys=[self.key], args=[token])

    @translate_errors
    async def holder(self) -> str | None:
        """The token of whoever holds the lease now, or None."""
        value = await self._r.get(self.key)
        return None if value is None else str(value)
