"""Connecting to Redis and translating its errors into grantbot's family."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import wraps
from typing import ParamSpec, TypeVar, cast

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from bot.errors import StoreUnavailable

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


def connect(url: str, *, max_connections: int = 64, timeout_s: float = 5.0) -> aioredis.Redis:
    """A redis-py asyncio client that decodes responses as str."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )
    return client


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
            raise StoreUnavailable("Redis is unavailable; try again shortly") from e

    return wrapper


@asynccontextmanager
async def unavailable_as_store_error() -> AsyncIterator[None]:
    """Context manager form of :func:`translate_errors`."""
    try:
        yield
    except UNAVAILABLE as e:
        raise StoreUnavailable("Redis is unavailable; try again shortly") from e
