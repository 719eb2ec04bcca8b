"""Assembling the core parts for a process.

``open_store`` serves read-only CLI commands; ``open_core`` wires policy, store, service and
revoker for anything that changes grants (the CLI, the server and the demo build on it).
Neither starts an embedded Redis unless asked: a CLI command must not conjure an empty
database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.config import Settings
from bot.notify import Notifier
from bot.policy_holder import PolicyHolder
from bot.redis_runtime import redis_url_for
from bot.revocation import Revoker
from bot.service import GrantService, UsergroupDirectory
from bot.store.connection import connect
from bot.store.grants import GrantStore
from bot.store.keys import Keys


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[GrantStore]:
    """A GrantStore on the configured (or running embedded) Redis; never starts one."""
    with redis_url_for(settings, start_embedded=False) as url:
        client = connect(url)
        try:
            yield GrantStore(client, keys=Keys(prefix=settings.redis_prefix))
        finally:
            await client.aclose()


@dataclass(frozen=True, slots=True)
class Core:
    redis_url: str
    redis: aioredis.Redis
    store: GrantStore
    policy: PolicyHolder
    service: GrantService
    revoker: Revoker


def build_core(
    settings: Settings,
    *,
    redis_url: str,
    client: aioredis.Redis,
    notifier: Notifier | None = None,
    usergroups: UsergroupDirectory | None = None,
) -> Core:
    """Wire the parts; the revoker reports back to the service (its resolver and listener)."""
    store = GrantStore(client, keys=Keys(prefix=settings.redis_prefix))
    policy = PolicyHolder.load(settings.policy_path)
    service = GrantService(store=store, policy=policy, notifier=notifier, usergroups=usergroups)
    revoker = Revoker(
        store, resolver=service, listener=service, policy_version=lambda: policy.version
    )
    service.revoker = revoker
    return Core(
        redis_url=redis_url,
        redis=client,
        store=store,
        policy=policy,
        service=service,
        revoker=revoker,
    )


@asynccontextmanager
async def open_core(settings: Settings, *, start_embedded: bool = False) -> AsyncIterator[Core]:
    """The core on the configured Redis, closed (revoker drained, providers closed) on exit."""
    with redis_url_for(settings, start_embedded=start_embedded) as url:
        client = connect(url)
        core = build_core(settings, redis_url=url, client=client)
        try:
            yield core
        finally:
            await core.revoker.aclose()
            await core.service.aclose()
            await client.aclose()


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[GrantService]:
    """The service with revocation wired, for CLI commands that end grants."""
    async with open_core(settings) as core:
        yield core.service
