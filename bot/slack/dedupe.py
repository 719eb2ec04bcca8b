"""Slack's retried deliveries are processed once.

Slack retries an Events API delivery (``X-Slack-Retry-Num``, same ``event_id``) when it did
not see a 200 in time; a network can deliver anything twice; an attacker can replay a signed
request within Bolt's 5-minute window. Each delivery is claimed with one Redis
``SET NX EX`` (``keys.once``): events by ``event_id``, everything else (commands, clicks,
submissions, whose bodies carry a unique trigger_id / action_ts) by a SHA-256 of the body.
The claim is made by the work that follows the ack (``SlackDeps.later``), not before it: a
repeated delivery is acknowledged like the first (Slack only needs its 200) and its work is
dropped, and no ack ever waits on Redis.

When Redis cannot be reached the delivery is processed (fail open): every state change is a
compare-and-set in the store, so a double delivery cannot double a decision; it can at most
repeat a reply.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Final

import redis.asyncio as aioredis

from bot.log_throttle import Outage
from bot.store.connection import UNAVAILABLE
from bot.store.connection import redis_outage as new_redis_outage
from bot.store.keys import Keys

log = logging.getLogger(__name__)

#: How long a delivery is remembered: past Slack's last Events API retry (about 5 minutes
#: after the first attempt) and Bolt's 5-minute timestamp window, with margin.
ONCE_TTL_S: Final = 3600


def delivery_token(body: Any, raw_body: str) -> str:
    """``event:<event_id>`` for Events API callbacks, else ``body:<sha256 of the body>``."""
    if isinstance(body, dict):
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and isinstance(event_id, str) and event_id:
            return f"event:{event_id[:128]}"
    raw = raw_body or json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "body:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


class Dedupe:
    """Claims deliveries in Redis; counts the duplicates it saw."""

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
        #: Tells that Redis is down once per outage, not once per delivery.
        self.redis_outage = redis_outage or new_redis_outage()

    async def first_time(self, token: str) -> bool:
        """True when ``token`` had not been seen (and now is); True as well if Redis is down."""
        try:
            claimed = await self.redis.set(self.keys.once(token), "1", nx=True, ex=self.ttl_s)
        except UNAVAILABLE as e:
            self.redis_outage.failed(e)  # and the delivery is processed: see the docstring
            return True
        self.redis_outage.succeeded()
        if not claimed:
            self.duplicates += 1
        return bool(claimed)
