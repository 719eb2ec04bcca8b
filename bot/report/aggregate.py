"""Folding the audit log into an access review, one entry at a time. Pure (``now`` given).

Fed every entry from the first (the chain must be walked whole anyway), it keeps only what
is open: a small record per grant that has not ended yet, counters per person, resource,
day and policy version, fixed-size distributions, and rows for the long lists spooled to
disk. So memory follows the number of grants live at once, not the length of the log.

What each figure is made of (events and fields as ``bot/store/grants.py`` and the service
write them; entries from older versions that lack a field are read the old way):

- standing access: ``ISSUE`` +1 and ``REVOKE``/``EXPIRE``/``FORCE_CLOSE`` -1 per resource
  (the resource comes from the grant's ``REQUEST`` entry, else its grant record);
- per day: ``REQUEST``; ``APPROVE`` reaching ``to: APPROVED``; ``DENY``; ``AUTO_APPROVE``;
  ``TIME_OUT``;
- time to decision: the decision's ``at`` minus the ``REQUEST``'s;
- revocation lateness: an end's ``at`` minus ``expires_at`` (from ``ISSUE``/``EXTEND``
  details), for ends at or after expiry;
- REVOKE_FAILED episodes: the first ``REVOKE_FAIL`` from ``ACTIVE`` to the end, and
  ``REVOKE_ABANDONED``;
- on-call grants: ``AUTO_APPROVE`` with ``details.on_call`` (older entries: "on call for X"
  in the reason), or a final ``APPROVE`` by someone an ``ESCALATED`` entry asked as on call;
- policy versions: ``POLICY_LOADED`` (serve's start), ``POLICY_RELOADED``, and the
  ``policy_version`` every entry carries (first seen, for logs from before POLICY_LOADED).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bot.domain.duration import format_utc
from bot.domain.model import Grant
from bot.report.spool import Spool
from bot.report.standing import StandingAccess
from bot.report.stats import Histogram, Sketch

DAY: Final = 86400
TERMINAL: Final = frozenset({"EXPIRED", "REVOKED", "DENIED", "CANCELLED", "TIMED_OUT", "FAILED"})
ENDS: Final = frozenset({"REVOKE", "EXPIRE", "FORCE_CLOSE"})
DAILY_SERIES: Final = ("requests", "approvals", "denials", "auto-approvals", "time-outs")
_DAILY_INDEX: Final = {"REQUEST": 0, "APPROVE": 1, "DENY": 2, "AUTO_APPROVE": 3, "TIME_OUT": 4}
_ON_CALL_REASON: Final = re.compile(r"on call for (\S+?)(?:,|$)")
#: Longest episodes drawn in the chart (all are in the table).
EPISODES_CHARTED: Final = 40
#: What a grant without its REQUEST entry or record is filed under.
UNKNOWN: Final = "(unknown)"

DECISION_EDGES: Final = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400)
DECISION_LABELS: Final = (
    "<1m", "1-5m", "5-15m", "15-30m", "30m-1h", "1-2h", "2-4h", "4-8h", "8-24h", ">1d",
)  # fmt: skip
LATENESS_EDGES: Final = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)
LATENESS_LABELS: Final = (
    "<0.1s", "0.1-0.5s", "0.5-1s", "1-2s", "2-5s", "5-10s", "10-30s", "30-60s", "1-5m",
    "5-15m", "15-60m", ">1h",
)  # fmt: skip

REVIEW_HEADERS: Final = (
    "decided_at", "grant", "requester", "resource", "role", "duration_asked", "why",
    "live_from", "ended_at", "ended_by_event", "hours_held_in_period",
)  # fmt: skip
EPISODE_HEADERS: Final = (
    "grant", "requester", "resource", "role", "failing_from", "ended_at", "lasted_s",
    "attempts", "ended_by_event", "gave_up",
)  # fmt: skip


@dataclass(slots=True)
class _Grant:
    kind: str
    resource: str
    role: str
    requester: str
    created_at: float
    duration_s: int | None
    activated_at: float | None = None
    expires_at: float | None = None
    approvers: list[str] = field(default_factory=list)
    decided_at: float | None = None
    why: str | None = None  # auto-approval reason, or the on-call approver
    on_call: bool = False
    escalated_on_call: set[str] | None = None
    failing_since: float | None = None
    attempts: int = 0
    gave_up: bool = False
    live: bool = False


@dataclass(slots=True)
class Tally:
    """Per person or per resource, over the period."""

    requests: int = 0
    grants: int = 0
    denied: int = 0
    seconds_held: float = 0.0
    approvers: set[str] = field(default_factory=set)


@dataclass(slots=True)
class PolicyVersion:
    loaded_at: float | None = None  # the first POLICY_LOADED / POLICY_RELOADED of it
    loads: int = 0  # loads and reloads of it within the period
    first_seen: float | None = None
    last_seen: float | None = None
    entries: int = 0  # within the period
    requests: int = 0  # requests judged under it, within the period


class Aggregator:
    """Feed :meth:`add` every entry in order, then :meth:`finish` once."""

    def __init__(self, *, since: float, until: float, now: float) -> None:
        self.since = since
        self.until = until
        self.now = now
        self.standing = StandingAccess(since=since, until=until)
        first_day = int(since // DAY)
        self.days = [first_day + i for i in range(int((until - 1e-9) // DAY) - first_day + 1)]
        self.daily = [[0] * len(DAILY_SERIES) for _ in self.days]
        self.decision_hist = Histogram(DECISION_EDGES, DECISION_LABELS)
        self.decision_all = Sketch()
        self.decision_by_resource: dict[str, Sketch] = {}
        self.lateness_hist = Histogram(LATENESS_EDGES, LATENESS_LABELS)
        self.lateness = Sketch()
        self.people: dict[str, Tally] = {}
        self.resources: dict[str, Tally] = {}
        self.policies: dict[str, PolicyVersion] = {}
        self._loaded_before: str | None = None
        self._seen_before: str | None = None
        self.review = Spool(REVIEW_HEADERS)
        self.episodes = Spool(EPISODE_HEADERS)
        self.longest_episodes: list[tuple[float, str, str]] = []  # (seconds, grant, resource)
        self.events: dict[str, int] = {}
        self.entries = 0
        self.entries_in_period = 0
        self._open: dict[str, _Grant] = {}

    # -- input ----------------------------------------------------------------------------

    def missing(self, page: Iterable[Mapping[str, Any]]) -> list[str]:
        """Grant ids in ``page`` that change a grant this aggregator has no record of (their
        REQUEST entry is not in the log): the caller reads their grant records."""
        out: list[str] = []
        for data in page:
            gid = data.get("grant_id")
            details = data.get("details") or {}
            frm = details.get("from") if isinstance(details, dict) else None
            if gid and frm and frm not in TERMINAL and gid not in self._open:
                out.append(gid)
        return out

    def adopt(self, grant: Grant | None, grant_id: str) -> None:
        """Open a grant from its record (or, with none, under :data:`UNKNOWN`)."""
        if grant is None:
            self._open[grant_id] = _Grant(
                kind="access", resource=UNKNOWN, role=UNKNOWN, requester=UNKNOWN,
                created_at=self.since, duration_s=None,
            )  # fmt: skip
            return
        self._open[grant_id] = _Grant(
            kind=grant.kind,
            resource=grant.resource,
            role=grant.role,
            requester=grant.requester,
            created_at=grant.created_at,
            duration_s=grant.duration_s,
        )

    def add(self, data: Mapping[str, Any]) -> None:
        """One entry's body (parsed), in stream order."""
        self.entries += 1
        event = str(data.get("event"))
        at = float(data.get("at") or 0.0)
        in_period = self.since <= at < self.until
        if in_period:
            self.entries_in_period += 1
            self.events[event] = self.events.get(event, 0) + 1
        self._policy(event, at, data, in_period)
        index = _DAILY_INDEX.get(event)
        if index is not None and in_period:
            details = data.get("details") or {}
            if event != "APPROVE" or details.get("to") in ("APPROVED", "SCHEDULED"):
                self.daily[int(at // DAY) - self.days[0]][index] += 1
        gid = data.get("grant_id")
        if not gid:
            return
        handler = _HANDLERS.get(event)
        if handler is not None:
            handler(self, str(gid), at, in_period, data)

    # -- events ---------------------------------------------------------------------------

    def _request(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        d = data.get("details") or {}
        g = _Grant(
            kind=str(d.get("kind") or "access"),
            resource=str(d.get("resource") or UNKNOWN),
            role=str(d.get("role") or UNKNOWN),
            requester=str(d.get("requester") or data.get("actor") or UNKNOWN),
            created_at=at,
            duration_s=d.get("duration_s"),
        )
        self._open[gid] = g
        if in_period:
            self._tally(self.people, g.requester).requests += 1
            self._tally(self.resources, g.resource).requests += 1
            version = data.get("policy_version")
            if version:
                self._version(str(version)).requests += 1

    def _approve(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        g = self._open.get(gid)
        if g is None:
            return
        actor = str(data.get("actor"))
        g.approvers.append(actor)
        if (data.get("details") or {}).get("to") not in ("APPROVED", "SCHEDULED"):
            return
        if g.escalated_on_call and actor in g.escalated_on_call:
            g.on_call = True
            g.why = f"approved by {actor}, asked as on call after escalation"
        self._decided(g, at, in_period)

    def _auto_approve(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        g = self._open.get(gid)
        if g is None:
            return
        reason = str(data.get("reason") or "auto-approved by policy")
        schedule = (data.get("details") or {}).get("on_call")
        if schedule is None:
            found = _ON_CALL_REASON.search(reason)
            schedule = found.group(1) if found else None
        g.why = reason
        g.on_call = schedule is not None
        g.approvers.append("auto-approve")
        self._decided(g, at, in_period)

    def _deny(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        g = self._open.get(gid)
        if g is None:
            return
        g.approvers.append(str(data.get("actor")))
        self._decided(g, at, in_period)
        if in_period:
            self._tally(self.people, g.requester).denied += 1
            self._tally(self.resources, g.resource).denied += 1
        self._close(gid, at, "DENY")

    def _decided(self, g: _Grant, at: float, in_period: bool) -> None:
        g.decided_at = at
        if not in_period:
            return
        waited = max(0.0, at - g.created_at)
        self.decision_hist.add(waited)
        self.decision_all.add(waited)
        sketch = self.decision_by_resource.get(g.resource)
        if sketch is None:
            sketch = self.decision_by_resource[g.resource] = Sketch()
        sketch.add(waited)

    def _issue(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        g = self._open.get(gid)
        if g is None:
            return
        g.activated_at = at
        expires = (data.get("details") or {}).get("expires_at")
        g.expires_at = float(expires) if expires is not None else None
        if not g.live:
            g.live = True
            self.standing.change(g.resource, +1, at)

    def _extend(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        g = self._open.get(gid)
        if g is None:
            return
        if g.kind == "extension":
            self._close(gid, at, "EXTEND")
            return
        expires = (data.get("details") or {}).get("expires_at")
        if expires is not None:
            g.expires_at = float(expires)

    def _revoke_fail(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        g = self._open.get(gid)
        if g is None:
            return
        if g.failing_since is None:
            g.failing_since = at
        g.attempts = int((data.get("details") or {}).get("attempt") or g.attempts + 1)

    def _abandoned(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        g = self._open.get(gid)
        if g is not None:
            g.gave_up = True

    def _escalated(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        g = self._open.get(gid)
        on_call = (data.get("details") or {}).get("on_call")
        if g is not None and on_call:
            g.escalated_on_call = (g.escalated_on_call or set()) | {str(u) for u in on_call}

    def _end(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        g = self._open.get(gid)
        if g is None:
            return
        if g.expires_at is not None and at >= g.expires_at and in_period:
            late = at - g.expires_at
            self.lateness.add(late)
            self.lateness_hist.add(late)
        self._close(gid, at, str(data.get("event")))

    def _closed(self, gid: str, at: float, in_period: bool, data: Mapping[str, Any]) -> None:
        """TIME_OUT, CANCEL, ISSUE_FAIL: over without access."""
        if gid in self._open:
            self._close(gid, at, str(data.get("event")))

    # -- bookkeeping ----------------------------------------------------------------------

    def _close(self, gid: str, at: float | None, event: str) -> None:
        """Account for a grant that ended at ``at`` by ``event`` (None: still open)."""
        g = self._open.pop(gid)
        end = at if at is not None else self.now
        if g.live and at is not None:
            self.standing.change(g.resource, -1, at)
        held = 0.0
        if g.activated_at is not None:
            held = max(0.0, min(end, self.until) - max(g.activated_at, self.since))
            if g.activated_at < self.until and end >= self.since:
                for tally in (
                    self._tally(self.people, g.requester),
                    self._tally(self.resources, g.resource),
                ):
                    tally.grants += 1
                    tally.seconds_held += held
                    tally.approvers.update(g.approvers)
        if g.why is not None and g.decided_at is not None and self._in(g.decided_at):
            self.review.append(
                [
                    format_utc(g.decided_at), gid, g.requester, g.resource, g.role,
                    g.duration_s if g.duration_s is not None else "",
                    ("on call: " if g.on_call else "") + g.why,
                    format_utc(g.activated_at), format_utc(at),
                    event if at is not None else "(live)",
                    f"{held / 3600:.2f}",
                ],
                key=g.decided_at,
            )  # fmt: skip
        if g.failing_since is not None and g.failing_since < self.until and end >= self.since:
            lasted = end - g.failing_since
            self.episodes.append(
                [
                    gid, g.requester, g.resource, g.role,
                    format_utc(g.failing_since), format_utc(at),
                    f"{lasted:.1f}", g.attempts, event if at is not None else "(still failing)",
                    "yes" if g.gave_up else "no",
                ],
                key=g.failing_since,
            )  # fmt: skip
            item = (lasted, gid, g.resource)
            if len(self.longest_episodes) < EPISODES_CHARTED:
                heapq.heappush(self.longest_episodes, item)
            else:
                heapq.heappushpop(self.longest_episodes, item)

    def _in(self, at: float) -> bool:
        return self.since <= at < self.until

    @staticmethod
    def _tally(table: dict[str, Tally], key: str) -> Tally:
        tally = table.get(key)
        if tally is None:
            tally = table[key] = Tally()
        return tally

    def _version(self, version: str) -> PolicyVersion:
        found = self.policies.get(version)
        if found is None:
            found = self.policies[version] = PolicyVersion()
        return found

    def _policy(self, event: str, at: float, data: Mapping[str, Any], in_period: bool) -> None:
        version = data.get("policy_version")
        if not version:
            return
        if at < self.since:
            # In force when the period opens: the last loaded before it, else the last seen.
            if event in ("POLICY_LOADED", "POLICY_RELOADED"):
                self._loaded_before = str(version)
            self._seen_before = str(version)
        v = self._version(str(version))
        if v.first_seen is None:
            v.first_seen = at
        v.last_seen = at
        if event in ("POLICY_LOADED", "POLICY_RELOADED"):
            if v.loaded_at is None:
                v.loaded_at = at
            if in_period:
                v.loads += 1
        if in_period:
            v.entries += 1

    def finish(self) -> None:
        """Account for grants still open at the end of the log (live until now)."""
        for gid in list(self._open):
            self._close(gid, None, "")

    @property
    def policy_at_start(self) -> str | None:
        return self._loaded_before or self._seen_before

    def versions_in_period(self) -> list[tuple[str, PolicyVersion]]:
        """The versions in force during the period: the one at its start and every one seen
        in it, by when each was first loaded or seen."""
        chosen = [
            (k, v)
            for k, v in self.policies.items()
            if v.entries or v.loads or k == self.policy_at_start
        ]
        return sorted(chosen, key=lambda kv: kv[1].loaded_at or kv[1].first_seen or 0.0)

    def close(self) -> None:
        self.review.close()
        self.episodes.close()


Handler = Any
_HANDLERS: Final[dict[str, Handler]] = {
    "REQUEST": Aggregator._request,
    "APPROVE": Aggregator._approve,
    "AUTO_APPROVE": Aggregator._auto_approve,
    "DENY": Aggregator._deny,
    "ISSUE": Aggregator._issue,
    "EXTEND": Aggregator._extend,
    "REVOKE_FAIL": Aggregator._revoke_fail,
    "REVOKE_ABANDONED": Aggregator._abandoned,
    "ESCALATED": Aggregator._escalated,
    "REVOKE": Aggregator._end,
    "EXPIRE": Aggregator._end,
    "FORCE_CLOSE": Aggregator._end,
    "TIME_OUT": Aggregator._closed,
    "CANCEL": Aggregator._closed,
    "ISSUE_FAIL": Aggregator._closed,
}
