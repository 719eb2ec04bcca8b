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
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from bot.errors import StoreUnavailable
from bot.log_throttle import Outage
from bot.metrics import render_metrics, set_active_grants
from bot.policy_holder import PolicyHolder
from bot.slack.edge import Edge
from bot.store.connection import redis_outage, unavailable_cause
from bot.store.grants import GrantStore

log = logging.getLogger(__name__)

EVENTS_PATH: Final = "/slack/events"
READY_PING_TIMEOUT_S: Final = 1.0
#: A scrape waits this long for the live-grant counts, then serves the last ones it had.
SCRAPE_STORE_TIMEOUT_S: Final = 1.0


@dataclass(slots=True)
class Readiness:
    """What /readyz reports. ``slack_ok`` is set once auth.test has passed. Each probe's
    Redis PING (``store.ping``) also tells ``redis_outage`` (the process's one voice for
    Redis) how it went."""

    store: GrantStore
    policy: PolicyHolder
    slack_ok: bool = False
    slack_detail: str = "auth.test not run yet"
    redis_outage: Outage = field(default_factory=redis_outage)

    async def checks(self) -> dict[str, str]:
        """One line per check; each starts with "ok" when it passes."""
        out: dict[str, str] = {}
        try:
            await self.store.ping(timeout_s=READY_PING_TIMEOUT_S)
            out["redis"] = "ok"
            self.redis_outage.succeeded()
        except StoreUnavailable as e:
            cause = unavailable_cause(e)
            out["redis"] = f"unavailable: {type(cause).__name__}"
            self.redis_outage.failed(cause)
        except TimeoutError:
            out["redis"] = "unavailable: TimeoutError"
            self.redis_outage.failed("timed out")
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
    ``/metrics`` scrape refreshes the active-grants gauge from it first (a failure is told
    by ``readiness.redis_outage``)."""
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
                readiness.redis_outage.succeeded()
            except (TimeoutError, StoreUnavailable) as e:
                # Still serve every other metric; the gauge keeps its last reading.
                readiness.redis_outage.failed(
                    unavailable_cause(e) if isinstance(e, StoreUnavailable) else "timed out"
                )
        body, content_type = render_metrics(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
