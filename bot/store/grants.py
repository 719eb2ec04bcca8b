"""Grants in Redis: create, read, query, and transition with compare-and-set.

Every change is one Lua call (``commit.lua``) that checks the version read, writes the new
record, moves it between indexes and appends its audit entry, so a state change and its
audit record can never be separated and concurrent writers produce exactly one winner.
Losers re-read and re-apply the pure state machine, which then usually refuses
("already approved by ...").
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from bot.domain import lifecycle
from bot.domain.ids import new_grant_id
from bot.domain.model import TERMINAL, Actor, Event, Grant, Status
from bot.errors import ConcurrencyError, GrantbotError, NotAuthorized, NotFound, TransitionError
from bot.pacing import UNPACED, Pacer
from bot.store.audit import GENESIS, AuditLog, chain_hash, entry_body
from bot.store.connection import aw, translate_errors
from bot.store.keys import Keys
from bot.store.scripts import Scripts, script_source

MAX_CAS_ATTEMPTS: Final = 64
_CREATE_ATTEMPTS: Final = 5
#: States whose grants sit in the expiries index (a credential may exist and must end).
_EXPIRING: Final = frozenset({Status.ACTIVE, Status.REVOKE_FAILED})
CREATED_EVENT: Final = "REQUEST"
#: Grants per commit_many.lua call: one call holds Redis's thread for ~20 us per grant, so a
#: chunk of 500 blocks other clients for ~10 ms at most.
BULK_CHUNK: Final = 500
#: A bulk commit is refused when another writer appended to the audit chain between our read
#: of its head and the commit; after this many refusals the chunk falls back to per-grant
#: commits (commit.lua hashes in Redis and cannot be refused that way).
MAX_BULK_ATTEMPTS: Final = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionRequest:
    """One grant's event in a :meth:`GrantStore.transition_many` batch."""

    grant_id: str
    event: Event
    actor: Actor
    reason: str | None = None
    error: str | None = None
    details: Mapping[str, Any] | None = None
    #: When set, the event applies only to this version of the grant: if it changed meanwhile
    #: the result is a ConcurrencyError and nothing is written, instead of judging the event
    #: again on the new state. The revoker pins the version it revoked at the target, so an
    #: extension committed in between is never overwritten by an end the target no longer
    #: reflects.
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class _Staged:
    """A grant's event judged and encoded, waiting for its bulk commit."""

    index: int  # position in the caller's request list
    old: Grant
    new: Grant
    outcome: lifecycle.Outcome
    body: str


@dataclass(frozen=True, slots=True)
class _Encoded:
    """One grant's part of a commit_many.lua call, packed into a single argument there."""

    head: str  # "<grant key index> <expected version> <status>"
    body: bytes  # the audit entry body (UTF-8)
    ops: bytes  # index ops JSON
    grant: bytes  # the new grant JSON

    def pack(self, entry_hash: str) -> bytes:
        header = f"{self.head} {entry_hash} {len(self.body)} {len(self.ops)}\n".encode()
        return b"".join((header, self.body, self.ops, self.grant))


#: Per request: the outcome, or why nothing changed (TransitionError, NotAuthorized, NotFound).
BulkResult = lifecycle.Outcome | GrantbotError


@dataclass(frozen=True, slots=True)
class IndexPlan:
    """Keys beyond the first three and the ops referencing them (1-based over all KEYS)."""

    keys: list[str]
    ops: list[list[Any]]


def plan_indexes(keys: Keys, old: Grant | None, new: Grant) -> IndexPlan:
    """The index updates that take ``old`` (None when creating) to ``new``. Pure."""
    plan_keys: list[str] = []
    positions: dict[str, int] = {}

    def key_index(name: str) -> int:
        pos = positions.get(name)
        if pos is None:
            plan_keys.append(name)
            pos = positions[name] = 3 + len(plan_keys)  # after commit.lua's three fixed keys
        return pos

    return IndexPlan(keys=plan_keys, ops=_index_ops(keys, old, new, key_index))


