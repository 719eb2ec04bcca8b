"""Which escalation tiers of a pending request have been asked, shared by every replica.

The service's sweep finds requests past a tier's ``after``; the first replica to claim the
tier (``HSETNX``) posts to its approvers and audits it, so each tier is asked once however
many replicas sweep. The key lives under the store's ``{prefix}`` hash tag, like every key
in :mod:`bot.store.keys`.
"""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

from bot.store.connection import aw, unavailable_as_store_error
from bot.store.keys import Keys

#: Kept well past any request_timeout; the hash is useless once the request is decided.
ESCALATION_TTL_S: Final = 7 * 86_400


def escalation_key(keys: Keys, grant_id: str) -> str:
    """Hash: tier number (1-based) -> epoch seconds it was asked, for one request."""
    return "{" + keys.prefix + "}" + f":escalation:{grant_id}"


class EscalationLedger:
    """Claims (request, tier) pairs. Raises StoreUnavailable when Redis is unreachable."""

    def __init__(self, redis: aioredis.Redis, *, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def claim(self, grant_id: str, *, tier: int, now: float) -> bool:
        """True for the one caller that first claims ``tier`` of ``grant_id``."""
        key = escalation_key(self.keys, grant_id)
        async with unavailable_as_store_error(), self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, str(tier), repr(now))
            pipe.expire(key, ESCALATION_TTL_S)
            claimed, _ = await pipe.execute()
        return bool(claimed)

    async def asked(self, grant_id: str) -> dict[int, float]:
        """Tiers asked so far and when."""
        async with unavailable_as_store_error():
            raw: dict[str, str] = await aw(self.redis.hgetall(escalation_key(self.keys, grant_id)))
        return {int(k): float(v) for k, v in raw.items()}
