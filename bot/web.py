"""The HTTP face: Slack at ``POST /slack/events`` plus ``/healthz``, ``/readyz``, ``/metrics``.

``/slack/events`` is :class:`bot.slack.edge.Edge`'s handler: commands, interactivity and
events are verified, read and checked there (a bad signature or a timestamp more than 5
minutes off gets 401 before anything is parsed; a malformed body 400; another workspace 403)
and only then handed to Bolt. ``/healthz`` says the process is up. ``/readyz`` says it can do its
job: Redis answers PING, a valid policy is loaded, and ``auth.test`` passed at start.
``/metrics`` serves the Prometheus registry (bot.metrics defines what is in it); each scrape
first reads the standing privileges (live grants by resource) from the store, so every replica
reports the same, current figure.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis
from aiohttp import web

from bot.errors import StoreUnavailable
from bot.metrics import render_metrics, set_active_grants
from bot.policy_holder import PolicyHolder
from bot.slack.edge import Edge
from bot.store.connection import UNAVAILABLE
from bot.store.grants import GrantStore

log = logging.getLogger(__name__)

EVENTS_PATH: Final = "/slack/events"
READY_PING_TIMEOUT_S: Final = 1.0
#: A scrape waits this long for the live-grant counts, then serves the last ones it had.
SCRAPE_STORE_TIMEOUT_S: Final = 1.0


@dataclass(slots=True)
class Readiness:
    """What /readyz reports. ``slack_ok`` is set once auth.test has passed."""

    redis: aioredis.Redis
    policy: PolicyHolder
    slack_ok: bool = False
    slack_detail: str = "auth.test not run yet"

    async def checks(self) -> dict[str, str]:
        """One line per check; each starts with "ok" when it passes."""
        out: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.redis.ping(), timeout=READY_PING_TIMEOUT_S)
            out["redis"] = "ok"
        except (TimeoutError, *UNAVAILABLE) as e:
            out["redis"] = f"unavailable: {type(e).__name__}"
        out["policy"] = f"ok, version {self.policy.version[:12]}"
        out["slack"] = "ok" if self.slack_ok else self.slack_detail
        return out


def build_web_app(
    edge: Edge | None,
    *,
    readiness: Readiness,
    store: GrantStore | None = None,
    path: str = EVENTS_PATH,
) -> web.Application:
    """The aiohttp application: the Slack edge on POST ``path`` (None in Socket Mode, where
    Slack comes over the websocket) plus the health and metrics routes. With ``store``, each
    ``/metrics`` scrape refreshes the active-grants gauge from it first."""
    # aiohttp's default body limit (1 MiB) stays: larger bodies get 413 before anything else.
    app = web.Application()
    if edge is not None:
        app.router.add_post(path, edge.handle_http)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        checks = await readiness.checks()
        ready = all(v.startswith("ok") for v in checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        if store is not None:
            try:
                async with asyncio.timeout(SCRAPE_STORE_TIMEOUT_S):
                    set_active_grants(await store.live_by_resource())
            except (TimeoutError, StoreUnavailable) as e:
                # Still serve every other metric; the gauge keeps its last reading.
                log.warning("metrics: live grant counts unavailable: %s", e)
        body, content_type = render_metrics(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
