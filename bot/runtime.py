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

from bot.config import Settings
from bot.notify import Notifier
from bot.policy_holder import PolicyHolder
from bot.redis_runtime import redis_url_for
from bot.revocation.revoker import Revoker
from bot.service import GrantService, UsergroupDirectory
from bot.store.grants import GrantStore
from bot.store.keys import Keys


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[GrantStore]:
    """A GrantStore on the configured (or running embedded) Redis; never starts one."""
    with redis_url_for(settings, start_embedded=False) as url:
        store = GrantStore.open(url, keys=Keys(prefix=settings.redis_prefix))
        try:
            yield store
        finally:
            await store.aclose()


@dataclass(frozen=True, slots=True)
class Core:
    redis_url: str
    store: GrantStore
    policy: PolicyHolder
    service: GrantService
    revoker: Revoker


def build_core(
    settings: Settings,
    *,
    redis_url: str,
    notifier: Notifier | None = None,
    usergroups: UsergroupDirectory | None = None,
) -> Core:
    """Wire the parts on the Redis at ``redis_url`` (the store owns its connection: closed by
    ``store.aclose()``); the revoker reports back to the service (its resolver and listener)."""
    store = GrantStore.open(redis_url, keys=Keys(prefix=settings.redis_prefix))
    policy = PolicyHolder.load(settings.policy_path)
    service = GrantService(store=store, policy=policy, notifier=notifier, usergroups=usergroups)
    revoker = Revoker(
        store, resolver=service, listener=service, policy_version=lambda: policy.version
    )
    service.revoker = revoker
    return Core(
        redis_url=redis_url,
        store=store,
        policy=policy,
        service=service,
        revoker=revoker,
    )


@asynccontextmanager
async def open_core(settings: Settings, *, start_embedded: bool = False) -> AsyncIterator[Core]:
    """The core on the configured Redis, closed (revoker drained, providers closed) on exit."""
    with redis_url_for(settings, start_embedded=start_embedded) as url:
        core = build_core(settings, redis_url=url)
        try:
            yield core
        finally:
            await core.revoker.aclose()
            await core.service.aclose()
            await core.store.aclose()


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[GrantService]:
    """The service with revocation wired, for CLI commands that end grants."""
    async with open_core(settings) as core:
        yield core.service