def _index_ops(
    keys: Keys, old: Grant | None, new: Grant, key_index: Callable[[str], int]
) -> list[list[Any]]:
    """The index ops taking ``old`` to ``new``; ``key_index`` numbers each key they touch
    (so the bulk path can number keys over a whole batch without renumbering)."""
    ops: list[list[Any]] = []
    gid = new.id
    if old is None:
        ops.append(["zadd", key_index(keys.all_grants), new.created_at, gid])
        ops.append(["zadd", key_index(keys.user_all(new.requester)), new.created_at, gid])
    if old is None or old.status is not new.status:
        if old is not None:
            ops.append(["srem", key_index(keys.by_status(old.status)), gid])
        ops.append(["sadd", key_index(keys.by_status(new.status)), gid])
    if new.status in TERMINAL:
        ops.append(["srem", key_index(keys.user_open(new.requester)), gid])
    else:
        ops.append(["sadd", key_index(keys.user_open(new.requester)), gid])
    if new.status is Status.PENDING and new.request_expires_at is not None:
        ops.append(["zadd", key_index(keys.pending_deadlines), new.request_expires_at, gid])
    elif old is not None and old.status is Status.PENDING:
        ops.append(["zrem", key_index(keys.pending_deadlines), gid])
    if new.status in _EXPIRING and new.expires_at is not None:
        ops.append(["zadd", key_index(keys.expiries), new.expires_at, gid])
    elif old is not None and old.status in _EXPIRING:
        ops.append(["zrem", key_index(keys.expiries), gid])
    was_live = old is not None and old.status in _EXPIRING
    if (new.status in _EXPIRING) != was_live:
        delta = -1 if was_live else 1
        ops.append(["hincrby", key_index(keys.live_by_resource), new.resource, delta])
    return ops


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))  # reused: see audit._CANONICAL


def _ops_json(items: list[list[Any]]) -> str:
    return _COMPACT.encode(items)


