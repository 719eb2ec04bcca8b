"""The Slack messages shown about each grant, so every copy can be updated later.

One hash per grant (``keys.slack_messages``): ``"<channel> <ts>"`` -> kind (the kinds are
the notifier's: an approver's copy, the credential DM...). Each write renews the hash's TTL,
which outlives any grant, so the refs of old grants go by themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import redis.asyncio as aioredis

from bot.ports import MessageRef
from bot.store.connection import as_awaitable, translate_errors
from bot.store.keys import Keys

#: How long message refs are kept after their last change: longer than any grant lives.
REFS_TTL_S: Final = 30 * 86_400


def _field(ref: MessageRef) -> str:
    channel, ts = ref
    return f"{channel} {ts}"


class MessageRefs:
    """Message refs (channel, ts) -> kind, per grant. Redis unreachable: StoreUnavailable."""

    def __init__(self, redis: aioredis.Redis, *, keys: Keys, ttl_s: int = REFS_TTL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    @translate_errors
    async def read(self, grant_id: str) -> dict[MessageRef, str]:
        """Every remembered message of ``grant_id`` -> its kind."""
        fields: dict[str, str] = await as_awaitable(
            self.redis.hgetall(self.keys.slack_messages(grant_id))
        )
        refs: dict[MessageRef, str] = {}
        for field, kind in fields.items():
            channel, _, ts = field.partition(" ")
            refs[(channel, ts)] = kind
        return refs

    @translate_errors
    async def remember(self, grant_id: str, refs: Mapping[MessageRef, str]) -> None:
        """Store ``refs`` of ``grant_id`` and renew its TTL, in one transaction."""
        if not refs:
            return
        key = self.keys.slack_messages(grant_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={_field(ref): kind for ref, kind in refs.items()})
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    @translate_errors
    async def forget(self, grant_id: str, ref: MessageRef) -> None:
        """Forget one message of ``grant_id``."""
        await as_awaitable(self.redis.hdel(self.keys.slack_messages(grant_id), _field(ref)))
