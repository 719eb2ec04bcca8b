"""The API's route table, and the OpenAPI document generated from it.

The handlers are registered from :data:`ROUTES` (bot.api.handlers), and
``/api/v1/openapi.json`` is built from the same table and the same pydantic models the
handlers validate and answer with, so the description cannot drift from what is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot.api.models import CreateRequest, ErrorBody, RequestState, SealedCredential

PREFIX: Final = "/api/v1"
OPENAPI_PATH: Final = f"{PREFIX}/openapi.json"
#: The longest ``?wait=`` a state read may ask for.
MAX_WAIT_S: Final = 300
API_VERSION: Final = "1.0.0"

ERROR_TEXT: Final = {
    400: "a malformed body, a bad duration or a bad parameter; the message names it",
    401: "no bearer token, or not a client's token",
    403: "the policy refuses this request (the message names the rule and what is allowed)",
    404: "no such request of this client",
    409: "not in a state that allows this (not approved yet, being issued)",
    410: "the request has ended; its credential is gone",
    429: "too many calls from this client; Retry-After says when to call again",
    503: "grantbot's store is unavailable; try again shortly",
}


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: ``name`` is its operationId and the handler's name."""

    name: str
    method: str
    path: str
    summary: str
    ok: int
    answer: type[BaseModel]
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = (400, 401, 404, 429, 503)
    wait_param: bool = False


ROUTES: Final = (
    Route(
        name="create_request",
        method="POST",
        path=f"{PREFIX}/requests",
        summary="Ask for access; people decide in Slack (or the policy auto-approves)",
        ok=201,
        answer=RequestState,
        body=CreateRequest,
        errors=(400, 401, 403, 429, 503),
    ),
    Route(
        name="get_request",
        method="GET",
        path=PREFIX + "/requests/{id}",
        summary="The request's state, waiting up to ?wait= for a decision",
        ok=200,
        answer=RequestState,
        wait_param=True,
    ),
    Route(
        name="get_credential",
        method="GET",
        path=PREFIX + "/requests/{id}/credential",
        summary="The issued credential, sealed to the request's public key (again on retry)",
        ok=200,
        answer=SealedCredential,
        errors=(401, 404, 409, 410, 429, 503),
    ),
    Route(
        name="done",
        method="POST",
        path=PREFIX + "/requests/{id}/done",
        summary="Give the access back now (a pending request is cancelled)",
        ok=200,
        answer=RequestState,
        errors=(401, 404, 409, 429, 503),
    ),
)


def _schemas() -> dict[str, Any]:
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (CreateRequest, "validation"),
        (RequestState, "serialization"),
        (SealedCredential, "serialization"),
        (ErrorBody, "serialization"),
    ]
    _, top = models_json_schema(modes, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(route.ok): {
            "description": "OK" if route.ok == 200 else "Created",
            "content": {"application/json": {"schema": _ref(route.answer)}},
        }
    }
    for status in route.errors:
        responses[str(status)] = {
            "description": ERROR_TEXT[status],
            "content": {"application/json": {"schema": _ref(ErrorBody)}},
        }
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "security": [{"bearer": []}],
        "responses": responses,
    }
    params: list[dict[str, Any]] = []
    if "{id}" in route.path:
        params.append({"name": "id", "in": "path", "required": True, "schema": {"type": "string"}})
    if route.wait_param:
        params.append(
            {
                "name": "wait",
                "in": "query",
                "required": False,
                "description": f"e.g. 60s: wait up to this long (at most {MAX_WAIT_S}s) "
                "for a decision",
                "schema": {"type": "string"},
            }
        )
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    return op


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of :data:`ROUTES`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "grantbot pipelines API",
            "version": API_VERSION,
            "description": "Machine clients ask for just-in-time access; people approve in "
            "Slack; the credential comes back sealed to the request's public key.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
