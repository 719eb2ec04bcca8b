"""A fake Opsgenie Who-is-on-call API, faked at the wire in Opsgenie's own JSON formats.

It serves ``GET /v2/schedules/{identifier}/on-calls`` with ``scheduleIdentifierType`` (``id``,
the default, or ``name``), ``flat`` (``true``: ``onCallRecipients``, a list of usernames, which
are emails; otherwise ``onCallParticipants`` objects) and ``date`` (default: now). Every call
must carry ``Authorization: GenieKey <key>`` (else 401). Answers look like Opsgenie's::

    {"data": {"_parent": {"id": ..., "name": ..., "enabled": true},
              "onCallRecipients": ["carol@example.com"]},
     "took": 0.012, "requestId": "..."}

and errors like ``{"message": ..., "took": ..., "requestId": ...}``. Faults and recording come
from :class:`~bot.devtools.fake_api.FakeApiServer`.

Standalone, ``python -m bot.devtools.opsgenie_emulator --data oncall.json`` prints
``OPSGENIE_API_URL=...`` and ``OPSGENIE_API_KEY=...``; the JSON file maps schedule names to
lists of emails.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from bot.devtools.fake_api import FakeApiServer
from bot.devtools.loopback import read_json_file, run_standalone, standalone_parser

JSON = dict[str, Any]

DEFAULT_API_KEY: Final = "og-emulator-key-0001"
#: What Opsgenie reports as "took" (seconds spent); a fixed small number here.
_TOOK_S: Final = 0.004


@dataclass(frozen=True, slots=True)
class OpsgenieShift:
    """``email`` is on call from ``start`` to ``end`` (Unix seconds; None is open-ended)."""

    email: str
    start: float | None = None
    end: float | None = None

    def covers(self, at: float) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)


@dataclass(slots=True)
class OpsgenieSchedule:
    name: str
    shifts: list[OpsgenieShift]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    enabled: bool = True


def _body(payload: JSON) -> JSON:
    return {**payload, "took": _TOOK_S, "requestId": str(uuid.uuid4())}


def _og_error(status: int, message: str) -> web.Response:
    return web.json_response(_body({"message": message}), status=status)


def _shifts(entries: Sequence[str | OpsgenieShift]) -> list[OpsgenieShift]:
    return [OpsgenieShift(e) if isinstance(e, str) else e for e in entries]


class OpsgenieEmulator(FakeApiServer):
    """The fake Opsgenie. ``schedules`` maps schedule names to who is on call: emails (always
    on call) or :class:`OpsgenieShift` entries. Change it with :meth:`set_on_call`."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        schedules: Mapping[str, Sequence[str | OpsgenieShift]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock)
        self.api_key = api_key
        self.schedules: dict[str, OpsgenieSchedule] = {}
        for name, entries in (schedules or {}).items():
            self.set_on_call(name, entries)

    def set_on_call(self, schedule: str, entries: Sequence[str | OpsgenieShift]) -> None:
        """Who is on call for ``schedule`` (created when new; its id is kept otherwise)."""
        existing = self.schedules.get(schedule)
        if existing is None:
            self.schedules[schedule] = OpsgenieSchedule(schedule, _shifts(entries))
        else:
            existing.shifts = _shifts(entries)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/schedules/{identifier}/on-calls", self._handle_on_calls)

    def error_response(self, status: int) -> web.Response:
        return _og_error(status, "Internal Server Error" if status >= 500 else "Error")

    def _find(self, identifier: str, kind: str) -> OpsgenieSchedule | None:
        if kind == "name":
            return self.schedules.get(identifier)
        return next((s for s in self.schedules.values() if s.id == identifier), None)

    async def _handle_on_calls(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"GenieKey {self.api_key}":
            return _og_error(401, "Could not authenticate")
        q = request.query
        kind = q.get("scheduleIdentifierType", "id")
        if kind not in ("id", "name"):
            return _og_error(422, "Schedule identifier type is not valid")
        at = self.clock()
        if "date" in q:
            try:
                parsed = datetime.fromisoformat(q["date"])
            except ValueError:
                return _og_error(422, "date is not in format yyyy-MM-dd'T'HH:mm:ssZ")
            at = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        identifier = request.match_info["identifier"]
        schedule = self._find(identifier, kind)
        if schedule is None:
            return _og_error(404, f"No schedule exists with {kind} [{identifier}]")
        emails = list(dict.fromkeys(s.email for s in schedule.shifts if s.covers(at)))
        data: JSON = {
            "_parent": {"id": schedule.id, "name": schedule.name, "enabled": schedule.enabled}
        }
        if q.get("flat") == "true":
            data["onCallRecipients"] = emails
        else:
            data["onCallParticipants"] = [
                {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, e)), "name": e, "type": "user"}
                for e in emails
            ]
        return web.json_response(_body({"data": data}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = standalone_parser("A fake Opsgenie Who-is-on-call API.")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--data", help="JSON file: {schedule name: [email, ...]}")
    opts = parser.parse_args(argv)
    data: dict[str, list[str]] = read_json_file(opts.data)
    emulator = OpsgenieEmulator(
        api_key=opts.api_key, schedules=data, host=opts.host, port=opts.port
    )

    def lines() -> list[str]:
        return [f"OPSGENIE_API_URL={emulator.url}", f"OPSGENIE_API_KEY={emulator.api_key}"]

    return run_standalone(emulator, lines)


if __name__ == "__main__":
    sys.exit(main())
