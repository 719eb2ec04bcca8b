"""The Slack Web API at grantbot's edge: every way a call can fail becomes one SlackError.

slack_sdk (3.48; read in its source, and measured against the emulator's faults) reports a
failed call in as many shapes as Slack, or a proxy in front of it, can fail in:

- Slack's JSON error ``{"ok": false, "error": ...}`` (also a 429 or 5xx after the retries):
  SlackApiError whose ``response.data`` is that JSON.
- A body declared ``application/json`` that is not JSON: SlackApiError whose ``response`` is
  aiohttp's ClientResponse, which has neither ``get`` nor ``status_code``.
- An HTML error page (``text/html``): SlackApiError with ``response.data == {}``.
- A plain-text body: SlackApiError with ``response.data`` a str, whose ``get`` raises
  AttributeError; with HTTP 200, AttributeError from slack_sdk's own ``validate()``.
- No answer: TimeoutError. With a shared aiohttp session (as ``grantbot serve`` runs) the
  client's ``timeout`` is not applied at all; only the session's is.
- A reset connection: aiohttp's ClientOSError (an OSError) or ServerDisconnectedError (not
  an OSError).

Code that read ``e.response.get("error")`` handled the first shape and broke on the others
(issue 10: an HTML 503 from ``conversations.info`` left an ``/access`` unanswered).
:class:`SlackClient` maps every one of them, where the call is made, to
:class:`SlackCallFailed` with a short ``code``, and applies its ``timeout`` to each attempt;
:func:`post_to_response_url` does the same for ``response_url`` posts. Callers catch
:class:`bot.errors.SlackError` and nothing else.
"""

from __future__ import annotations

import asyncio
import errno
import json
from typing import Any, Final

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import SlackError
from bot.slack.retry import API_LOGGER, BACKOFF_S, retry_handlers

#: The ``method`` of a failed ``response_url`` post.
RESPONSE_URL: Final = "response_url"
#: What slack_sdk raises for a call that did not complete (see the module docstring).
_LIBRARY_ERRORS: Final = (
    SlackClientError,
    aiohttp.ClientError,
    TimeoutError,
    OSError,
    AttributeError,
    ValueError,
)


class SlackCallFailed(SlackError, SlackApiError):
    """A Slack call that failed for good; ``code``, ``method``, ``status`` as in SlackError.

    It is a SlackApiError too, whose ``response`` is Slack's own answer when Slack answered
    with a JSON error, else one that says ``{"ok": false, "error": code}``: Bolt's own code
    (its authorization middleware catches SlackApiError) keeps working with it."""

    def __init__(
        self,
        method: str,
        code: str,
        *,
        status: int | None,
        response: AsyncSlackResponse | None = None,
    ) -> None:
        self.method, self.code, self.status = method, code, status
        self.text = f"Slack could not complete {method} ({code}); try again shortly"
        if response is None:
            response = AsyncSlackResponse(
                client=None,
                http_verb="POST",
                api_url=method,
                req_args={},
                data={"ok": False, "error": code},
                headers={},
                status_code=status or 0,
            )
        SlackApiError.__init__(self, self.text, response)  # type: ignore[no-untyped-call]

    def __str__(self) -> str:
        return self.text


def _http_code(status: int | None) -> str:
    return f"http_{status}" if status else "no_answer"


