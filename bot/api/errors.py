"""The API's answers for what no handler of it serves: an unknown path or a wrong method
under ``/api/v1/`` is a JSON :class:`~bot.api.models.ErrorBody` (``not_found``,
``method_not_allowed`` with ``Allow``), as every other API error is, not aiohttp's plain
text. Paths outside the API (Slack, health, metrics) are left as they are."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.api.models import ErrorBody
from bot.api.routes import PREFIX as API_PREFIX

#: The most characters of a caller's path or id an error quotes.
ECHO_CHARS: Final = 64


def shown(text: str) -> str:
    """``text`` as an error quotes it: at most :data:`ECHO_CHARS` characters, then "…"."""
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


def _answer(status: int, error: str, message: str, **headers: str) -> web.Response:
    body = ErrorBody(error=error, message=message)
    return web.json_response(
        body.model_dump(mode="json", exclude_none=True), status=status, headers=headers
    )


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON 404 and 405 for paths under the API's prefix (see module doc)."""
    if not (request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return _answer(404, "not_found", f"no such API path: {shown(request.path)}")
    except web.HTTPMethodNotAllowed as e:
        allowed = ", ".join(sorted(e.allowed_methods))
        return _answer(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {shown(request.path)}; use {allowed}",
            Allow=allowed,
        )
