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
from bot.slack.api import SlackClient
from bot.slack.context import SlackDeps
from bot.slack.listeners import register_all
from bot.slack.retry import BACKOFF_S
from bot.slack.tasks import BackgroundTasks

log = logging.getLogger(__name__)

#: An attempt at a Web API call that gets no answer within this long is abandoned (and the
#: call reported as failed with code ``timeout``).
API_TIMEOUT_S: Final = 10.0


def build_client(
    *,
    token: str,
    base_url: str,
    session: aiohttp.ClientSession | None = None,
    timeout_s: float = API_TIMEOUT_S,
    retry_backoff_s: float = BACKOFF_S,
) -> SlackClient:
    """A Web API client for ``base_url`` (Slack, or the emulator) that retries 429 after
    Retry-After, 5xx and dropped connections (first wait ``retry_backoff_s``), gives each
    attempt ``timeout_s``, raises only SlackError (bot.slack.api) and never logs bodies (see
    API_LOGGER). Pass a shared ``session`` to reuse connections; its owner closes it."""
    return SlackClient(
        token=token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        session=session,
        timeout=timeout_s,  # slack_sdk annotates int; aiohttp's timeouts take float seconds
        retry_backoff_s=retry_backoff_s,
    )


class _Answering(AsyncMiddleware):
    """Counts requests being answered, so post-ack work can let acks go first (see
    BackgroundTasks), and hands listeners grantbot's own client. A plain AsyncMiddleware: no
    per-request argument injection.

    Bolt builds a plain AsyncWebClient per request from the app's settings; listeners get
    ``client`` (the SlackClient the app was built with) instead, so their calls fail the way
    every other Slack call does (bot.slack.api). One workspace, one token: sharing is safe."""

    def __init__(self, tasks: BackgroundTasks, client: AsyncWebClient) -> None:
        self.tasks = tasks
        self.client = client

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        req.context["client"] = self.client
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

    app.middleware(_Answering(deps.tasks, client))
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