class GrantStore:
    """The one way grant state is read and changed."""

    #: The audit head our last bulk commit left: a guess that saves a read (Lua checks it).
    _bulk_head: str | None = None

    def __init__(
        self, client: aioredis.Redis, *, keys: Keys | None = None, pacer: Pacer = UNPACED
    ) -> None:
        """``pacer``: how the bulk paths (``transition_many``, and the revoker's loops) hand
        the event loop back; ``grantbot serve`` gives one that yields to Slack work."""
        self.redis = client
        self.keys = keys or Keys()
        self.pacer = pacer
        self._scripts = Scripts.register(client)
        self.audit = AuditLog(client, keys=self.keys, scripts=self._scripts)

    # -- writes -------------------------------------------------------------------------

    @translate_errors
    async def create(self, grant: Grant, *, actor: Actor, policy_version: str) -> Grant:
        """Store a new request (version 1) and audit it. A colliding id is regenerated."""
        for _ in range(_CREATE_ATTEMPTS):
            body = entry_body(
                at=grant.created_at,
                event=CREATED_EVENT,
                actor=actor.id,
                grant_id=grant.id,
                reason=grant.reason,
                policy_version=policy_version,
                details={
                    "status": grant.status.value,
                    "resource": grant.resource,
                    "role": grant.role,
                    "requester": grant.requester,
                    "duration_s": grant.duration_s,
                    "tickets": grant.tickets,
                    "kind": grant.kind,
                    "parent_id": grant.parent_id,
                    "origin": grant.origin.model_dump(exclude_none=True),
                },
            )
            stored = grant.model_copy(update={"version": 1})
            result = await self._commit(old=None, new=stored, expected_version=0, body=body)
            if result is not None:
                return stored
            grant = grant.model_copy(update={"id": new_grant_id()})
        raise ConcurrencyError("could not allocate a unique request id; try again")

    @translate_errors
    async def transition(
        self,
        grant_id: str,
        event: Event,
        *,
        actor: Actor,
        now: float,
        policy_version: str,
        reason: str | None = None,
        expires_at: float | None = None,
        credential_ref: str | None = None,
        error: str | None = None,
        details: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> lifecycle.Outcome:
        """Apply ``event`` with compare-and-set, retrying when a concurrent writer won.

        With ``expected_version`` the event applies only to that version: if the grant moved
        on, ConcurrencyError at once and nothing is written (see
        :attr:`TransitionRequest.expected_version`). Raises what :func:`lifecycle.apply`
        raises (NotAuthorized, TransitionError), NotFound, StoreUnavailable, or
        ConcurrencyError after ``MAX_CAS_ATTEMPTS`` lost races.
        """
        for attempt in range(MAX_CAS_ATTEMPTS):
            current = await self.get(grant_id)
            if expected_version is not None and current.version != expected_version:
                raise ConcurrencyError(f"{grant_id} changed (version {current.version}) meanwhile")
            outcome = lifecycle.apply(
                current,
                event,
                actor=actor,
                now=now,
                reason=reason,
                expires_at=expires_at,
                credential_ref=credential_ref,
                error=error,
            )
            new = outcome.grant.model_copy(update={"version": current.version + 1})
            body = entry_body(
                at=now,
                event=event.value,
                actor=actor.id,
                grant_id=grant_id,
                reason=reason,
                policy_version=policy_version,
                details={
                    "from": current.status.value,
                    "to": new.status.value,
                    "actor_kind": actor.kind.value,
                    **outcome.details,
                    **(details or {}),
                },
            )
            if await self._commit(
                old=current, new=new, expected_version=current.version, body=body
            ):
                return lifecycle.Outcome(
                    grant=new, event=event, from_status=current.status, details=outcome.details
                )
            # Lost the race: back off a little (jittered) and judge again on fresh state.
            await asyncio.sleep(min(0.05, 0.001 * (attempt + 1)) * random.random())
        raise ConcurrencyError(f"{grant_id} is changing too often to update; try again")

    async def _commit(
        self, *, old: Grant | None, new: Grant, expected_version: int, body: str
    ) -> str | None:
        """Run commit.lua; the audit entry id on success, None when the version moved."""
        plan = plan_indexes(self.keys, old, new)
        result = await self._scripts.commit(
            keys=[self.keys.grant(new.id), self.keys.audit, self.keys.audit_head, *plan.keys],
            args=[
                expected_version,
                new.model_dump_json(),
                new.status.value,
                body,
                _ops_json(plan.ops),
            ],
        )
        if result[0] == "ok":
            return str(result[2])
        return None

    @cached_property
    def _commit_many(self) -> AsyncScript:
        return self.redis.register_script(script_source("commit_many.lua"))

    @translate_errors
    async def transition_many(
        self,
        requests: Sequence[TransitionRequest],
        *,
        now: float,
        policy_version: str,
        current: Mapping[str, Grant] | None = None,
    ) -> list[BulkResult]:
        """Apply many events, each with compare-and-set and its audit entry, in bulk.

        The result list is aligned with ``requests``: an :class:`~lifecycle.Outcome` where the
        event was stored, else the error :func:`lifecycle.apply` raised (TransitionError,
        NotAuthorized) or NotFound, and that grant was not changed. Each chunk of up to
        ``BULK_CHUNK`` grants is one atomic Lua call (commit_many.lua): every grant's state,
        indexes and audit entry are written together, or none are. ``current`` may pass grants
        already read; a stale one only costs a re-read (its version is checked in Redis).
        Grant ids must be distinct (ValueError otherwise). Raises StoreUnavailable.
        """
        ids = [r.grant_id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("transition_many needs distinct grant ids")
        results: list[BulkResult | None] = [None] * len(requests)
        known = dict(current or {})
        for start in range(0, len(requests), BULK_CHUNK):
            chunk = range(start, min(start + BULK_CHUNK, len(requests)))
            await self._transition_chunk(
                requests, chunk, results, known, now=now, policy_version=policy_version
            )
        return [r for r in results if r is not None]

    async def _transition_chunk(
        self,
        requests: Sequence[TransitionRequest],
        chunk: range,
        results: list[BulkResult | None],
        known: dict[str, Grant],
        *,
        now: float,
        policy_version: str,
    ) -> None:
        pending = list(chunk)
        staged: dict[int, _Staged] = {}
        for _ in range(MAX_BULK_ATTEMPTS):
            unread = [
                requests[i].grant_id
                for i in pending
                if i not in staged and requests[i].grant_id not in known
            ]
            if unread:
                await self._read_for_bulk(unread, known)
            async for i in self.pacer.paced(pending):  # ~100 us a grant: slices, acks between
                if i not in staged:
                    judged = _stage(requests[i], i, known, now, policy_version)
                    if isinstance(judged, _Staged):
                        staged[i] = judged
                    else:
                        results[i] = judged
            pending = [i for i in pending if i in staged]
            if not pending:
                return
            items = [staged[i] for i in pending]
            # Everything but the chain hashes is encoded before taking the lock, so one
            # batch's CPU work overlaps another's wait for Redis.
            encoded = await self._encode(items)
            reply = await self._commit_encoded(encoded, items)
            if reply[0] == "ok":
                for st in items:
                    results[st.index] = lifecycle.Outcome(
                        grant=st.new,
                        event=st.outcome.event,
                        from_status=st.old.status,
                        details=st.outcome.details,
                    )
                return
            if reply[0] == "conflict":
                # Changed since read: judge those again on fresh state.
                for item in reply[1:]:
                    st = items[int(item) - 1]
                    known.pop(st.old.id, None)
                    del staged[st.index]
        # Still refused after many attempts: commit one by one (commit.lua hashes in Redis).
        for i in pending:
            req = requests[i]
            try:
                results[i] = await self.transition(
                    req.grant_id,
                    req.event,
                    actor=req.actor,
                    now=now,
                    policy_version=policy_version,
                    reason=req.reason,
                    error=req.error,
                    details=dict(req.details) if req.details else None,
                )
            except (TransitionError, NotAuthorized, NotFound) as e:
                results[i] = e

    async def _encode(self, items: list[_Staged]) -> tuple[list[str], list[_Encoded]]:
        """KEYS and each item's parts for commit_many.lua (all but its chain hash), in slices
        paced by ``self.pacer``."""
        key_list = [self.keys.audit, self.keys.audit_head]
        key_pos: dict[str, int] = {}

        def key_index(name: str) -> int:
            pos = key_pos.get(name)
            if pos is None:
                key_list.append(name)
                pos = key_pos[name] = len(key_list)  # 1-based, as Lua sees KEYS
            return pos

        rows: list[_Encoded] = []
        async for st in self.pacer.paced(items):
            ops = _index_ops(self.keys, st.old, st.new, key_index)
            rows.append(
                _Encoded(
                    head=f"{key_index(self.keys.grant(st.new.id))} {st.old.version} "
                    f"{st.new.status.value}",
                    body=st.body.encode(),
                    ops=_ops_json(ops).encode(),
                    grant=st.new.model_dump_json().encode(),
                )
            )
        return key_list, rows

    async def _commit_encoded(
        self, encoded: tuple[list[str], list[_Encoded]], items: list[_Staged]
    ) -> list[Any]:
        """Chain ``items`` onto the audit head and run commit_many.lua: the ok reply, or a
        conflict reply naming the items whose version moved. Retries while only the head
        moved (another writer appended); bulk commits of this process take turns."""
        key_list, rows = encoded
        async with self._bulk_lock:
            head = self._bulk_head or ""
            for _ in range(MAX_BULK_ATTEMPTS):
                seq, prev = (0, GENESIS) if not head else _parse_head(head)
                args: list[Any] = [head]
                for st, row in zip(items, rows, strict=True):
                    seq += 1
                    prev = chain_hash(prev, seq, st.body)
                    args.append(row.pack(prev))
                reply: list[Any] = await self._commit_many(keys=key_list, args=args)
                if reply[0] == "ok":
                    self._bulk_head = str(reply[2])
                    return reply
                if reply[0] != "head":
                    return reply
                head = str(reply[1])  # another writer appended: re-chain onto its head
            self._bulk_head = None
            return reply

    @cached_property
    def _bulk_lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    @cached_property
    def _read_many(self) -> AsyncScript:
        return self.redis.register_script(script_source("read_many.lua"))

    async def _read_for_bulk(self, ids: list[str], known: dict[str, Grant]) -> str:
        """Read the audit head and the grants in ``ids`` (into ``known``) in one command."""
        rows: list[str | None] = await self._read_many(
            keys=[self.keys.audit_head, *(self.keys.grant(gid) for gid in ids)]
        )
        async for gid, row in self.pacer.paced(zip(ids, rows[1:], strict=True)):
            if row is not None:
                known[gid] = Grant.model_validate_json(row)
        return rows[0] or ""

    @translate_errors
    async def read_many(self, grant_ids: Iterable[str]) -> dict[str, Grant]:
        """The grants that exist among ``grant_ids``, by id, read with one command.

        Like :meth:`get_many` but one Lua call instead of a pipeline of HGETs, which costs a
        quarter of the client CPU for thousands of ids (the bulk revocation path).
        """
        known: dict[str, Grant] = {}
        await self._read_for_bulk(list(dict.fromkeys(grant_ids)), known)
        return known

    # -- reads --------------------------------------------------------------------------

    @translate_errors
    async def get(self, grant_id: str) -> Grant:
        """The grant, or NotFound with a message naming the id."""
        data = await aw(self.redis.hget(self.keys.grant(grant_id), "d"))
        if data is None:
            raise NotFound(f"no request or grant {grant_id}")
        return Grant.model_validate_json(data)

    @translate_errors
    async def get_many(self, grant_ids: Iterable[str]) -> list[Grant]:
        """Grants for the ids that exist, in the order given (pipelined)."""
        ids = list(grant_ids)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for gid in ids:
                pipe.hget(self.keys.grant(gid), "d")
            rows: Sequence[str | None] = await pipe.execute()
        return [Grant.model_validate_json(row) for row in rows if row is not None]

    @translate_errors
    async def list_grants(
        self, *, user: str | None = None, status: Status | None = None, limit: int = 200
    ) -> list[Grant]:
        """Newest first; filtered by requester and/or status."""
        if status is not None and user is None:
            ids: list[str] = list(await aw(self.redis.smembers(self.keys.by_status(status))))
            grants = await self.get_many(ids)
            grants.sort(key=lambda g: g.created_at, reverse=True)
            return grants[:limit]
        index = self.keys.user_all(user) if user is not None else self.keys.all_grants
        # Over-fetch when also filtering by status so the page still fills.
        fetch = limit if status is None else max(limit * 10, 1000)
        ids = list(await self.redis.zrevrange(index, 0, fetch - 1))
        grants = await self.get_many(ids)
        if status is not None:
            grants = [g for g in grants if g.status is status]
        return grants[:limit]

    @translate_errors
    async def open_for_user(self, user: str) -> list[Grant]:
        """A user's pending and live requests/grants, oldest first."""
        grants = await self.get_many(await aw(self.redis.smembers(self.keys.user_open(user))))
        return sorted(grants, key=lambda g: g.created_at)

    @translate_errors
    async def in_status(self, status: Status) -> list[Grant]:
        return await self.get_many(await aw(self.redis.smembers(self.keys.by_status(status))))

    async def live_rules(self) -> dict[tuple[str, str], list[str]]:
        """(resource, role) -> ids of the live grants (APPROVED, ACTIVE, REVOKE_FAILED) on it:
        what a policy change must not remove. Reads every live grant; for rare callers."""
        used: dict[tuple[str, str], list[str]] = {}
        for status in (Status.APPROVED, Status.ACTIVE, Status.REVOKE_FAILED):
            for grant in await self.in_status(status):
                used.setdefault((grant.resource, grant.role), []).append(grant.id)
        return used

    @translate_errors
    async def live_by_resource(self) -> dict[str, int]:
        """Resource -> live grants (ACTIVE or REVOKE_FAILED) on it, the standing privileges;
        resources with none are left out. One HGETALL, kept exact by the commit scripts."""
        raw = await aw(self.redis.hgetall(self.keys.live_by_resource))
        counts = {str(resource): int(n) for resource, n in raw.items()}
        return {resource: n for resource, n in counts.items() if n > 0}

    @translate_errors
    async def due_expiries(self, now: float, *, limit: int = 1000) -> list[str]:
        """Ids of live grants whose expires_at <= now, soonest first."""
        return list(
            await self.redis.zrangebyscore(self.keys.expiries, "-inf", now, start=0, num=limit)
        )

    @translate_errors
    async def due_pending(self, now: float, *, limit: int = 1000) -> list[str]:
        """Ids of PENDING requests whose request_expires_at <= now."""
        return list(
            await self.redis.zrangebyscore(
                self.keys.pending_deadlines, "-inf", now, start=0, num=limit
            )
        )


def _stage(
    req: TransitionRequest, index: int, known: Mapping[str, Grant], now: float, policy_version: str
) -> _Staged | GrantbotError:
    """Judge one request against the grant read (pure): staged for commit, or the refusal."""
    old = known.get(req.grant_id)
    if old is None:
        return NotFound(f"no request or grant {req.grant_id}")
    if req.expected_version is not None and old.version != req.expected_version:
        return ConcurrencyError(f"{req.grant_id} changed (version {old.version}) meanwhile")
    try:
        outcome = lifecycle.apply(
            old, req.event, actor=req.actor, now=now, reason=req.reason, error=req.error
        )
    except (TransitionError, NotAuthorized) as e:
        return e
    # apply() returned a copy of its own: numbering it in place spares a second copy.
    new = outcome.grant
    new.version = old.version + 1
    body = _transition_body(req, old, outcome, now, policy_version)
    return _Staged(index=index, old=old, new=new, outcome=outcome, body=body)


def _parse_head(head: str) -> tuple[int, str]:
    seq, _, digest = head.partition(" ")
    return int(seq), digest


def _transition_body(
    req: TransitionRequest,
    old: Grant,
    outcome: lifecycle.Outcome,
    now: float,
    policy_version: str,
) -> str:
    """The audit body :meth:`GrantStore.transition` would write for the same event."""
    return entry_body(
        at=now,
        event=req.event.value,
        actor=req.actor.id,
        grant_id=req.grant_id,
        reason=req.reason,
        policy_version=policy_version,
        details={
            "from": old.status.value,
            "to": outcome.grant.status.value,
            "actor_kind": req.actor.kind.value,
            **outcome.details,
            **(req.details or {}),
        },
    )
