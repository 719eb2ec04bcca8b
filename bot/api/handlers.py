"""The API's handlers on the aiohttp application (``register_api``).

Every call: the bearer token names a client of the policy (else 401), the client's rate
limit is taken (else 429 with Retry-After), the handler runs, and the call is audited
(``API_CALL``, actor ``client:<name>``: route, grant, status). A client sees only its own
requests (another's id is 404, as an unknown one). Bad input gets a 4xx :class:`ErrorBody`
saying exactly what is wrong and changes nothing; an unexpected failure is one log line and
a 500 body, never a traceback to the caller. Calls without a valid token are audited as
``API_REFUSED`` while within the shared limit for unauthenticated calls (so a flood of
guesses cannot flood the audit log).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import ContentEncodingError
from pydantic import BaseModel, ValidationError

from bot.api.auth import ClientTokens
from bot.api.delivery import SEAL_FAILED
from bot.api.errors import api_errors, shown
from bot.api.models import CreateRequest, ErrorBody, RequestState, SealedCredential
from bot.api.routes import MAX_WAIT_S, OPENAPI_PATH, ROUTES, Route, openapi_document
from bot.api.sealing import ALGORITHM, public_key_problem
from bot.domain.clients import client_requester
from bot.domain.duration import parse_duration
from bot.domain.ids import is_grant_id
from bot.domain.model import Grant, Origin, Status
from bot.domain.pipeline import PipelineAsk
from bot.errors import (
    ConcurrencyError,
    GrantbotError,
    NotAuthorized,
    NotFound,
    PolicyDenied,
    ProviderError,
    StoreUnavailable,
    TransitionError,
    UsageError,
)
from bot.log_throttle import Throttle
from bot.service import GrantService
from bot.store.grants import GrantStore

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

API_CALL: Final = "API_CALL"
API_REFUSED: Final = "API_REFUSED"
#: Calls per client per minute; a pipeline waiting with ?wait=60s makes about one.
DEFAULT_RATE_LIMIT: Final = 120
#: The rate-limit bucket shared by calls that bear no valid token.
UNAUTHENTICATED: Final = "-unauthenticated"
#: How often a waiting state read looks at the grant again.
WAIT_POLL_S: Final = 0.2
DONE_REASON: Final = "done: the pipeline gave the access back"


class ApiFailure(Exception):
    """An answer other than success: the status and the :class:`ErrorBody`."""

    def __init__(self, status: int, error: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(error=error, message=message, field=field)


def _failure_of(e: GrantbotError) -> ApiFailure:
    """A grantbot error as the API answers it."""
    table: list[tuple[type[GrantbotError], int, str]] = [
        (PolicyDenied, 403, "refused"),
        (NotAuthorized, 403, "forbidden"),
        (NotFound, 404, "not_found"),
        (TransitionError, 409, "conflict"),
        (ConcurrencyError, 409, "conflict"),
        (StoreUnavailable, 503, "unavailable"),
        (ProviderError, 502, "target_failed"),
        (UsageError, 400, "bad_request"),
    ]
    for kind, status, code in table:
        if isinstance(e, kind):
            return ApiFailure(status, code, str(e))
    return ApiFailure(400, "bad_request", str(e))


def _json(model: BaseModel, *, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


@dataclass(slots=True)
class Call:
    """One authenticated call: the client, and what its audit entry will say."""

    client: str
    grant_id: str | None = None
    deployment: str | None = None


Handler = Callable[[web.Request, Call], Awaitable[web.Response]]


class PipelineApi:
    """The handlers; see the module doc. ``clock`` gives the audit's times."""

    def __init__(
        self,
        *,
        service: GrantService,
        store: GrantStore,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.time,
        rate_limit: int = DEFAULT_RATE_LIMIT,
    ) -> None:
        self.service = service
        self.store = store
        self.clock = clock
        self.tokens = ClientTokens(service.policy, environ=environ)
        self.sealed = store.sealed_credentials
        self.limits = store.api_rate_limit(limit=rate_limit)
        self._refusals = Throttle(log, interval_s=60.0)

    # -- the frame every call goes through ------------------------------------------------

    def wrap(self, route: Route, handler: Handler) -> Callable[[web.Request], Awaitable[Any]]:
        async def serve(request: web.Request) -> web.Response:
            verdict = self.tokens.authenticate(request.headers.get("Authorization"))
            if verdict.client is None:
                return await self._unauthenticated(request, route, verdict.problem or "")
            path_id = request.match_info.get("id")
            call = Call(client=verdict.client, grant_id=shown(path_id) if path_id else None)
            try:
                limit = await self.limits.take(verdict.client, now=time.time())
                if not limit.allowed:
                    raise ApiFailure(
                        429,
                        "rate_limited",
                        f"client {verdict.client} made too many calls; "
                        f"try again in {limit.retry_after_s}s",
                    )
                response = await handler(request, call)
            except ApiFailure as e:
                response = self._error(e, route=route)
            except GrantbotError as e:
                response = self._error(_failure_of(e), route=route)
            except Exception as e:  # one line, never a traceback to the caller
                log.error("%s failed: %s", route.name, type(e).__name__)
                response = self._error(
                    ApiFailure(500, "internal", "grantbot failed to answer; try again"),
                    route=route,
                )
            await self._audit(call, route, status=response.status)
            return response

        return serve

    def _error(self, failure: ApiFailure, *, route: Route) -> web.Response:
        headers = {}
        if failure.status == 429:
            headers["Retry-After"] = failure.body.message.rsplit(" ", 1)[-1].rstrip("s")
        return web.json_response(
            failure.body.model_dump(mode="json", exclude_none=True),
            status=failure.status,
            headers=headers,
        )

    async def _unauthenticated(
        self, request: web.Request, route: Route, problem: str
    ) -> web.Response:
        self._refusals.log("auth", "API call refused: %s (%s)", problem, route.name)
        body = ErrorBody(error="unauthorized", message=problem)
        headers = {"WWW-Authenticate": 'Bearer realm="grantbot"'}
        try:
            if (await self.limits.take(UNAUTHENTICATED, now=time.time())).allowed:
                await self.store.audit.append(
                    API_REFUSED,
                    actor="api",
                    at=self.clock(),
                    reason=problem,
                    details={"route": route.name, "status": 401, "remote": request.remote},
                )
        except GrantbotError as e:
            log.warning("could not audit a refused API call: %s", e)
        return web.json_response(
            body.model_dump(mode="json", exclude_none=True), status=401, headers=headers
        )

    async def _audit(self, call: Call, route: Route, *, status: int) -> None:
        details: dict[str, Any] = {"route": route.name, "status": status}
        if call.deployment is not None:
            details["deployment"] = call.deployment
        try:
            await self.store.audit.append(
                API_CALL,
                actor=client_requester(call.client),
                at=self.clock(),
                grant_id=call.grant_id,
                policy_version=self.service.policy.version,
                details=details,
            )
        except GrantbotError as e:
            log.warning("could not audit an API call of %s: %s", call.client, e)

    # -- reading the request of this client ------------------------------------------------

    async def _own(self, call: Call) -> Grant:
        """The grant named in the path, when it is this client's (else 404 either way)."""
        grant_id = call.grant_id or ""
        try:
            grant = await self.store.get(grant_id) if is_grant_id(grant_id) else None
        except NotFound:
            grant = None
        if grant is None or grant.client != call.client:
            raise ApiFailure(
                404, "not_found", f"no request {shown(grant_id)} of client {call.client}"
            )
        if grant.deployment is not None:
            call.deployment = grant.deployment.id
        return grant

    async def _state(self, grant: Grant) -> RequestState:
        ready = grant.status is Status.ACTIVE and await self.sealed.get(grant.id) is not None
        return RequestState.of(grant, credential_ready=ready)

    # -- the operations ------------------------------------------------------------------

    async def create_request(self, request: web.Request, call: Call) -> web.Response:
        body = await _read_body(request, CreateRequest)
        problem = public_key_problem(body.public_key)
        if problem is not None:
            raise ApiFailure(400, "bad_public_key", problem, field="public_key")
        try:
            duration_s = parse_duration(body.duration) if body.duration is not None else None
        except UsageError as e:
            raise ApiFailure(400, "bad_duration", str(e), field="duration") from e
        deployment = body.deployment.domain() if body.deployment is not None else None
        call.deployment = deployment.id if deployment is not None else None
        result = await self.service.request_access(
            user=client_requester(call.client),
            resource=body.resource,
            role=body.role,
            duration_s=duration_s,
            reason=body.reason,
            origin=Origin(surface="api"),
            pipeline=PipelineAsk(public_key=body.public_key, deployment=deployment),
        )
        call.grant_id = result.grant.id
        # Read again: an auto-approved grant whose credential could not be sealed has been
        # taken back meanwhile (bot.api.delivery), and the answer must say so.
        grant = await self.store.get(result.grant.id) if result.credential else result.grant
        return _json(await self._state(grant), status=201)

    async def get_request(self, request: web.Request, call: Call) -> web.Response:
        wait_s = _wait_of(request)
        grant = await self._own(call)
        deadline = time.monotonic() + wait_s
        state = await self._state(grant)
        while not _settled(state) and time.monotonic() < deadline:
            await asyncio.sleep(min(WAIT_POLL_S, max(0.0, deadline - time.monotonic())))
            state = await self._state(await self.store.get(grant.id))
        return _json(state)

    async def get_credential(self, request: web.Request, call: Call) -> web.Response:
        grant = await self._own(call)
        if grant.terminal:
            why = f": {SEAL_FAILED}" if grant.end_reason == SEAL_FAILED else ""
            raise ApiFailure(
                410, "gone", f"{grant.id} is {grant.status.value.lower()}; no credential{why}"
            )
        sealed = await self.sealed.get(grant.id) if grant.status is Status.ACTIVE else None
        if sealed is None:
            raise ApiFailure(
                409,
                "not_ready",
                f"{grant.id} is {grant.status.value.lower()}; the credential is not ready",
            )
        answer = SealedCredential(
            id=grant.id,
            algorithm=ALGORITHM,
            sealed=base64.b64encode(sealed).decode("ascii"),
            expires_at=grant.expires_at,
        )
        return _json(answer)

    async def done(self, request: web.Request, call: Call) -> web.Response:
        grant = await self._own(call)
        if not grant.terminal:
            grant = await self.service.revoke(grant.id, user=grant.requester, reason=DONE_REASON)
        await self.sealed.delete(grant.id)
        return _json(await self._state(grant))


