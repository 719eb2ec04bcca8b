"""Connecting to Redis and translating its errors into grantbot's family.

Every client grantbot opens on its own Redis is made here: the asyncio client the store's
parts share (:func:`connect`) and the blocking one the scheduler's thread uses for
APScheduler's job store (:func:`connect_blocking`), for every form of REDIS_URL
(:mod:`bot.store.endpoints`: a server, TLS, Sentinel, Cluster). Both follow a master change
with redis-py's own machinery: a Sentinel connection pool that asks the sentinels where the
master is on every new connection, and a :class:`~redis.retry.Retry` with backoff that sends
a command again on a fresh connection when its connection broke.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import wraps
from typing import Any, Final, ParamSpec, TypeVar, cast

import redis as redis_sync
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelConnection
from redis.asyncio.sentinel import SentinelManagedSSLConnection as AsyncSentinelSSLConnection
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel as SyncSentinel
from redis.sentinel import SentinelConnectionPool as SyncSentinelPool
from redis.sentinel import SentinelManagedConnection as SyncSentinelConnection
from redis.sentinel import SentinelManagedSSLConnection as SyncSentinelSSLConnection

from bot.errors import StoreUnavailable
from bot.log_throttle import DEFAULT_INTERVAL_S, Outage
from bot.store.cluster import connect_cluster, connect_cluster_blocking
from bot.store.endpoints import Endpoint, parse_redis_url

P = ParamSpec("P")
T = TypeVar("T")

#: Redis errors that mean "not reachable right now" (retry later), as opposed to a bug.
UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    ConnectionRefusedError,
    OSError,
)


class ConnectionPool(aioredis.ConnectionPool):
    """redis-py's asyncio pool, handing out connections without making each wait for the
    others' checks.

    redis-py 5.3 to 7.1 check the connection they hand out (``ensure_connection``: for a
    reused one a zero-timeout read, which lasts a turn of the event loop; for a new one the
    whole connect and handshake) while holding the pool's one lock, so every command of the
    process waits for each command before it to get through a loop turn. With fifty people's
    requests and 10,000 expiries in one loop that cost ~0.1 s per command (a click's
    credential DM came 2.5x later than idle, with Redis itself ~15 % busy). redis-py 7.2
    moved the check out of the lock (redis/redis-py#3692); so does this, on the versions
    before it (:data:`POOL_CLASS`)."""

    async def get_connection(
        self, command_name: object = None, *keys: object, **options: object
    ) -> Any:
        async with self._lock:
            connection = self.get_available_connection()  # type: ignore[no-untyped-call]
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection


#: The asyncio pool of a direct ``redis://`` / ``rediss://`` client: :class:`ConnectionPool`
#: where redis-py still checks connections under its lock (before 7.2), else its own.
POOL_CLASS: Final[type[aioredis.ConnectionPool]] = (
    ConnectionPool
    if tuple(int(part) for part in redis_sync.__version__.split(".")[:2]) < (7, 2)
    else aioredis.ConnectionPool
)


#: How the clients ride out a master change: a command whose connection broke is sent again
#: on a fresh connection (to the new master: a Sentinel pool asks the sentinels again, a
#: managed endpoint's DNS follows its master), after a jittered backoff. What fails for longer
#: is StoreUnavailable, "try again shortly". Only a broken connection is retried (and a
#: demoted master's READONLY), never a timeout, whose command may still be running; every
#: write grantbot sends is safe to send twice (compare-and-set scripts that check the state
#: they were computed from, SET NX answered by its own token, idempotent deletes).
RETRIES: Final = 6
BACKOFF_BASE_S: Final = 0.05
BACKOFF_CAP_S: Final = 1.0
BLOCKING_RETRIES: Final = 3
#: Sentinels answer from memory: a short timeout, so a dead one costs little.
SENTINEL_TIMEOUT_S: Final = 1.0


class _FollowingConnection(AsyncSentinelConnection):
    """A Sentinel-managed connection that asks where the master is on every reconnect.

    redis-py 7 and 8 reconnect a dropped connection inside a command's retry through
    ``connect_check_health``, which skips the Sentinel lookup and dials the old master again
    (redis/redis-py#3874, open). Resolving here first makes the retry follow the failover;
    on redis-py 5 and 6 that method does not exist and this is never called."""

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        if not self.is_connected and self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        return await super().connect_check_health(*args, **kwargs)  # type: ignore[misc]


class _FollowingSSLConnection(_FollowingConnection, AsyncSentinelSSLConnection):
    pass


class _FollowingBlockingConnection(SyncSentinelConnection):
    """:class:`_FollowingConnection` for the blocking client."""

    def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        connected: object = getattr(self, "_sock", None)
        if connected is None and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        return super().connect_check_health(*args, **kwargs)  # type: ignore[misc]


class _FollowingBlockingSSLConnection(_FollowingBlockingConnection, SyncSentinelSSLConnection):
    pass


class _AsyncRetry(AsyncRetry):
    """redis-py's asyncio Retry that gives up at once when Redis refuses the login.

    redis-py 5.3.1 recurses without end against a Redis that wants a password it was not
    given: a new connection's handshake sends CLIENT SETINFO (and SELECT) with a health check
    (``next_health_check`` is -1 on a fresh connection, ``health_check_interval=30``), whose
    PING is answered NOAUTH, i.e. an AuthenticationError, a subclass of ConnectionError,
    which this Retry (``retry_on_error``) answers by disconnecting and sending the PING
    again; that reconnects, so on_connect runs again, sends SETINFO, checks health... until
    RecursionError (with a backoff sleep per level). A refused login is no outage: it is
    raised the first time."""

    async def call_with_retry(self, do: Any, fail: Any) -> Any:
        async def fail_unless_refused(error: BaseException) -> None:
            await fail(error)
            if isinstance(error, redis_errors.AuthenticationError):
                raise error

        return await super().call_with_retry(do, fail_unless_refused)


class _BlockingRetry(Retry):
    """:class:`_AsyncRetry` for the blocking client (redis-py 5.3.1's has the same loop)."""

    def call_with_retry(self, do: Any, fail: Any) -> Any:
        def fail_unless_refused(error: BaseException) -> None:
            fail(error)
            if isinstance(error, redis_errors.AuthenticationError):
                raise error

        return super().call_with_retry(do, fail_unless_refused)


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(base=BACKOFF_BASE_S, cap=BACKOFF_CAP_S)


_RETRY_ON: Final = [redis_errors.ConnectionError, redis_errors.ReadOnlyError]


def _client_options(endpoint: Endpoint) -> dict[str, Any]:
    """Login and TLS options of a Sentinel-found or cluster client (a direct URL carries
    its own, read by redis-py)."""
    options: dict[str, Any] = {"username": endpoint.username, "password": endpoint.password}
    if endpoint.tls:
        options.update(endpoint.tls_options)
    return options


def _sentinel_options(endpoint: Endpoint, *, timeout_s: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": min(timeout_s, SENTINEL_TIMEOUT_S),
        "socket_connect_timeout": min(timeout_s, SENTINEL_TIMEOUT_S),
    }
    if endpoint.sentinel_username is not None:
        options["username"] = endpoint.sentinel_username
    if endpoint.sentinel_password is not None:
        options["password"] = endpoint.sentinel_password
    return options


#: A key in grantbot's default slot: what a cluster client connects for when not told.
DEFAULT_SLOT_KEY: Final = "{grantbot}"


def connect(
    url: str,
    *,
    max_connections: int = 64,
    timeout_s: float = 5.0,
    slot_key: str = DEFAULT_SLOT_KEY,
) -> aioredis.Redis:
    """A redis-py asyncio client that decodes responses as str, for any form of ``url``
    (:mod:`bot.store.endpoints`; ConfigError for a bad one). It follows a master change
    (see :data:`RETRIES`). On a cluster it serves the slot of ``slot_key`` (a key under the
    store's ``{prefix}``: bot.store.cluster)."""
    endpoint = parse_redis_url(url)
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": _AsyncRetry(_backoff(), RETRIES),  # the asyncio client needs its own Retry
        "retry_on_error": list(_RETRY_ON),
    }
    if endpoint.kind == "sentinel":
        sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
            endpoint.hosts, sentinel_kwargs=_sentinel_options(endpoint, timeout_s=timeout_s)
        )
        master: aioredis.Redis = sentinel.master_for(
            endpoint.master_name,
            redis_class=aioredis.Redis,
            connection_class=_FollowingSSLConnection if endpoint.tls else _FollowingConnection,
            db=endpoint.db,
            max_connections=max_connections,
            ssl=endpoint.tls,
            health_check_interval=30,
            **common,
            **_client_options(endpoint),
        )
        return master
    if endpoint.kind == "cluster":
        return connect_cluster(
            endpoint, slot_key=slot_key, max_connections=max_connections, **common
        )
    pool = POOL_CLASS.from_url(
        url, max_connections=max_connections, health_check_interval=30, **common
    )
    return aioredis.Redis.from_pool(pool)


async def close_client(client: aioredis.Redis) -> None:
    """Close ``client`` and every connection it opened, the sentinels' included."""
    pool = client.connection_pool
    await client.aclose()
    if isinstance(pool, AsyncSentinelPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()


#: Timeouts of the blocking client the scheduler's thread uses: short, so an unreachable Redis
#: delays a wakeup (and a graceful stop) briefly.
BLOCKING_SOCKET_TIMEOUT_S: Final = 2.0
BLOCKING_CONNECT_TIMEOUT_S: Final = 1.0
_TRY_AGAIN: Final = "Redis is unavailable; try again shortly"


def connect_blocking(url: str, *, slot_key: str = DEFAULT_SLOT_KEY) -> redis_sync.Redis:
    """A blocking client (short timeouts, str replies), for the one thread that may block:
    APScheduler's, whose job store is synchronous (bot.store.job_index). Every URL form
    :func:`connect` takes; it follows a master change the same way (fewer retries)."""
    endpoint = parse_redis_url(url)
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": BLOCKING_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": BLOCKING_CONNECT_TIMEOUT_S,
        "retry": _BlockingRetry(_backoff(), BLOCKING_RETRIES),
        "retry_on_error": list(_RETRY_ON),
    }
    if endpoint.kind == "sentinel":
        sentinel = SyncSentinel(  # type: ignore[no-untyped-call]
            endpoint.hosts,
            sentinel_kwargs=_sentinel_options(endpoint, timeout_s=BLOCKING_SOCKET_TIMEOUT_S),
        )
        master: redis_sync.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            endpoint.master_name,
            redis_class=redis_sync.Redis,
            connection_class=(
                _FollowingBlockingSSLConnection if endpoint.tls else _FollowingBlockingConnection
            ),
            db=endpoint.db,
            ssl=endpoint.tls,
            health_check_interval=30,
            **common,
            **_client_options(endpoint),
        )
        return master
    if endpoint.kind == "cluster":
        return connect_cluster_blocking(endpoint, slot_key=slot_key, **common)
    client: redis_sync.Redis = redis_sync.Redis.from_url(url, health_check_interval=30, **common)
    return client


