"""The one hook ``grantbot serve`` calls (bot.server.assemble): the API's routes on its
aiohttp application, and the service's credentials for machine clients sealed, not DMed."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Final

from aiohttp import web

from bot.api.delivery import PipelineDelivery
from bot.api.handlers import PipelineApi, register_api
from bot.service import GrantService
from bot.store.grants import GrantStore
from bot.store.pipelines import SealedCredentials

#: Where the application keeps the API's handlers (tests tune its rate limit through it).
API_KEY: Final = web.AppKey("grantbot_api", PipelineApi)


def install_pipelines(
    app: web.Application,
    *,
    service: GrantService,
    store: GrantStore,
    environ: Mapping[str, str] | None,
    clock: Callable[[], float] = time.time,
) -> PipelineApi:
    """Wrap the service's notifier in :class:`PipelineDelivery` and serve the API on ``app``."""
    sealed = SealedCredentials(store.redis, keys=store.keys)
    service.notifier = PipelineDelivery(service.notifier, sealed=sealed, clock=clock)
    env = environ if environ is not None else os.environ
    api = register_api(app, service=service, store=store, environ=env, clock=clock)
    app[API_KEY] = api
    return api
