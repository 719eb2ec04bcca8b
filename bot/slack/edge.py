"""The Slack edge: the one door every delivery from Slack comes through, over HTTP or Socket
Mode, before slack_bolt or any listener sees it.

HTTP (``POST /slack/events``), in this order; each step refuses before the next runs:

1. The body's bytes are read (aiohttp caps them at 1 MiB: 413).
2. The signature is checked on those bytes (:func:`signature_problem`): missing, a timestamp
   that is not plain digits, more than 5 minutes off, a malformed or wrong signature → 401.
   Nothing has been parsed yet.
3. The body is read by its real form keys and its shape checked (:mod:`bot.slack.inbound`)
   → 400. Events API traffic grantbot does not handle → 200, nothing done.
4. The workspace is judged (:mod:`bot.slack.workspace`): a foreign one → 403, an unknown one
   (auth.test has not answered) → 503; a slash command gets 200 with an ephemeral answer
   instead, since that is what Slack shows the person.
5. Bolt gets the request with the body already parsed (:class:`ParsedRequest`).

Socket Mode (the websocket is authenticated by the app token; nothing there is signed):
steps 3-5 for each envelope's payload (:class:`EdgeSocketModeHandler`). A refused envelope is
acknowledged (redelivering it could not change the answer), except while the workspace is
unknown, when it is left unacknowledged so Slack tries again.

Every refusal is one WARNING line without a traceback, the same cause at most once a minute
(the next line carries how many were suppressed), and counts in
``grantbot_slack_requests_refused_total``. A refusal stores nothing and calls no Slack API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot import metrics
from bot.errors import MalformedRequest
from bot.log_throttle import Throttle
from bot.slack.inbound import Inbound, Kind, read_envelope, read_http
from bot.slack.workspace import InstalledWorkspace, Verdict

log = logging.getLogger(__name__)

#: Slack: "If the request timestamp is more than five minutes from local time, it could be a
#: replay attack, so let's ignore it" (docs.slack.dev, Verifying requests from Slack).
MAX_CLOCK_SKEW_S: Final = 5 * 60
#: Only plain ASCII digits: ``int()`` would also take " 17", "1_7" or Arabic-Indic digits.
_TIMESTAMP: Final = re.compile(r"[0-9]{1,15}")
_SIGNATURE: Final = re.compile(r"v0=[0-9a-f]{64}")

FOREIGN_WORKSPACE_TEXT: Final = (
    "This workspace is not the one grantbot is installed in; nothing was done."
)
WORKSPACE_UNKNOWN_TEXT: Final = (
    "grantbot has not yet confirmed which Slack workspace it is installed in, so nothing was "
    "done. Try again in a minute."
)


class Cause(StrEnum):
    """Why a delivery was refused (a metric label and the log throttle's key: few values)."""

    UNSIGNED = "unsigned"
    BAD_TIMESTAMP = "bad_timestamp"
    STALE = "stale"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    FOREIGN_WORKSPACE = "foreign_workspace"
    WORKSPACE_UNKNOWN = "workspace_unknown"


def signature_problem(
    raw: bytes, *, timestamp: str | None, signature: str | None, secret: bytes, now: float
) -> tuple[Cause, str] | None:
    """None when ``signature`` is Slack's v0 signature of ``raw`` at ``timestamp`` (within
    :data:`MAX_CLOCK_SKEW_S` of ``now``); otherwise the cause and a short description.

    slack_sdk's SignatureVerifier is not used here: it raises on a non-numeric timestamp
    (``int()``), on a body that is not UTF-8 (it decodes the bytes first) and on a
    non-ASCII signature (``hmac.compare_digest`` on str), each of which an unauthenticated
    request can send. This checks the formats first and signs the bytes as received."""
    if not signature:
        return Cause.UNSIGNED, "no X-Slack-Signature"
    if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
        return Cause.BAD_TIMESTAMP, "X-Slack-Request-Timestamp is missing or not a number"
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW_S:
        return Cause.STALE, "X-Slack-Request-Timestamp is more than 5 minutes off"
    if not _SIGNATURE.fullmatch(signature):
        return Cause.BAD_SIGNATURE, "X-Slack-Signature is not a v0 signature"
    base = b"v0:" + timestamp.encode("ascii") + b":" + raw
    expected = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        return Cause.BAD_SIGNATURE, "X-Slack-Signature does not match the body"
    return None


class ParsedRequest(AsyncBoltRequest):
    """An HTTP request from Slack whose body the edge has already parsed.

    slack_bolt 1.30's ``AsyncBoltRequest`` parses a raw HTTP body itself with
    ``slack_bolt.request.internals.parse_body``, which treats every form body that merely
    *contains* the text "payload" as an interactivity payload: ``/access help payload`` lost
    all its fields and got a 404. Bolt takes an already-parsed dict only in Socket Mode, so
    this is built that way and then marked as the HTTP request it is, with its raw body (so
    Bolt's own signature check still runs on it, and nothing ever re-parses it)."""

    def __init__(
        self,
        *,
        raw_body: str,
        body: dict[str, Any],
        headers: Mapping[str, str | Sequence[str]],
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(body=body, headers=dict(headers), context=context, mode="socket_mode")
        self.raw_body = raw_body
        self.mode = "http"

    def to_copyable(self) -> AsyncBoltRequest:
        """A copy for Bolt's lazy listeners, parsed as this one is (Bolt's own would parse
        ``raw_body`` again with ``parse_body``)."""
        headers: dict[str, str | Sequence[str]] = {k: list(v) for k, v in self.headers.items()}
        return ParsedRequest(
            raw_body=self.raw_body,
            body=self.body,
            headers=headers,
            context=self.context.to_copyable(),
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A delivery turned away: the HTTP status and body, and what the log says."""

    status: int
    cause: Cause
    detail: str
    answer: dict[str, Any]
    #: False: tell Slack not to redeliver (``X-Slack-No-Retry``); it could not help.
    retry: bool = False
    fields: dict[str, Any] = field(default_factory=dict)

    def http(self) -> web.Response:
        headers = {} if self.retry else {"X-Slack-No-Retry": "1"}
        return web.json_response(self.answer, status=self.status, headers=headers)

    def socket_ack(self) -> BoltResponse | None:
        """The envelope's acknowledgement: the answer when Slack shows it (a 200), nothing
        while the workspace is unknown (Slack redelivers), else an empty ack."""
        if self.status == 200:
            return BoltResponse(
                status=200,
                body=json.dumps(self.answer),
                headers={"content-type": "application/json"},
            )
        return None if self.retry else BoltResponse(status=200, body="")


class Edge:
    """Checks every delivery and hands Bolt only what passed (see the module docstring).

    ``now`` is Slack's clock for signature freshness (wall time, never a test's fake bot
    clock). ``refusals`` writes the refusal lines; replace it to observe or re-time them."""

    def __init__(
        self,
        app: AsyncApp,
        *,
        signing_secret: str | None,
        workspace: InstalledWorkspace,
        now: Callable[[], float] = time.time,
    ) -> None:
        """``signing_secret`` None (Socket Mode, where nothing is signed): every HTTP
        delivery is refused."""
        self.app = app
        self.workspace = workspace
        self._secret = signing_secret.encode() if signing_secret else None
        self._now = now
        self.refusals = Throttle(log, level=logging.WARNING)
        self.ignored = Throttle(log, level=logging.INFO)

    # --- HTTP ---
    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler for Slack's request URL."""
        raw = await request.read()
        problem = (
            signature_problem(
                raw,
                timestamp=request.headers.get("X-Slack-Request-Timestamp"),
                signature=request.headers.get("X-Slack-Signature"),
                secret=self._secret,
                now=self._now(),
            )
            if self._secret is not None
            else (Cause.BAD_SIGNATURE, "no signing secret is configured")
        )
        if problem is not None:
            cause, detail = problem
            return self._refuse(Refusal(401, cause, detail, {"error": "invalid request"}))
        try:
            body, inbound = read_http(raw, content_type=request.content_type)
        except MalformedRequest as e:
            return self._refuse(_malformed(e))
        refusal = self.admit(inbound)
        if refusal is not None:
            return self._refuse(refusal)
        if inbound.kind is Kind.IGNORED:
            self._ignore(inbound)
            return web.Response(status=200)
        bolt_request = ParsedRequest(
            raw_body=raw.decode("utf-8"), body=body, headers=dict(request.headers)
        )
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    def _refuse(self, refusal: Refusal) -> web.Response:
        self.note(refusal)
        return refusal.http()

    # --- Socket Mode ---
    async def handle_envelope(self, req: SocketModeRequest) -> BoltResponse | None:
        """Bolt's answer to a Socket Mode envelope, or the edge's own; None: do not ack."""
        try:
            inbound = read_envelope(req.type, req.payload)
        except MalformedRequest as e:
            refusal = _malformed(e)
            self.note(refusal)
            return refusal.socket_ack()
        refused = self.admit(inbound)
        if refused is not None:
            self.note(refused)
            return refused.socket_ack()
        if inbound.kind is Kind.IGNORED:
            self._ignore(inbound)
            return BoltResponse(status=200, body="")
        bolt_request = AsyncBoltRequest(
            mode="socket_mode", body=req.payload, headers=build_headers(req)
        )
        return await self.app.async_dispatch(bolt_request)

    # --- shared ---
    def admit(self, inbound: Inbound) -> Refusal | None:
        """None when ``inbound`` may go on to Bolt; else the workspace refusal."""
        if not inbound.checks_workspace:
            return None
        verdict = self.workspace.judge(inbound.claim)
        if verdict is Verdict.ADMIT:
            return None
        command = inbound.kind is Kind.COMMAND
        claim = inbound.claim
        fields = {
            "surface": inbound.name,
            "teams": sorted(claim.teams | claim.actor_teams),
            "enterprises": sorted(claim.enterprises),
        }
        if verdict is Verdict.FOREIGN:
            return Refusal(
                200 if command else 403,
                Cause.FOREIGN_WORKSPACE,
                f"{inbound.name} from another workspace; grantbot is installed in "
                f"{self.workspace.known}",
                _answer(FOREIGN_WORKSPACE_TEXT, command=command),
                fields=fields,
            )
        why = self.workspace.conflict or "auth.test has not answered and SLACK_TEAM_ID is unset"
        return Refusal(
            200 if command else 503,
            Cause.WORKSPACE_UNKNOWN,
            f"{inbound.name} refused: the installed workspace is not known ({why})",
            _answer(WORKSPACE_UNKNOWN_TEXT, command=command),
            retry=not command,
            fields=fields,
        )

    def note(self, refusal: Refusal) -> None:
        """Count the refusal; log it unless the same cause was logged within the minute."""
        metrics.record_slack_refused(refusal.cause)
        self.refusals.log(
            refusal.cause,
            "slack request refused (%d %s): %s",
            refusal.status,
            refusal.cause,
            refusal.detail,
            extra={"cause": str(refusal.cause), "status": refusal.status, **refusal.fields},
        )

    def _ignore(self, inbound: Inbound) -> None:
        self.ignored.log("ignored", "slack %s ignored: grantbot does not handle it", inbound.name)


def _malformed(error: MalformedRequest) -> Refusal:
    return Refusal(400, Cause.MALFORMED, str(error), {"error": f"malformed request: {error}"})


def _answer(text: str, *, command: bool) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text} if command else {"error": text}


class EdgeSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's aiohttp Socket Mode handler with every envelope passed through the edge."""

    def __init__(self, edge: Edge, app_token: str) -> None:
        super().__init__(edge.app, app_token)
        self.edge = edge

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.time()
        response = await self.edge.handle_envelope(req)
        if response is not None:
            await send_async_response(client, req, response, started)
