"""grantbot on a Redis Cluster: every key in one slot, so one node serves all of it.

Every key grantbot writes carries the hash tag ``{prefix}`` (:mod:`bot.store.keys`), so they
all live in one slot, on one master. The store therefore talks to that master directly, the
way it talks to a single server: Lua scripts, ``MULTI`` pipelines, ``INFO`` and ``WAIT``
(which must reach the master holding the writes) all work unchanged, where redis-py's
asyncio cluster client refuses transactions and sends keyless commands to any node.

What is cluster-specific is finding that master and following it: each new connection asks
the nodes it knows (``CLUSTER SLOTS``) which master owns the slot (redis-py's own
``key_slot`` computes it), and a ``MOVED``/``CLUSTERDOWN`` answer (the slot moved, or a
failover is under way) closes the connection and surfaces as a ConnectionError, which the
client's retry (:mod:`bot.store.connection`) sends again on a fresh connection to the new
owner. This is the Sentinel pool's pattern, with the cluster as the oracle.
"""

from __future__ import annotations

import weakref
from typing import Any, Final

import redis as redis_sync
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection
from redis.connection import Connection as SyncConnection
from redis.connection import SSLConnection as SyncSSLConnection
from redis.crc import key_slot

from bot.store.endpoints import Endpoint

#: Answers that mean "not this node any more": the connection is dropped and re-resolved.
_MOVED: Final = ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")
_ASK_TIMEOUT_S: Final = 1.0


def slot_of(tag_key: str) -> int:
    """The cluster slot of a key (``{prefix}`` decides it)."""
    return int(key_slot(tag_key.encode()))


def _owner_in(reply: Any, slot: int) -> tuple[str, int] | None:
    """The master of ``slot`` in a ``CLUSTER SLOTS`` reply."""
    for entry in reply or []:
        start, end, master = int(entry[0]), int(entry[1]), entry[2]
        if start <= slot <= end:
            host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
            return host, int(master[1])
    return None


def _moved(error: redis_errors.ResponseError) -> bool:
    return str(error).startswith(_MOVED)


class _Owner:
    """Who owns the slot, asked of the seed nodes (and the last owner found)."""

    def __init__(self, endpoint: Endpoint, *, slot: int) -> None:
        self.seeds = list(endpoint.hosts)
        self.slot = slot
        self.login: dict[str, Any] = {
            "username": endpoint.username,
            "password": endpoint.password,
            "ssl": endpoint.tls,
            **(endpoint.tls_options if endpoint.tls else {}),
        }
        self.last: tuple[str, int] | None = None

    def candidates(self) -> list[tuple[str, int]]:
        return [*([self.last] if self.last else []), *self.seeds]

    def found(self, owner: tuple[str, int] | None) -> tuple[str, int]:
        if owner is None:
            raise redis_errors.ConnectionError(
                f"no cluster node named the master of slot {self.slot}"
            )
        self.last = owner
        return owner


class _AsyncOwnerMixin:
    owner: _Owner

    async def owner_address(self) -> tuple[str, int]:
        for host, port in self.owner.candidates():
            client = aioredis.Redis(
                host=host,
                port=port,
                socket_timeout=_ASK_TIMEOUT_S,
                socket_connect_timeout=_ASK_TIMEOUT_S,
                **self.owner.login,
            )
            try:
                found = _owner_in(await client.execute_command("CLUSTER", "SLOTS"), self.owner.slot)  # type: ignore[no-untyped-call]
            except (redis_errors.RedisError, OSError):
                continue
            finally:
                await client.aclose()
            if found is not None:
                return self.owner.found(found)
        return self.owner.found(None)


class SlotOwnerConnection(AsyncConnection):
    """An asyncio connection to whichever master owns the pool's slot now."""

    def __init__(self, **kwargs: Any) -> None:
        self.slot_pool = kwargs.pop("slot_pool")
        super().__init__(**kwargs)

    async def connect(self) -> None:
        if self.is_connected:
            return
        self.host, self.port = await self.slot_pool.owner_address()
        await super().connect()  # type: ignore[no-untyped-call]

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        """redis-py 7+ reconnects inside a retry through here, not :meth:`connect` (see
        bot.store.connection._FollowingConnection): resolve the owner here too."""
        if not self.is_connected:
            self.host, self.port = await self.slot_pool.owner_address()
        return await super().connect_check_health(*args, **kwargs)  # type: ignore[misc]

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except redis_errors.ResponseError as e:
            if not _moved(e):
                raise
            await self.disconnect()
            raise redis_errors.ConnectionError(f"the cluster moved grantbot's slot: {e}") from e


