"""The first time a token is seen: one claim per token (``keys.once``, ``lua/once_claim.lua``:
set with a TTL unless present; the claim carries an id of its own, so a claim sent twice by
redis-py's retry during a failover is still read as the first, never as a repeat that would
drop the delivery unanswered).

Knows nothing of what the tokens are (bot/slack/dedupe.py makes them from Slack deliveries).
When Redis cannot be reached the answer is "first time" (fail open): callers use this to drop
repeats whose work is safe to repeat (every state change is a compare-and-set in the store),
never to decide whether something is allowed.
"""

from __future__ import annotations

import uuid
from typing import Final

import redis.asyncio as aioredis

from bot.log_throttle import Outage
from bot.store.connection import UNAVAILABLE
from bot.store.connection import redis_outage as new_redis_outage
from bot.store.keys import Keys
from bot.store.scripts import register

#: How long a token is remembered: past Slack's last Events API retry (about 5 minutes
#: after the first attempt) and Bolt's 5-minute timestamp window, with margin.
ONCE_TTL_S: Final = 3600


class Dedupe:
    """Claims tokens in Redis; counts the repeats it saw."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        keys: Keys,
        ttl_s: int = ONCE_TTL_S,
        redis_outage: Outage | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s
        self.duplicates = 0
        #: Tells that Redis is down once per outage, not once per token.
        self.redis_outage = redis_outage or new_redis_outage()
        self._claim = register(redis, "once_claim.lua")

    async def first_time(self, token: str) -> bool:
        """True when ``token`` had not been seen (and now is); True as well if Redis is down."""
        try:
            claimed = await self._claim(
                keys=[self.keys.once(token)], args=[uuid.uuid4().hex, self.ttl_s]
            )
        except UNAVAILABLE as e:
            self.redis_outage.failed(e)  # and the token counts as new: see the docstring
            return True
        self.redis_outage.succeeded()
        if not claimed:
            self.duplicates += 1
        return bool(claimed)
