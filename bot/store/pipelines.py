"""What the HTTP API for machine clients keeps in grantbot's Redis: each issued credential
sealed to its request's public key, and per-client call counts for the rate limit.

The sealed bytes are opaque here: only the holder of the private key can open them, so a
reader of Redis learns nothing of the credential (bot.api.sealing makes and checks them).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis

from bot.store.connection import as_awaitable, translate_errors
from bot.store.keys import Keys

#: A sealed credential outlives its grant's expiry by this much, then goes by itself.
SEALED_GRACE_S: Final = 300


class SealedCredentials:
    """Sealed credentials by grant id. Redis unreachable: StoreUnavailable."""

    def __init__(self, redis: aioredis.Redis, *, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    @translate_errors
    async def put(self, grant_id: str, sealed: bytes, *, expires_at: float, now: float) -> None:
        """Keep ``sealed`` for ``grant_id`` until shortly after ``expires_at`` (replacing an
        earlier one: a re-issue seals the new credential)."""
        ttl_s = max(1, math.ceil(expires_at - now) + SEALED_GRACE_S)
        # The client decodes replies as text: the sealed bytes are kept as base64.
        text = base64.b64encode(sealed).decode("ascii")
        await as_awaitable(self.redis.set(self.keys.sealed_credential(grant_id), text, ex=ttl_s))

    @translate_errors
    async def get(self, grant_id: str) -> bytes | None:
        """The sealed credential of ``grant_id``, or None when there is none (not issued
        yet, given back, or expired)."""
        value = await as_awaitable(self.redis.get(self.keys.sealed_credential(grant_id)))
        return None if value is None else base64.b64decode(value)

    @translate_errors
    async def delete(self, grant_id: str) -> None:
        await as_awaitable(self.redis.delete(self.keys.sealed_credential(grant_id)))


@dataclass(frozen=True, slots=True)
class RateVerdict:
    """One call's verdict: allowed, or refused with the seconds until the window turns."""

    allowed: bool
    retry_after_s: int = 0


class ApiRateLimit:
    """A fixed-window call limit per client, shared by every replica (one counter per client
    and window, INCR and EXPIRE in one transaction)."""

    def __init__(
        self, redis: aioredis.Redis, *, keys: Keys, limit: int, window_s: int = 60
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.limit = limit
        self.window_s = window_s

    @translate_errors
    async def take(self, client: str, *, now: float) -> RateVerdict:
        """Count one call of ``client`` at ``now``; refused once the window's limit is spent."""
        window = int(now // self.window_s)
        key = self.keys.api_calls(client, window)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window_s * 2)
            count, _ = await pipe.execute()
        if int(count) <= self.limit:
            return RateVerdict(allowed=True)
        retry = max(1, math.ceil((window + 1) * self.window_s - now))
        return RateVerdict(allowed=False, retry_after_s=retry)
