"""What a provider remembers about the things it made at a target that cannot tell them apart.

Most targets carry grantbot's mark themselves (a login named ``gb_<grant>``). AWS does not
always: an Identity Center account assignment has no name or tag, and is shared by every
grant of one person, permission set and account; an STS deny policy outlives the grant it
ended. Such a provider keeps here, under the store's key prefix:

- one **record** per grant (JSON: names, ids, expiry times; never a secret), so ``revoke``
  and ``live_grant_ids`` work from the grant id alone, after a restart too;
- the **holders** of a shared thing (grant ids), so it is removed only when the last one ends;
- the **origin** of a shared thing: made by grantbot, or found there (then never removed);
- a **cleanup** list (grant id -> when), swept by the serve loop, so a leftover at the
  target is removed on time even if the process that made it is gone.

Redis being unreachable is :class:`~bot.errors.StoreUnavailable`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import redis.asyncio as aioredis

from bot.store.connection import as_awaitable, unavailable_as_store_error
from bot.store.keys import Keys

#: Origins of a shared thing (see :meth:`ProviderState.claim_origin`).
MADE_BY_GRANTBOT: Final = "grantbot"
FOUND_THERE: Final = "other"
#: Field of every record naming the resource (policies.yaml) whose provider wrote it.
RESOURCE_FIELD: Final = "resource"


class ProviderState:
    """One provider type's bookkeeping for one resource (records are shared by type, so a
    thing two resources both use, such as one Identity Center assignment, is counted once)."""

    def __init__(self, redis: aioredis.Redis, *, keys: Keys, kind: str, resource: str) -> None:
        self.redis = redis
        self.keys = keys
        self.kind = kind
        self.resource = resource
        self._cleanup = keys.provider_cleanup(kind, resource)

    # -- per-grant records --------------------------------------------------------------

    async def put(self, grant_id: str, record: Mapping[str, Any]) -> None:
        """Store (replace) ``grant_id``'s record."""
        data = json.dumps({**record, RESOURCE_FIELD: self.resource}, sort_keys=True)
        async with unavailable_as_store_error():
            await as_awaitable(
                self.redis.hset(self.keys.provider_records(self.kind), grant_id, data)
            )

    async def get(self, grant_id: str) -> dict[str, Any] | None:
        """``grant_id``'s record, or None."""
        async with unavailable_as_store_error():
            raw = await as_awaitable(
                self.redis.hget(self.keys.provider_records(self.kind), grant_id)
            )
        return _decoded(raw)

    async def records(self) -> dict[str, dict[str, Any]]:
        """Every record this resource's provider wrote, by grant id."""
        async with unavailable_as_store_error():
            raw = await as_awaitable(self.redis.hgetall(self.keys.provider_records(self.kind)))
        found = {gid: _decoded(value) for gid, value in raw.items()}
        return {
            gid: rec
            for gid, rec in found.items()
            if rec is not None and rec.get(RESOURCE_FIELD) == self.resource
        }

    async def forget(self, grant_id: str) -> None:
        """Drop ``grant_id``'s record and any cleanup due for it."""
        async with (
            unavailable_as_store_error(),
            self.redis.pipeline(transaction=True) as pipe,
        ):
            pipe.hdel(self.keys.provider_records(self.kind), grant_id)
            pipe.zrem(self._cleanup, grant_id)
            await pipe.execute()

    # -- shared things -----------------------------------------------------------------

    async def hold(self, thing: str, grant_id: str) -> None:
        """Count ``grant_id`` among the holders of ``thing``."""
        async with unavailable_as_store_error():
            await as_awaitable(
                self.redis.sadd(self.keys.provider_holders(self.kind, thing), grant_id)
            )

    async def release(self, thing: str, grant_id: str) -> int:
        """Stop counting ``grant_id`` as a holder of ``thing``; how many holders remain.

        One transaction: of two grants released at once, exactly one sees 0 remaining.
        Releasing twice is harmless (the second sees whoever holds it now)."""
        key = self.keys.provider_holders(self.kind, thing)
        async with (
            unavailable_as_store_error(),
            self.redis.pipeline(transaction=True) as pipe,
        ):
            pipe.srem(key, grant_id)
            pipe.scard(key)
            _, remaining = await pipe.execute()
        return int(remaining)

    async def holders(self, thing: str) -> set[str]:
        """The grant ids holding ``thing`` now."""
        async with unavailable_as_store_error():
            members = await as_awaitable(
                self.redis.smembers(self.keys.provider_holders(self.kind, thing))
            )
        return {str(m) for m in members}

    async def claim_origin(self, thing: str, *, made_by_grantbot: bool) -> bool:
        """Record who made ``thing`` unless already recorded; True when grantbot made it
        (the first claim wins, so a racing second issuer cannot mistake grantbot's own
        assignment for someone else's)."""
        key = self.keys.provider_origins(self.kind)
        value = MADE_BY_GRANTBOT if made_by_grantbot else FOUND_THERE
        async with unavailable_as_store_error():
            await as_awaitable(self.redis.hsetnx(key, thing, value))
            stored = await as_awaitable(self.redis.hget(key, thing))
        return stored == MADE_BY_GRANTBOT

    async def origin(self, thing: str) -> str | None:
        """:data:`MADE_BY_GRANTBOT`, :data:`FOUND_THERE`, or None when not recorded."""
        async with unavailable_as_store_error():
            value = await as_awaitable(
                self.redis.hget(self.keys.provider_origins(self.kind), thing)
            )
        return None if value is None else str(value)

    async def drop_origin(self, thing: str) -> None:
        """Forget who made ``thing`` (it is gone, or nobody holds it any more)."""
        async with unavailable_as_store_error():
            await as_awaitable(self.redis.hdel(self.keys.provider_origins(self.kind), thing))

    # -- cleanup list --------------------------------------------------------------------

    async def clean_after(self, grant_id: str, *, at: float) -> None:
        """Have ``grant_id``'s leftover removed at ``at`` (epoch seconds); replaces a time
        set before."""
        async with unavailable_as_store_error():
            await as_awaitable(self.redis.zadd(self._cleanup, {grant_id: at}))

    async def cancel_cleanup(self, grant_id: str) -> None:
        async with unavailable_as_store_error():
            await as_awaitable(self.redis.zrem(self._cleanup, grant_id))

    async def due(self, *, now: float, limit: int = 100) -> dict[str, dict[str, Any]]:
        """The records whose cleanup time has come (at most ``limit``, oldest first), by
        grant id. A due id without a record is dropped from the list."""
        cleanup = self._cleanup
        async with unavailable_as_store_error():
            ids = [
                str(i)
                for i in await as_awaitable(
                    self.redis.zrangebyscore(cleanup, "-inf", now, start=0, num=limit)
                )
            ]
            if not ids:
                return {}
            raw = await as_awaitable(self.redis.hmget(self.keys.provider_records(self.kind), ids))
            orphans = [gid for gid, value in zip(ids, raw, strict=True) if value is None]
            if orphans:
                await as_awaitable(self.redis.zrem(cleanup, *orphans))
        found = {gid: _decoded(value) for gid, value in zip(ids, raw, strict=True)}
        return {gid: rec for gid, rec in found.items() if rec is not None}


def _decoded(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None