def failure(method: str, error: BaseException) -> SlackCallFailed:
    """``error``, raised by slack_sdk or aiohttp for ``method``, as a SlackCallFailed whose
    ``code`` is Slack's error code, else ``http_<status>``, ``non_json_body``, ``timeout``,
    ``connection_reset``, ``connection_closed``, ``unreachable`` or ``connection_failed``."""
    if isinstance(error, SlackCallFailed):
        return error
    if isinstance(error, SlackApiError):
        response = error.response
        if isinstance(response, AsyncSlackResponse):
            data, status = response.data, response.status_code
            code = data.get("error") if isinstance(data, dict) else None
            if isinstance(code, str) and code:
                return SlackCallFailed(method, code, status=status, response=response)
            return SlackCallFailed(method, _http_code(status), status=status)
        # aiohttp's ClientResponse: a body declared JSON that is not.
        raw_status = getattr(response, "status", None)
        http_status = raw_status if isinstance(raw_status, int) else None
        code = "non_json_body" if http_status in (None, 200) else _http_code(http_status)
        return SlackCallFailed(method, code, status=http_status)
    if isinstance(error, AttributeError | ValueError):
        # slack_sdk's validate() reading "ok" out of a 200 answer that was not JSON.
        return SlackCallFailed(method, "non_json_body", status=200)
    if isinstance(error, TimeoutError):
        return SlackCallFailed(method, "timeout", status=None)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return SlackCallFailed(method, "connection_closed", status=None)
    if isinstance(error, ConnectionResetError) or (
        isinstance(error, OSError) and error.errno == errno.ECONNRESET
    ):
        return SlackCallFailed(method, "connection_reset", status=None)
    if isinstance(error, aiohttp.ClientConnectorError):
        return SlackCallFailed(method, "unreachable", status=None)
    return SlackCallFailed(method, "connection_failed", status=None)


class SlackClient(AsyncWebClient):
    """AsyncWebClient whose calls raise only SlackCallFailed (see the module docstring),
    each attempt bounded by ``timeout`` seconds even on a shared aiohttp session, retried as
    :mod:`bot.slack.retry` says (``retry_backoff_s`` the first wait after a 5xx or a dropped
    connection), never logging a body (API_LOGGER)."""

    def __init__(self, *, retry_backoff_s: float = BACKOFF_S, **kwargs: Any) -> None:
        super().__init__(
            retry_handlers=retry_handlers(backoff_s=retry_backoff_s), logger=API_LOGGER, **kwargs
        )
        self.retry_backoff_s = retry_backoff_s

    async def api_call(self, api_method: str, *args: Any, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, *args, **kwargs)
        except asyncio.CancelledError:
            raise
        except _LIBRARY_ERRORS as e:
            raise failure(api_method, e) from e

    async def _request(
        self, *, http_verb: str, api_url: str, req_args: dict[str, Any]
    ) -> dict[str, Any]:
        # slack_sdk applies `timeout` only to a session it creates itself; a shared one
        # (one connection pool for every call) would otherwise wait for its own 30 s.
        timed = {**req_args, "timeout": aiohttp.ClientTimeout(total=self.timeout)}
        result: dict[str, Any] = await super()._request(
            http_verb=http_verb, api_url=api_url, req_args=timed
        )
        return result


async def post_to_response_url(
    url: str,
    *,
    session: aiohttp.ClientSession | None,
    timeout_s: float,
    backoff_s: float = BACKOFF_S,
    **payload: Any,
) -> None:
    """POST ``payload`` (``text``, ``blocks``, ``response_type``...) to a ``response_url``,
    with the Web API's retries, within ``timeout_s`` in all. Raises SlackCallFailed (method
    ``response_url``) unless Slack took it."""
    webhook = AsyncWebhookClient(
        url,
        session=session,
        timeout=max(1, round(timeout_s)),
        retry_handlers=retry_handlers(backoff_s=backoff_s),
        logger=API_LOGGER,
    )
    try:
        async with asyncio.timeout(timeout_s):
            resp = await webhook.send(**payload)
    except asyncio.CancelledError:
        raise
    except _LIBRARY_ERRORS as e:
        raise failure(RESPONSE_URL, e) from e
    refused = _refusal(resp.body)
    if resp.status_code != 200 or refused:
        raise SlackCallFailed(
            RESPONSE_URL, refused or _http_code(resp.status_code), status=resp.status_code
        )


def _refusal(body: str | None) -> str | None:
    """Slack's error code in a response_url answer (``{"ok": false, "error": ...}``), if
    any; a plain ``ok`` or an unreadable body is no refusal."""
    try:
        parsed = json.loads(body or "")
    except ValueError:
        return None
    if isinstance(parsed, dict) and parsed.get("ok") is False:
        return str(parsed.get("error") or "refused")
    return None
