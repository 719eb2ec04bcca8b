"""Connecting to Redis and translating its errors into grantbot's family.

Every client grantbot opens on its own Redis is made here: the asyncio client the store's
parts share (:func:`connect`) and the blocking one the scheduler's thread uses for
APScheduler's job store (:func:`connect_blocking`).
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

from bot.errors import StoreUnavailable
from bot.log_throttle import DEFAULT_INTERVAL_S, Outage

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
    moved the check out of the lock (redis/redis-py#3692); so does this."""

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


def connect(url: str, *, max_connections: int = 64, timeout_s: float = 5.0) -> aioredis.Redis:
    """A redis-py asyncio client that decodes responses as str (on :class:`ConnectionPool`)."""
    pool = ConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)


#: Timeouts of the blocking client the scheduler's thread uses: short, so an unreachable Redis
#: delays a wakeup (and a graceful stop) briefly.
BLOCKING_SOCKET_TIMEOUT_S: Final = 2.0
BLOCKING_CONNECT_TIMEOUT_S: Final = 1.0
_TRY_AGAIN: Final = "Redis is unavailable; try again shortly"


def connect_blocking(url: str) -> redis_sync.Redis:
    """A blocking client (short timeouts, str replies), for the one thread that may block:
    APScheduler's, whose job store is synchronous (bot.store.job_index)."""
    client: redis_sync.Redis = redis_sync.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=BLOCKING_SOCKET_TIMEOUT_S,
        socket_connect_timeout=BLOCKING_CONNECT_TIMEOUT_S,
        health_check_interval=30,
    )
    return client


async def ping(client: aioredis.Redis, *, timeout_s: float) -> None:
    """Redis answers PING within ``timeout_s``: else TimeoutError, or StoreUnavailable (its
    cause the redis-py error)."""

    async def answered() -> None:
        async with unavailable_as_store_error():
            await client.ping()

    await asyncio.wait_for(answered(), timeout=timeout_s)


def aw(value: Awaitable[T] | T) -> Awaitable[T]:
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
