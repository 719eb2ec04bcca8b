"""``grantbot serve``: serve Slack over HTTP or Socket Mode, shut down cleanly on SIGTERM /
SIGINT.

The bot itself is built by :func:`bot.wiring.assemble` (the demo, the in-process tests and the
benchmark build it there too, so they run the very bot that ``serve`` runs); this module adds
the listener, auth.test (and its retries until it passes) and the signals.

Shutdown order: stop taking requests, let acked work finish (bounded), stop the scheduler,
close providers, the Slack session and Redis, stop the embedded redis-server if we started
one. Nothing is lost by stopping: grants and their revocation schedule live in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from typing import Any, Final

from aiohttp import web

from bot.aio import cancel_and_wait
from bot.config import Settings
from bot.errors import ConfigError, SlackError
from bot.oncall.cached import DEFAULT_TIMEOUT_S as DEFAULT_ONCALL_TIMEOUT_S
from bot.redis_runtime import redis_url_for
from bot.slack.edge import EdgeSocketModeHandler
from bot.wiring import Bot, assemble

log = logging.getLogger(__name__)

#: How often a failed auth.test is retried (readiness).
SLACK_RECHECK_INTERVAL_S: Final = 15.0
#: The longest a request waits for PagerDuty or Opsgenie before it falls back to approvers.
ONCALL_TIMEOUT_S: Final = DEFAULT_ONCALL_TIMEOUT_S


async def check_slack(bot: Bot) -> None:
    """auth.test: the token works and the API answers, and which workspace it is for (the
    one whose deliveries are admitted, see bot.slack.workspace). Sets readiness either way."""
    try:
        resp = await bot.app.client.auth_test()
        conflict = bot.workspace.learn(
            team_id=resp.get("team_id"),
            enterprise_id=resp.get("enterprise_id"),
            org_wide=bool(resp.get("is_enterprise_install")),
        )
        if conflict is not None:
            bot.readiness.slack_ok = False
            bot.readiness.slack_detail = f"wrong workspace: {conflict}"
            log.error("slack auth.test: %s; every Slack request will be refused", conflict)
            return
        bot.readiness.slack_ok = True
        bot.readiness.slack_detail = "ok"
        log.info(
            "slack auth.test passed",
            extra={
                "team": resp.get("team"),
                "bot": resp.get("user"),
                "workspace": str(bot.workspace.known),
            },
        )
    except SlackError as e:
        bot.readiness.slack_ok = False
        bot.readiness.slack_detail = f"auth.test failed: {e.code}"
        log.error("slack auth.test failed: %s", e.code)


async def _keep_checking_slack(bot: Bot, *, interval_s: float) -> None:
    """Until auth.test passes (Slack was down or the token was wrong at start), retry it so
    /readyz turns ready on its own. A token of another workspace than SLACK_TEAM_ID names
    is not retried: only a restart with corrected settings can mend that."""
    while not bot.readiness.slack_ok and bot.workspace.conflict is None:
        await asyncio.sleep(interval_s)
        await check_slack(bot)


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    log.info("stopping")


#: What ``grantbot serve`` says when it has no REDIS_URL and was not given ``--dev``.
NO_REDIS_URL: Final = (
    "REDIS_URL is not set: grantbot serve keeps every grant, revocation and audit entry in "
    "Redis and needs one that outlives it (redis://, rediss:// or redis+sentinel://); to try "
    "grantbot locally run `grantbot demo` (or `grantbot serve --dev` for an embedded Redis)"
)


async def serve(settings: Settings, *, socket_mode: bool, dev: bool = False) -> None:
    """Run the bot until SIGTERM or SIGINT.

    Without REDIS_URL it refuses to start (ConfigError, :data:`NO_REDIS_URL`) unless ``dev``,
    which uses localhost:6379 or an embedded redis-server, as the demo does.

    HTTP mode needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET; Socket Mode (``socket_mode``,
    or SLACK_APP_TOKEN set) needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN. A missing one is a
    ConfigError naming it, raised before anything starts. /healthz and /readyz are served
    on GRANTBOT_HOST:GRANTBOT_PORT in both modes.
    """
    use_socket = socket_mode or settings.slack_app_token is not None
    if use_socket:
        bot_token = _require(settings.slack_bot_token, "SLACK_BOT_TOKEN")
        app_token = settings.require_app_token()
        signing_secret = (
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else ""
        )
    else:
        bot_token, signing_secret = settings.require_slack_http()
        app_token = ""
    if not settings.redis_url and not dev:
        raise ConfigError(NO_REDIS_URL)
    with redis_url_for(settings, start_embedded=True) as redis_url:
        async with assemble(
            settings,
            redis_url=redis_url,
            bot_token=bot_token,
            signing_secret=signing_secret,
            http_events=not use_socket,
            oncall_timeout_s=ONCALL_TIMEOUT_S,
        ) as bot:
            await check_slack(bot)
            # Everything built so far lives as long as the process: keep it out of the
            # cyclic GC's way, so collections stay short and do not stall acks.
            gc.collect()
            gc.freeze()
            runner = web.AppRunner(bot.web_app, access_log=None, shutdown_timeout=5.0)
            await runner.setup()
            recheck = asyncio.get_running_loop().create_task(
                _keep_checking_slack(bot, interval_s=SLACK_RECHECK_INTERVAL_S), name="auth-test"
            )
            socket_handler = None
            try:
                site = web.TCPSite(runner, settings.host, settings.port)
                await site.start()
                log.info(
                    "grantbot serving",
                    extra={
                        "mode": "socket" if use_socket else "http",
                        "address": f"http://{settings.host}:{settings.port}",
                        "policy_version": bot.policy.version[:12],
                    },
                )
                if use_socket:
                    socket_handler = EdgeSocketModeHandler(bot.edge, app_token)
                    await socket_handler.connect_async()  # type: ignore[no-untyped-call]
                await _wait_for_stop()
            finally:
                await cancel_and_wait(recheck)
                if socket_handler is not None:
                    await socket_handler.close_async()  # type: ignore[no-untyped-call]
                await runner.cleanup()


def _require(value: Any, name: str) -> str:
    secret = value.get_secret_value() if value is not None else ""
    if not secret:
        raise ConfigError(f"{name} is not set")
    return str(secret)
