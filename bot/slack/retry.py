"""The retry policy for every Slack Web API call grantbot makes.

429 answers are retried after their Retry-After, server errors (500, 502, 503, 504) and
dropped connections with backoff. What still fails reaches the caller as an error, which the
notifier reports (log + audit) without touching grant state.
"""

from __future__ import annotations

import logging
from typing import Final

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
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
_BACKOFF = BackoffRetryIntervalCalculator(backoff_factor=0.25)


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


def retry_handlers() -> list[AsyncRetryHandler]:
    """Fresh handlers (they carry no state between calls, but are cheap to make)."""
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES, interval_calculator=_BACKOFF),
        AsyncConnectionErrorRetryHandler(
            max_retry_count=CONNECTION_RETRIES, interval_calculator=_BACKOFF
        ),
    ]
