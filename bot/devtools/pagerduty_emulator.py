"""A fake PagerDuty REST API v2, faked at the wire in PagerDuty's own JSON formats.

It serves ``GET /oncalls`` (filters ``schedule_ids[]``, ``escalation_policy_ids[]``,
``user_ids[]``; ``since``/``until``, ``earliest``, ``include[]=users``; classic pagination with
``limit``/``offset``/``more``) and ``GET /users/{id}``. Every call must carry
``Authorization: Token token=<token>`` (else 401) and ``Accept:
application/vnd.pagerduty+json;version=2`` (else 406). Faults: :meth:`FakeApiServer.fail`
(every call answers 5xx), :meth:`FakeApiServer.slow` (answers after a delay),
:meth:`FakeApiServer.refuse` (the port refuses connections). Every call is recorded.

In process::

    async with PagerDutyEmulator(users=[...], oncalls=[...]) as pd:
        ...  # base_url = pd.url

Standalone, ``python -m bot.devtools.pagerduty_emulator --data oncall.json`` prints
``PAGERDUTY_API_URL=...`` and ``PAGERDUTY_TOKEN=...``; the JSON file holds ``users`` and
``oncalls`` lists of the dataclasses' fields (times as Unix seconds or null).

:class:`FakeApiServer` (lifecycle, faults, recording) is shared with the Opsgenie fake.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_TOKEN: Final = "pd-emulator-token-0001"  # noqa: S105 - a fake token for a fake API
ACCEPT_V2: Final = "application/vnd.pagerduty+json;version=2"
#: PagerDuty's classic pagination: default page of 25, at most 100.
DEFAULT_LIMIT: Final = 25
MAX_LIMIT: Final = 100
#: The address PagerDuty's "self"/"html_url" links point at in this fake.
_WEB: Final = "https://grantbot-demo.pagerduty.com"


# --- the shared wire-fake machinery ---------------------------------------------------------


class FaultMode(StrEnum):
    NONE = "none"
    ERROR = "error"  # every API call answers error_status
    SLOW = "slow"  # every API call answers after slow_delay_s
    REFUSE = "refuse"  # the listener is closed; open connections are dropped


@dataclass(frozen=True, slots=True)
class Recorded:
    """One API call the fake received (its Authorization header is never kept)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    at: float

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


class FakeApiServer:
    """An aiohttp server on ``host`` (port 0: any free one) with fault modes and a record of
    calls. Subclasses add their routes in :meth:`routes`."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self._host, self._port = host, port
        self.clock = clock
        self.mode = FaultMode.NONE
        self.error_status = 500
        self.slow_delay_s = 0.0
        self.recorded: list[Recorded] = []
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._stopping = asyncio.Event()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # --- lifecycle ---
    async def start(self) -> Self:
        app = web.Application(middlewares=[self._middleware])
        self.routes(app)
        self._stopping.clear()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await self._listen()
        return self

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self._host, self._port)
        await self._site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._site = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The API's base URL (no trailing slash), for a policy's ``base_url``."""
        return f"http://{self._host}:{self._port}"

    # --- faults ---
    def fail(self, *, status: int = 500) -> None:
        """Every API call answers ``status`` until :meth:`heal`."""
        self.mode, self.error_status = FaultMode.ERROR, status

    def slow(self, *, delay_s: float) -> None:
        """Every API call answers only after ``delay_s`` (or at stop) until :meth:`heal`."""
        self.mode, self.slow_delay_s = FaultMode.SLOW, delay_s

    async def refuse(self) -> None:
        """Close the listener: new connections are refused, open ones dropped."""
        self.mode = FaultMode.REFUSE
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def heal(self) -> None:
        """Back to normal answers (listening again on the same port after :meth:`refuse`)."""
        self.mode = FaultMode.NONE
        if self._site is None and self._runner is not None:
            await self._listen()

    # --- recording ---
    def calls(self, path: str | None = None) -> list[Recorded]:
        """Recorded calls, optionally only those to ``path`` (e.g. ``/oncalls``)."""
        return [c for c in self.recorded if path is None or c.path == path]

    def reset(self) -> None:
        self.recorded.clear()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.mode is FaultMode.REFUSE:
            # A keep-alive connection opened before refuse(): drop it like a dead host would.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)  # never reaches the client
        if self.mode is FaultMode.SLOW:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.slow_delay_s)
        if self.mode is FaultMode.ERROR:
            response: web.StreamResponse = self.error_response(self.error_status)
        else:
            response = await handler(request)
        query = tuple((k, v) for k, v in request.query.items())
        self.recorded.append(
            Recorded(request.method, request.path, query, response.status, self.clock())
        )
        return response

    def error_response(self, status: int) -> web.Response:
        """How the service answers a server error; subclasses speak their API's format."""
        return web.json_response({"message": "Internal Server Error"}, status=status)


