"""Shared fixtures. Redis is always real: REDIS_URL, else localhost:6379, else an embedded
redis-server started for the session. Each test gets its own key prefix and its keys are
deleted afterwards, so tests never see each other's data and never flush a shared server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from bot.devtools.redis_server import RedisServer, port_answers
from bot.store.connection import connect
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from tests import system


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(name, ...): system requirements (tests/system.py); skipped when missing, "
        "failed under CI=true",
    )


_missing: dict[str, int] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("needs"):
        for name in marker.args:
            if system.present(name):
                continue
            requirement = system.REQUIREMENTS[name]
            if system.in_ci():
                pytest.fail(f"{requirement.reason} (CI=true: nothing may be skipped)")
            _missing[name] = _missing.get(name, 0) + 1
            pytest.skip(requirement.reason)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for name, count in sorted(_missing.items()):
        terminalreporter.write_line(
            f"grantbot: {count} test(s) skipped: {system.REQUIREMENTS[name].reason}"
        )


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the whole session."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
    elif port_answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
    else:
        with RedisServer(appendonly=False) as server:
            yield server.url


@pytest.fixture
def keys() -> Keys:
    """A key namespace private to this test."""
    return Keys(prefix=f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def redis_client(redis_url: str, keys: Keys) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client; every key under this test's prefix is deleted afterwards."""
    client = connect(redis_url, max_connections=128)
    yield client
    pattern = "{" + keys.prefix + "}*"
    async for key in client.scan_iter(match=pattern, count=1000):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
async def store(redis_client: aioredis.Redis, keys: Keys) -> GrantStore:
    return GrantStore(redis_client, keys=keys)