def _settled(state: RequestState) -> bool:
    """A waiting read may answer: decided, and if active, its credential sealed."""
    return state.decided and (state.state is not Status.ACTIVE or state.credential_ready)


def _wait_of(request: web.Request) -> int:
    text = request.query.get("wait")
    if text is None or re.fullmatch(r"0*[smhd]?", text):  # absent, or no wait at all
        return 0
    try:
        wait_s = parse_duration(text)
    except UsageError as e:
        raise ApiFailure(400, "bad_wait", f"wait: {e}", field="wait") from e
    if wait_s > MAX_WAIT_S:
        raise ApiFailure(
            400, "bad_wait", f"wait may be at most {MAX_WAIT_S}s, not {text}", field="wait"
        )
    return wait_s


async def _read_body(request: web.Request, model: type[M]) -> M:
    """The JSON body as ``model``; 400 naming the first thing wrong."""
    if request.content_type != "application/json":
        raise ApiFailure(
            400,
            "malformed_body",
            f"send Content-Type: application/json, not {request.content_type or 'none'}",
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as e:  # counted as read, so a gzip bomb is caught too
        raise ApiFailure(
            413,
            "body_too_large",
            f"the body is larger than {request.client_max_size} bytes (after decompression)",
        ) from e
    except (ContentEncodingError, ClientPayloadError) as e:
        raise ApiFailure(400, "malformed_body", "the body could not be decoded") from e
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiFailure(400, "malformed_body", f"the body is not JSON: {e}") from e
    except RecursionError as e:
        raise ApiFailure(400, "malformed_body", "the body is nested too deeply") from e
    if not isinstance(data, dict):
        raise ApiFailure(400, "malformed_body", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        what = first["msg"]
        if first["type"] == "extra_forbidden":
            what = "is not a known key"
        elif first["type"] == "missing":
            what = "is required"
        raise ApiFailure(400, "malformed_body", f"{where}: {what}", field=where or None) from e


def register_api(app: web.Application, api: PipelineApi) -> PipelineApi:
    """Add the API's routes (and ``/api/v1/openapi.json``) to ``app``, answered by ``api``."""
    app.middlewares.append(api_errors)  # JSON 404/405 under /api/v1, as the handlers answer
    for route in ROUTES:
        app.router.add_route(route.method, route.path, api.wrap(route, getattr(api, route.name)))
    document = openapi_document()

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get(OPENAPI_PATH, openapi)
    return api