async def serve_forever(server: FakeApiServer, lines: Callable[[], Sequence[str]]) -> None:
    """Run ``server`` until SIGINT/SIGTERM, printing ``lines()`` (KEY=value) once started."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        for line in lines():
            print(line, flush=True)
        await stop.wait()


# --- PagerDuty ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PagerDutyUser:
    id: str
    name: str
    email: str
    time_zone: str = "Etc/UTC"

    def reference(self) -> JSON:
        return {
            "id": self.id,
            "type": "user_reference",
            "summary": self.name,
            "self": f"https://api.pagerduty.com/users/{self.id}",
            "html_url": f"{_WEB}/users/{self.id}",
        }

    def full(self) -> JSON:
        return {
            **self.reference(),
            "type": "user",
            "name": self.name,
            "email": self.email,
            "time_zone": self.time_zone,
            "color": "green",
            "role": "user",
            "avatar_url": "https://secure.gravatar.com/avatar/0.png",
            "description": "",
            "invitation_sent": False,
            "job_title": "",
            "teams": [],
            "contact_methods": [],
            "notification_rules": [],
        }


@dataclass(frozen=True, slots=True)
class PagerDutyOnCall:
    """``user_id`` is on call for ``escalation_policy_id`` at ``escalation_level`` (through
    ``schedule_id``, or directly when None) from ``start`` to ``end`` (Unix seconds; None is
    open-ended)."""

    user_id: str
    escalation_policy_id: str
    schedule_id: str | None = None
    escalation_level: int = 1
    start: float | None = None
    end: float | None = None


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref(kind: str, path: str, id_: str, names: Mapping[str, str]) -> JSON:
    return {
        "id": id_,
        "type": f"{kind}_reference",
        "summary": names.get(id_, id_),
        "self": f"https://api.pagerduty.com/{path}/{id_}",
        "html_url": f"{_WEB}/{path}/{id_}",
    }


class _BadInput(Exception):
    pass


def _pd_error(status: int, message: str, errors: Sequence[str] = ()) -> web.Response:
    return web.json_response({"error": {"message": message, "errors": list(errors)}}, status=status)


class PagerDutyEmulator(FakeApiServer):
    """The fake PagerDuty. ``users``, ``oncalls``, ``schedules`` (id -> name) and
    ``escalation_policies`` (id -> name) may be changed while it runs. With
    ``embed_users=False`` it ignores ``include[]=users`` (so clients must GET /users/{id})."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        users: Sequence[PagerDutyUser] = (),
        oncalls: Sequence[PagerDutyOnCall] = (),
        schedules: Mapping[str, str] | None = None,
        escalation_policies: Mapping[str, str] | None = None,
        embed_users: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock)
        self.token = token
        self.users = {u.id: u for u in users}
        self.oncalls = list(oncalls)
        self.schedules = dict(schedules or {})
        self.escalation_policies = dict(escalation_policies or {})
        self.embed_users = embed_users

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/oncalls", self._handle_oncalls)
        app.router.add_get("/users/{id}", self._handle_user)

    def error_response(self, status: int) -> web.Response:
        return _pd_error(status, "Internal Server Error" if status >= 500 else "Error")

    def _refusal(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Token token={self.token}":
            return _pd_error(401, "Unauthorized")
        accept = request.headers.get("Accept", "").replace(" ", "")
        if ACCEPT_V2 not in accept.split(","):
            return _pd_error(406, "Not Acceptable", [f"Accept must be {ACCEPT_V2}"])
        return None

    async def _handle_user(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        user = self.users.get(request.match_info["id"])
        if user is None:
            return _pd_error(404, "Not Found")
        return web.json_response({"user": user.full()})

    def _time(self, request: web.Request, name: str) -> float:
        raw = request.query.get(name)
        if raw is None:
            return self.clock()
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError as e:
            raise _BadInput(f"{name} is not an ISO 8601 date") from e
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()

    def _int(self, request: web.Request, name: str, default: int, low: int, high: int) -> int:
        raw = request.query.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise _BadInput(f"{name} must be an integer from {low} to {high}")
        return int(raw)

    async def _handle_oncalls(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        q = request.query
        try:
            since, until = self._time(request, "since"), self._time(request, "until")
            limit = self._int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
            offset = self._int(request, "offset", 0, 0, 10**9)
            if until < since:
                raise _BadInput("until must not be before since")
        except _BadInput as e:
            return _pd_error(400, "Invalid Input Provided", [str(e)])
        schedule_ids = set(q.getall("schedule_ids[]", []))
        policy_ids = set(q.getall("escalation_policy_ids[]", []))
        user_ids = set(q.getall("user_ids[]", []))
        embed = self.embed_users and "users" in q.getall("include[]", [])
        matching = [
            oc
            for oc in self.oncalls
            if (not schedule_ids or oc.schedule_id in schedule_ids)
            and (not policy_ids or oc.escalation_policy_id in policy_ids)
            and (not user_ids or oc.user_id in user_ids)
            and (oc.start is None or oc.start <= until)
            and (oc.end is None or oc.end > since)
        ]
        matching.sort(key=lambda oc: (oc.escalation_level, oc.start or 0.0, oc.user_id))
        if q.get("earliest") == "true":
            firsts: dict[tuple[str, int, str], PagerDutyOnCall] = {}
            for oc in matching:
                firsts.setdefault((oc.escalation_policy_id, oc.escalation_level, oc.user_id), oc)
            matching = list(firsts.values())
        page = matching[offset : offset + limit]
        return web.json_response(
            {
                "oncalls": [self._render(oc, embed=embed) for oc in page],
                "limit": limit,
                "offset": offset,
                "more": offset + limit < len(matching),
                "total": None,
            }
        )

    def _render(self, oc: PagerDutyOnCall, *, embed: bool) -> JSON:
        user = self.users.get(oc.user_id) or PagerDutyUser(oc.user_id, oc.user_id, "")
        schedule = (
            None
            if oc.schedule_id is None
            else _ref("schedule", "schedules", oc.schedule_id, self.schedules)
        )
        return {
            "escalation_policy": _ref(
                "escalation_policy",
                "escalation_policies",
                oc.escalation_policy_id,
                self.escalation_policies,
            ),
            "escalation_level": oc.escalation_level,
            "schedule": schedule,
            "user": user.full() if embed else user.reference(),
            "start": _iso(oc.start),
            "end": _iso(oc.end),
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake PagerDuty REST API v2.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--data", help="JSON file: {users: [...], oncalls: [...]}")
    opts = parser.parse_args(argv)
    data: JSON = {}
    if opts.data:
        with open(opts.data, encoding="utf-8") as f:
            data = json.load(f)
    emulator = PagerDutyEmulator(
        token=opts.token,
        users=[PagerDutyUser(**u) for u in data.get("users", [])],
        oncalls=[PagerDutyOnCall(**o) for o in data.get("oncalls", [])],
        schedules=data.get("schedules"),
        escalation_policies=data.get("escalation_policies"),
        host=opts.host,
        port=opts.port,
    )

    def lines() -> list[str]:
        return [f"PAGERDUTY_API_URL={emulator.url}", f"PAGERDUTY_TOKEN={emulator.token}"]

    asyncio.run(serve_forever(emulator, lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
