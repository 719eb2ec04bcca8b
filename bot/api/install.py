"""What ``grantbot serve`` adds for the pipelines API (bot.wiring.assemble): the notifier the
service is built with, which seals machine clients' credentials instead of DMing them, and the
API's routes on its aiohttp application before it starts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Final

from aiohttp import web

from bot.api.delivery import PipelineDelivery
from bot.api.handlers import PipelineApi, register_api
from bot.domain.model import Actor, Grant
from bot.notify import Notifier
from bot.service import GrantService
from bot.store.grants import GrantStore

#: Who takes back a grant whose credential could not be sealed (audited as this).
SEALER: Final = Actor.system("sealer")
#: Where the application keeps the API's handlers (tests tune its rate limit through it).
API_KEY: Final = web.AppKey("grantbot_api", PipelineApi)


def pipeline_notifier(
    inner: Notifier, *, store: GrantStore, clock: Callable[[], float] = time.time
) -> PipelineDelivery:
    """``inner`` for people's grants; a machine client's credential sealed into ``store``.
    Given to the service at construction (its context's notifier)."""
    return PipelineDelivery(inner, sealed=store.sealed_credentials, clock=clock)


def install_pipelines(
    app: web.Application,
    *,
    service: GrantService,
    store: GrantStore,
    environ: Mapping[str, str] | None,
    clock: Callable[[], float] = time.time,
) -> PipelineApi:
    """Serve the API on ``app`` (not yet started); tokens from ``environ`` (default: the
    process's). The service should have been built with :func:`pipeline_notifier`."""
    env = environ if environ is not None else os.environ
    notifier = service.notifier
    if isinstance(notifier, PipelineDelivery):

        async def take_back(grant: Grant, why: str) -> None:
            if service.revoker is None:  # not in serve, which always has one
                return
            # grantbot's own doing, not the client's nor a person's.
            await service.revoker.revoke(grant.id, actor=SEALER, reason=why)

        notifier.take_back = take_back
    api = register_api(app, PipelineApi(service=service, store=store, environ=env, clock=clock))
    api.tokens.current()  # a disabled client, a short or shared token: said at start
    app[API_KEY] = api
    return api