def close_blocking(client: redis_sync.Redis) -> None:
    """Close ``client`` and its sentinels' connections."""
    pool = client.connection_pool
    client.close()
    if isinstance(pool, SyncSentinelPool):
        for sentinel in pool.sentinel_manager.sentinels:
            sentinel.close()


async def ping(client: aioredis.Redis, *, timeout_s: float) -> None:
    """Redis answers PING within ``timeout_s``: else TimeoutError, or StoreUnavailable (its
    cause the redis-py error)."""

    async def answered() -> None:
        async with unavailable_as_store_error():
            await client.ping()

    await asyncio.wait_for(answered(), timeout=timeout_s)


def as_awaitable(value: Awaitable[T] | T) -> Awaitable[T]:
    """Narrow a redis-py command result to its awaitable form.

    redis-py annotates commands for the sync and asyncio clients at once
    (``Awaitable[T] | T``); on the asyncio client it is always awaitable.
    """
    return cast(Awaitable[T], value)


def translate_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorator: Redis being unreachable becomes :class:`StoreUnavailable` (cause kept)."""

    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except UNAVAILABLE as e:
            raise StoreUnavailable(_TRY_AGAIN) from e

    return wrapper


@asynccontextmanager
async def unavailable_as_store_error() -> AsyncIterator[None]:
    """Context manager form of :func:`translate_errors`."""
    try:
        yield
    except UNAVAILABLE as e:
        raise StoreUnavailable(_TRY_AGAIN) from e


@contextmanager
def unavailable_as_store_error_blocking() -> Iterator[None]:
    """:func:`unavailable_as_store_error` for the blocking client."""
    try:
        yield
    except UNAVAILABLE as e:
        raise StoreUnavailable(_TRY_AGAIN) from e


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` means Redis could not be reached: StoreUnavailable, or a redis-py
    error that was not translated. (Not any OSError or TimeoutError: a credential target
    failing that way is not a Redis outage.)"""
    return isinstance(
        error,
        (
            StoreUnavailable,
            redis_errors.ConnectionError,
            redis_errors.TimeoutError,
            redis_errors.ReadOnlyError,
        ),
    )


def unavailable_cause(error: BaseException) -> BaseException:
    """What actually failed behind a StoreUnavailable (the redis-py error it was raised
    from), so an outage line names it: "ConnectionError: Error 111 connecting to ..."."""
    cause = error.__cause__
    return cause if isinstance(error, StoreUnavailable) and cause is not None else error


def redis_outage(
    *, interval_s: float = DEFAULT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
) -> Outage:
    """The Outage that speaks for Redis (logger ``bot.redis``). A process shares one between
    all its loops (the sweep, the scheduler's lease and reconciler, the job store, the
    revoker, readiness, metrics, the end announcer), so an outage is told once, not once per
    loop: a line when it begins, a reminder each ``interval_s``, a line when it ends."""
    return Outage(logging.getLogger("bot.redis"), "Redis", interval_s=interval_s, clock=clock)
