"""A realistic audit history, written fast: for the report's benchmark, tests and demos.

Grants arrive through the period and live the lives the bot records (the same events and
detail fields as ``bot/store/grants.py`` and the service write): requested; approved after a
while (some after an escalation to on-call people), auto-approved (some for being on call),
denied, timed out or cancelled; issued; extended; revoked early or expired a little after
their expiry; a few fail to revoke for a while (``REVOKE_FAIL`` retries, sometimes given up
and force-closed). Policy loads and reloads are sprinkled in. The entries are chained with
the real hash (:func:`bot.store.chain.chain_hash`) and written with pipelined XADDs under
stream ids taken from their times, so the log verifies like one the bot wrote.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import redis

from bot.store.audit import entry_body
from bot.store.chain import GENESIS, chain_hash
from bot.store.keys import Keys

RESOURCES: Final = (
    "orders-db", "payments-db", "billing-db", "cache-prod", "bastion-eu", "bastion-us",
    "aws-prod", "deploy-hook",
)  # fmt: skip
ROLES: Final = ("read", "write", "admin")
PIPELINE: Final = 2000


@dataclass(frozen=True, slots=True)
class Seeded:
    entries: int
    grants: int
    head_seq: int
    head_hash: str
    first_at: float
    last_at: float


def _people(n: int, prefix: str) -> list[str]:
    return [f"U0{prefix}{i:04d}" for i in range(n)]


class _History:
    """Generates (at, event, actor, grant_id, reason, policy_version, details) in time order."""

    def __init__(self, *, start: float, end: float, grants: int, rng: random.Random) -> None:
        self.start, self.end, self.grants, self.rng = start, end, grants, rng
        self.requesters = _people(120, "REQ")
        self.approvers = _people(14, "APR")
        self.oncall = _people(6, "ONC")
        self.policy = hashlib.sha256(b"policy-1").hexdigest()
        self._policy_n = 1
        self._events: list[tuple[float, int, tuple[Any, ...]]] = []
        self._tie = 0

    def _push(self, at: float, *event: Any) -> None:
        self._tie += 1
        heapq.heappush(self._events, (at, self._tie, event))

    def events(self) -> Iterator[tuple[float, tuple[Any, ...]]]:
        step = (self.end - self.start) / max(1, self.grants)
        self._push(self.start, "POLICY_LOADED", "grantbot", None, None, {"path": "policies.yaml"})
        next_reload = self.start + self.rng.uniform(2, 6) * 86400
        t = self.start
        for i in range(self.grants):
            t += self.rng.expovariate(1 / step)
            while self._events and self._events[0][0] <= t:
                at, _, ev = heapq.heappop(self._events)
                yield at, ev
            if t >= next_reload:
                self._policy_n += 1
                old = self.policy
                self.policy = hashlib.sha256(f"policy-{self._policy_n}".encode()).hexdigest()
                self._push(t, "POLICY_RELOADED", "file-change", None, None, {"from": old})
                next_reload = t + self.rng.uniform(2, 6) * 86400
            self._life(f"g-seed{i:07d}", t)
        while self._events:
            at, _, ev = heapq.heappop(self._events)
            yield at, ev

    def _life(self, gid: str, t: float) -> None:
        rng = self.rng
        resource = rng.choice(RESOURCES)
        role = rng.choices(ROLES, weights=(6, 3, 1))[0]
        user = rng.choice(self.requesters)
        duration = rng.choice((900, 1800, 3600, 7200, 14400, 28800))
        self._push(
            t, "REQUEST", user, gid, "debugging INC-42",
            {
                "status": "PENDING", "resource": resource, "role": role, "requester": user,
                "duration_s": duration, "tickets": ["INC-42"], "kind": "access",
                "parent_id": None, "origin": {"surface": "command", "channel": "C0OPS"},
            },
        )  # fmt: skip
        roll = rng.random()
        if roll < 0.04:
            self._push(t + 3600, "TIME_OUT", "system", gid, "no decision within 1h",
                       _tr("PENDING", "TIMED_OUT", "system"))  # fmt: skip
            return
        if roll < 0.06:
            self._push(t + rng.uniform(10, 300), "CANCEL", user, gid, "not needed",
                       _tr("PENDING", "CANCELLED", "requester"))  # fmt: skip
            return
        if roll < 0.30:
            decided = t + rng.uniform(0.05, 0.4)
            on_call = rng.random() < 0.5
            reason = f"auto-approved: {user} " + (
                "on call for payments-primary" if on_call else "in #inc-42"
            )
            details = _tr("PENDING", "APPROVED", "system")
            if on_call:
                details["on_call"] = "payments-primary"
            self._push(decided, "AUTO_APPROVE", "auto-approve", gid, reason, details)
        else:
            wait = rng.lognormvariate(math.log(180), 1.1)
            approver = rng.choice(self.approvers)
            if wait > 900 and rng.random() < 0.5:
                asked = rng.sample(self.oncall, 2)
                self._push(t + 900, "ESCALATED", "escalation", gid, "no decision within 15m",
                           {"tier": 1, "escalate_after_s": 900, "oncall": "sre-primary",
                            "on_call": sorted(asked), "asked": sorted(asked)})  # fmt: skip
                approver = asked[0]
                wait = max(wait, 901.0)
            decided = t + wait
            if rng.random() < 0.10:
                details = _tr("PENDING", "DENIED", "approver")
                self._push(decided, "DENY", approver, gid, "not for prod", details)
                return
            details = _tr("PENDING", "APPROVED", "approver")
            details.update({"approvals": 1, "approvals_required": 1})
            self._push(decided, "APPROVE", approver, gid, None, details)
        issued = decided + rng.uniform(0.05, 0.6)
        expires = issued + duration
        self._push(issued, "ISSUE", "system", gid, None,
                   {**_tr("APPROVED", "ACTIVE", "system"), "expires_at": expires})  # fmt: skip
        if rng.random() < 0.05:
            longer = expires + 3600
            self._push(issued + duration / 2, "EXTEND", "system", gid, "extended",
                       {**_tr("ACTIVE", "ACTIVE", "system"), "from_expires_at": expires,
                        "extended_by": "1h", "expires_at": longer})  # fmt: skip
            expires = longer
        if rng.random() < 0.18:
            early = issued + rng.uniform(0.1, 0.9) * (expires - issued)
            self._push(early, "REVOKE", user, gid, "done",
                       _tr("ACTIVE", "REVOKED", "requester"))  # fmt: skip
            return
        if rng.random() < 0.004:
            self._failing(gid, expires, resource)
            return
        late = rng.lognormvariate(math.log(0.02), 0.8)
        self._push(expires + late, "EXPIRE", "scheduler", gid, "expired",
                   _tr("ACTIVE", "EXPIRED", "system"))  # fmt: skip

    def _failing(self, gid: str, expires: float, resource: str) -> None:
        at, attempt, delay = expires + 0.05, 0, 5.0
        lasting = self.rng.choice((60.0, 600.0, 3600.0, 6 * 3600.0, 30 * 3600.0))
        frm = "ACTIVE"
        while at < expires + lasting and attempt < 60:
            attempt += 1
            self._push(at, "REVOKE_FAIL", "scheduler", gid, "expired",
                       {**_tr(frm, "REVOKE_FAILED", "system"), "attempt": attempt,
                        "error": "target unavailable: connection refused"})  # fmt: skip
            frm = "REVOKE_FAILED"
            at += delay
            delay = min(delay * 2, 600.0)
        if lasting > 24 * 3600:
            self._push(expires + 24 * 3600, "REVOKE_ABANDONED", "revoker", gid,
                       "revocation kept failing for the whole retry window",
                       {"attempts": attempt, "window_s": 86400, "resource": resource})  # fmt: skip
            self._push(at, "FORCE_CLOSE", "cli:alice", gid, "dropped by hand",
                       {**_tr("REVOKE_FAILED", "REVOKED", "operator"), "forced": True})  # fmt: skip
        else:
            self._push(at, "EXPIRE", "scheduler", gid, "expired",
                       _tr("REVOKE_FAILED", "EXPIRED", "system"))  # fmt: skip


def _tr(frm: str, to: str, actor_kind: str) -> dict[str, Any]:
    return {"from": frm, "to": to, "actor_kind": actor_kind}


def seed_audit(
    client: redis.Redis,
    keys: Keys,
    *,
    entries: int,
    start: float,
    end: float,
    seed: int = 7,
    resume: Seeded | None = None,
) -> Seeded:
    """Append about ``entries`` entries (stopping at exactly that many) spread over
    ``[start, end)`` to ``keys``' audit log on a synchronous client. ``resume`` continues
    the chain a previous call left (its head), e.g. to report at 100,000 and then 1,000,000.
    """
    rng = random.Random(seed)
    grants = max(1, int(entries / 3.6))  # about 3.9 entries a grant; stop at `entries`
    history = _History(start=start, end=end, grants=grants, rng=rng)
    seq = resume.head_seq if resume else 0
    prev = resume.head_hash if resume else GENESIS
    last_ms, n_in_ms = 0, 0
    if resume is not None:
        last_ms = int(resume.last_at * 1000)
        n_in_ms = 1 << 20  # after whatever the previous call wrote in that millisecond
    written = 0
    first_at = last_at = start
    pipe = client.pipeline(transaction=False)
    for at, (event, actor, gid, reason, details) in history.events():
        if written >= entries or at >= end:
            break
        body = entry_body(
            at=at, event=event, actor=actor, grant_id=gid, reason=reason,
            policy_version=history.policy, details=details,
        )  # fmt: skip
        seq += 1
        link, prev = prev, chain_hash(prev, seq, body)
        ms = max(int(at * 1000), last_ms)
        n_in_ms = n_in_ms + 1 if ms == last_ms else 0
        last_ms = ms
        pipe.xadd(
            keys.audit,
            {"seq": seq, "prev": link, "body": body, "hash": prev},
            id=f"{ms}-{n_in_ms}",
        )
        written += 1
        if written == 1:
            first_at = at
        last_at = at
        if written % PIPELINE == 0:
            pipe.set(keys.audit_head, f"{seq} {prev}")
            pipe.execute()
    pipe.set(keys.audit_head, f"{seq} {prev}")
    pipe.execute()
    return Seeded(
        entries=written, grants=grants, head_seq=seq, head_hash=prev,
        first_at=first_at, last_at=last_at,
    )  # fmt: skip