class SlotOwnerSSLConnection(SlotOwnerConnection, AsyncSSLConnection):
    pass


class SlotOwnerPool(_AsyncOwnerMixin, aioredis.ConnectionPool):
    """A pool of :class:`SlotOwnerConnection` for one slot."""

    def __init__(self, endpoint: Endpoint, *, slot: int, **kwargs: Any) -> None:
        kwargs["connection_class"] = SlotOwnerSSLConnection if endpoint.tls else SlotOwnerConnection
        super().__init__(**kwargs)
        self.owner = _Owner(endpoint, slot=slot)
        self.connection_kwargs["slot_pool"] = weakref.proxy(self)


class SyncSlotOwnerConnection(SyncConnection):
    """The blocking twin of :class:`SlotOwnerConnection` (the scheduler's thread)."""

    def __init__(self, **kwargs: Any) -> None:
        self.slot_pool = kwargs.pop("slot_pool")
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def connect(self) -> None:
        connected: object = getattr(self, "_sock", None)
        if connected is not None:
            return
        self.host, self.port = self.slot_pool.owner_address()
        super().connect()  # type: ignore[no-untyped-call]

    def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        """As the asyncio twin's (redis-py 7+)."""
        connected: object = getattr(self, "_sock", None)
        if connected is None:
            self.host, self.port = self.slot_pool.owner_address()
        return super().connect_check_health(*args, **kwargs)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis_errors.ResponseError as e:
            if not _moved(e):
                raise
            self.disconnect()  # type: ignore[no-untyped-call]
            raise redis_errors.ConnectionError(f"the cluster moved grantbot's slot: {e}") from e


class SyncSlotOwnerSSLConnection(SyncSlotOwnerConnection, SyncSSLConnection):
    pass


class SyncSlotOwnerPool(redis_sync.ConnectionPool):
    """A blocking pool of :class:`SyncSlotOwnerConnection` for one slot."""

    def __init__(self, endpoint: Endpoint, *, slot: int, **kwargs: Any) -> None:
        kwargs["connection_class"] = (
            SyncSlotOwnerSSLConnection if endpoint.tls else SyncSlotOwnerConnection
        )
        super().__init__(**kwargs)
        self.owner = _Owner(endpoint, slot=slot)
        self.connection_kwargs["slot_pool"] = weakref.proxy(self)

    def owner_address(self) -> tuple[str, int]:
        for host, port in self.owner.candidates():
            client = redis_sync.Redis(
                host=host,
                port=port,
                socket_timeout=_ASK_TIMEOUT_S,
                socket_connect_timeout=_ASK_TIMEOUT_S,
                **self.owner.login,
            )
            try:
                found = _owner_in(client.execute_command("CLUSTER", "SLOTS"), self.owner.slot)  # type: ignore[no-untyped-call]
            except (redis_errors.RedisError, OSError):
                continue
            finally:
                client.close()
            if found is not None:
                return self.owner.found(found)
        return self.owner.found(None)


def connect_cluster(
    endpoint: Endpoint, *, slot_key: str, max_connections: int, **options: Any
) -> aioredis.Redis:
    """An asyncio client on the master owning ``slot_key``'s slot (see the module doc)."""
    pool = SlotOwnerPool(
        endpoint,
        slot=slot_of(slot_key),
        max_connections=max_connections,
        username=endpoint.username,
        password=endpoint.password,
        **(endpoint.tls_options if endpoint.tls else {}),
        **options,
    )
    return aioredis.Redis.from_pool(pool)


def connect_cluster_blocking(
    endpoint: Endpoint, *, slot_key: str, **options: Any
) -> redis_sync.Redis:
    """A blocking client on the master owning ``slot_key``'s slot."""
    pool = SyncSlotOwnerPool(
        endpoint,
        slot=slot_of(slot_key),
        username=endpoint.username,
        password=endpoint.password,
        **(endpoint.tls_options if endpoint.tls else {}),
        **options,
    )
    return redis_sync.Redis(connection_pool=pool)


def seeds_answer(endpoint: Endpoint) -> bool:
    """At start: some seed node answers ``CLUSTER SLOTS`` (it is a cluster node)."""
    pool = SyncSlotOwnerPool(endpoint, slot=0)
    try:
        pool.owner_address()
    except redis_errors.ConnectionError:
        return False
    finally:
        pool.disconnect()
    return True
