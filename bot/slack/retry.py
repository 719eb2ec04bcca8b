"""The retry policy for every Slack Web API call grantbot makes.

429 answers are retried after their Retry-After, server errors (500, 502, 503, 504) and
dropped connections with backoff. What still fails reaches the caller as a
:class:`bot.errors.SlackError` (see :mod:`bot.slack.api`), which the notifier reports (log +
audit) without touching grant state.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Final

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

#: The logger every Slack API client (Web API and response_url) is given. slack_sdk logs
#: whole request and response bodies at DEBUG, and one of those bodies is the requester's
#: credential DM: this logger never goes below INFO, whatever level the process runs at.
API_LOGGER: Final = logging.getLogger("bot.slack.api")
API_LOGGER.setLevel(logging.INFO)

RATE_LIMIT_RETRIES: Final = 3
SERVER_ERROR_RETRIES: Final = 3
CONNECTION_RETRIES: Final = 3
RETRIED_STATUSES: Final = frozenset({500, 502, 503, 504})
#: Waits between attempts after a 5xx or a dropped connection: 0.25 s, 0.5 s, 1 s (each
#: give or take half, so replicas do not retry in step).
BACKOFF_S: Final = 0.25
#: A 429 is retried after its Retry-After plus up to this fraction of it.
RATE_LIMIT_JITTER: Final = 0.1


class _ProportionalJitter(Jitter):
    """Each wait is scaled by 0.5-1.5. slack_sdk's RandomJitter adds up to a whole second to
    every wait, which at a 0.25 s backoff makes a failing call take seconds longer."""

    def recalculate(self, duration: float) -> float:
        return duration * (0.5 + random.random())


class ServerErrorRetryHandler(AsyncServerErrorRetryHandler):
    """Retries 500, 502, 503 and 504 (slack_sdk's own handler covers 500 and 503)."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in RETRIED_STATUSES


class RateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Retries a 429 after its Retry-After (plus up to :data:`RATE_LIMIT_JITTER` of it).
    slack_sdk's own adds up to a whole second to every wait and reads only the header's
    first character."""

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:  # only called for a 429 answer; keep slack_sdk's contract
            raise error or RuntimeError("no response to retry after")
        state.next_attempt_requested = True
        wait_s = retry_after_s(response.headers)
        await asyncio.sleep(wait_s * (1 + RATE_LIMIT_JITTER * random.random()))
        state.increment_current_attempt()


def retry_after_s(headers: Mapping[str, list[str] | str]) -> float:
    """Retry-After in seconds (1 when absent or not a number of seconds)."""
    for name, values in headers.items():
        if name.lower() == "retry-after" and values:
            value = values if isinstance(values, str) else values[0]
            try:
                return max(0.0, float(value))
            except ValueError:
                return 1.0
    return 1.0


def retry_handlers(*, backoff_s: float = BACKOFF_S) -> list[AsyncRetryHandler]:
    """Fresh handlers (they carry no state between calls, but are cheap to make).
    ``backoff_s`` is the first wait after a 5xx or a dropped connection (then doubling)."""
    backoff = BackoffRetryIntervalCalculator(backoff_factor=backoff_s, jitter=_ProportionalJitter())
    return [
        RateLimitRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES, interval_calculator=backoff),
        AsyncConnectionErrorRetryHandler(
            max_retry_count=CONNECTION_RETRIES, interval_calculator=backoff
        ),
    ]
