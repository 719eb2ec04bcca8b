"""The Bolt AsyncApp, wired: Web API client with retries, and the listeners.

``create_app`` is used by ``grantbot serve`` (HTTP or Socket Mode), by the demo, by the
in-process integration tests and by the benchmark, so all of them run the same app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.log_throttle import Throttle
from bot.slack.context import SlackDeps
from bot.slack.listeners import register_all
from bot.slack.retry import API_LOGGER, retry_handlers
from bot.slack.tasks import BackgroundTasks

log = logging.getLogger(__name__)

#: A Web API call that takes longer than this is abandoned (and retried, then reported).
API_TIMEOUT_S: Final = 10


def build_client(
    *,
    token: str,
    base_url: str,
    session: aiohttp.ClientSession | None = None,
    timeout_s: int = API_TIMEOUT_S,
) -> AsyncWebClient:
    """An AsyncWebClient for ``base_url`` (Slack, or the emulator) that retries 429 after
    Retry-After, 5xx and dropped connections, and never logs bodies (see API_LOGGER). Pass a
    shared ``session`` to reuse connections; its owner closes it."""
    return AsyncWebClient(
        token=token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        session=session,
        timeout=timeout_s,
        retry_handlers=retry_handlers(),
        logger=API_LOGGER,
    )


class _Answering(AsyncMiddleware):
    """Counts requests being answered, so post-ack work can let acks go first (see
    BackgroundTasks). A plain AsyncMiddleware: no per-request argument injection."""

    def __init__(self, tasks: BackgroundTasks) -> None:
        self.tasks = tasks

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        with self.tasks.answering():
            return await next()


def create_app(*, deps: SlackDeps, client: AsyncWebClient, signing_secret: str) -> AsyncApp:
    """The grantbot AsyncApp. Deliveries reach it through :mod:`bot.slack.edge`, which has
    checked the signature, the body's shape and the workspace, and parsed the body; Bolt
    verifies the signature of HTTP requests again with ``signing_secret`` (Socket Mode needs
    none). Repeated deliveries are dropped by ``deps.later`` (see bot.slack.dedupe)."""
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        name="grantbot",
        logger=logging.getLogger("slack_bolt.grantbot"),
        process_before_response=False,
        # A well-formed delivery no listener takes (an unknown button, another command) is
        # answered 404 as before, but logged by on_error as one throttled line instead of
        # Bolt's multi-line suggestion of listener code.
        raise_error_for_unhandled_request=True,
    )

    app.middleware(_Answering(deps.tasks))
    unhandled = Throttle(log, level=logging.WARNING)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # Bolt calls this for failures in its middleware and in listeners alike.
        kind = body.get("type") or body.get("command") or "request"
        if isinstance(error, BoltUnhandledRequestError):
            unhandled.log("unhandled", "no listener handles this %s; answered 404", kind)
            return
        log.error("handling %s failed: %s", kind, type(error).__name__, exc_info=error)

    register_all(app, deps)
    return app
