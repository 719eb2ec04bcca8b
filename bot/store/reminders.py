"""Which reminders of a grant were sent, shared by every replica (issue 13).

A grant's reminder is keyed by the expiry it warns of, so an extended grant is reminded again
of its new end and never twice of one. Sending is claimed in two steps, as escalation tiers
are (the same script, ``lua/escalation_claim.lua``: claim a hash field once, under a lapsing
lease): :meth:`ReminderLedger.claim` marks it ``asking`` (a short lease), :meth:`done` marks
it sent once the messages are out. A replica that dies between the two leaves a lease that
lapses; the lifecycle sweep schedules the reminder again and the next claim sends it. The key
is :meth:`bot.store.keys.Keys.reminders`.
"""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

from bot.store.connection import as_awaitable, unavailable_as_store_error
from bot.store.keys import Keys
from bot.store.scripts import register

#: Kept past any grant's life; useless once it ended.
REMINDER_TTL_S: Final = 8 * 86_400
#: How long a claimed reminder waits for its claimer's ``done`` before it may be claimed again.
SENDING_LEASE_S: Final = 60.0
_ASKING: Final = "asking:"


def _field(expires_at: float) -> str:
    return repr(float(expires_at))


class ReminderLedger:
    """Claims (grant, expiry) reminders. Raises StoreUnavailable when Redis is unreachable."""

    def __init__(
        self, redis: aioredis.Redis, *, keys: Keys, lease_s: float = SENDING_LEASE_S
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.lease_s = lease_s
        self._claim = register(redis, "escalation_claim.lua")

    async def claim(self, grant_id: str, *, expires_at: float, now: float) -> bool:
        """True for the one caller that may send the reminder of ``grant_id`` ending at
        ``expires_at`` now: nobody has, and nobody is (or their lease lapsed)."""
        async with unavailable_as_store_error():
            claimed = await self._claim(
                keys=[self.keys.reminders(grant_id)],
                args=[_field(expires_at), repr(now), repr(self.lease_s), REMINDER_TTL_S],
            )
        return bool(claimed)

    async def done(self, grant_id: str, *, expires_at: float, now: float) -> None:
        """The reminder of ``grant_id`` ending at ``expires_at`` is out: never send it again."""
        async with unavailable_as_store_error():
            await as_awaitable(
                self.redis.hset(self.keys.reminders(grant_id), _field(expires_at), repr(now))
            )

    async def sent(self, grant_id: str, *, expires_at: float) -> bool:
        """True once the reminder of ``grant_id`` ending at ``expires_at`` was sent."""
        async with unavailable_as_store_error():
            raw = await as_awaitable(
                self.redis.hget(self.keys.reminders(grant_id), _field(expires_at))
            )
        return raw is not None and not str(raw).startswith(_ASKING)
