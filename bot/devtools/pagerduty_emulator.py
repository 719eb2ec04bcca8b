"""A fake PagerDuty REST API v2, faked at the wire in PagerDuty's own JSON formats.

It serves ``GET /oncalls`` (filters ``schedule_ids[]``, ``escalation_policy_ids[]``,
``user_ids[]``; ``since``/``until``, ``earliest``, ``include[]=users``; classic pagination with
``limit``/``offset``/``more``) and ``GET /users/{id}``. Every call must carry
``Authorization: Token token=<token>`` (else 401) and ``Accept:
application/vnd.pagerduty+json;version=2`` (else 406). Faults and the record of calls come
from :class:`~bot.devtools.fake_api.FakeApiServer` (``fail``, ``slow``, ``refuse``, ``heal``).

In process::

    async with PagerDutyEmulator(users=[...], oncalls=[...]) as pd:
        ...  # base_url = pd.url

Standalone, ``python -m bot.devtools.pagerduty_emulator --data oncall.json`` prints
``PAGERDUTY_API_URL=...`` and ``PAGERDUTY_TOKEN=...``; the JSON file holds ``users`` and
``oncalls`` lists of the dataclasses' fields (times as Unix seconds or null).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from bot.devtools.fake_api import FakeApiServer
from bot.devtools.loopback import read_json_file, run_standalone, standalone_parser

JSON = dict[str, Any]

DEFAULT_TOKEN: Final = "pd-emulator-token-0001"  # noqa: S105 - a fake token for a fake API
ACCEPT_V2: Final = "application/vnd.pagerduty+json;version=2"
#: PagerDuty's classic pagination: default page of 25, at most 100.
DEFAULT_LIMIT: Final = 25
MAX_LIMIT: Final = 100
#: The address PagerDuty's "self"/"html_url" links point at in this fake.
_WEB: Final = "https://grantbot-demo.pagerduty.com"


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
    parser = standalone_parser("A fake PagerDuty REST API v2.")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--data", help="JSON file: {users: [...], oncalls: [...]}")
    opts = parser.parse_args(argv)
    data: JSON = read_json_file(opts.data)
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

    return run_standalone(emulator, lines)


if __name__ == "__main__":
    sys.exit(main())
