"""Which escalation tiers of a pending request have been asked, shared by every replica.

The service's sweep finds requests past a tier's ``after``. Asking a tier is claimed in two
steps so that each tier is asked once however many replicas sweep, and is still asked if the
replica that claimed it dies before posting: :meth:`EscalationLedger.claim` marks the tier
``asking`` (a short lease); :meth:`EscalationLedger.done` marks it asked once its messages are
out. A lease that lapsed without ``done`` may be claimed again by the next sweep. The key is
:meth:`bot.store.keys.Keys.escalations`.
"""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

from bot.store.connection import as_awaitable, unavailable_as_store_error
from bot.store.keys import Keys
from bot.store.scripts import register

#: Kept well past any request_timeout; the hash is useless once the request is decided.
ESCALATION_TTL_S: Final = 7 * 86_400
#: How long a claimed tier waits for its claimer's ``done`` before another sweep may ask it.
ASKING_LEASE_S: Final = 60.0
#: How a tier being asked is marked: ``asking:<when>`` (written by lua/escalation_claim.lua).
_ASKING: Final = "asking:"


class EscalationLedger:
    """Claims (request, tier) pairs. Raises StoreUnavailable when Redis is unreachable."""

    def __init__(
        self, redis: aioredis.Redis, *, keys: Keys, lease_s: float = ASKING_LEASE_S
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.lease_s = lease_s
        self._claim = register(redis, "escalation_claim.lua")

    async def claim(self, grant_id: str, *, tier: int, now: float) -> bool:
        """True for the one caller that may ask ``tier`` of ``grant_id`` now: nobody has, and
        nobody is asking (or whoever claimed it did not report :meth:`done` within the lease)."""
        async with unavailable_as_store_error():
            claimed = await self._claim(
                keys=[self.keys.escalations(grant_id)],
                args=[str(tier), repr(now), repr(self.lease_s), ESCALATION_TTL_S],
            )
        return bool(claimed)

    async def done(self, grant_id: str, *, tier: int, now: float) -> None:
        """``tier`` of ``grant_id`` was asked (its messages are out): never ask it again."""
        async with unavailable_as_store_error():
            await as_awaitable(
                self.redis.hset(self.keys.escalations(grant_id), str(tier), repr(now))
            )

    async def asked(self, grant_id: str) -> dict[int, float]:
        """Tiers asked so far and when (those still being asked are left out)."""
        async with unavailable_as_store_error():
            raw: dict[str, str] = await as_awaitable(
                self.redis.hgetall(self.keys.escalations(grant_id))
            )
        return {int(k): float(v) for k, v in raw.items() if not v.startswith(_ASKING)}
