"""Many grants' events stored in bulk (:meth:`GrantStore.transition_many`): the revocation
path's one commit per batch.

Each chunk of up to :data:`BULK_CHUNK` grants is judged by the pure state machine on the
client, encoded, chained onto the audit head (:class:`~bot.store.chain.AuditChain`) and
written by one ``commit_many.lua`` call: every grant's state, indexes and audit entry
together, or none of them. Grants whose version moved since they were read are judged again
on fresh state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

from bot.domain import lifecycle
from bot.domain.model import Actor, Event, Grant
from bot.errors import ConcurrencyError, GrantbotError, NotAuthorized, NotFound, TransitionError
from bot.pacing import Pacer
from bot.store.audit import entry_body
from bot.store.chain import AuditChain, ScriptCall
from bot.store.indexes import index_ops, ops_json
from bot.store.keys import Keys
from bot.store.scripts import register

#: Grants per commit_many.lua call: one call holds Redis's thread for ~20 us per grant, so a
#: chunk of 500 blocks other clients for ~10 ms at most.
BULK_CHUNK: Final = 500
#: Rounds of "some versions moved: judge those again" before the rest of a chunk is committed
#: one grant at a time (each with its own compare-and-set retries).
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


#: Per request: the outcome, or why nothing changed (TransitionError, NotAuthorized, NotFound,
#: ConcurrencyError for a pinned version that moved).
BulkResult = lifecycle.Outcome | GrantbotError


#: :meth:`GrantStore.transition`, the fallback for grants that keep changing.
OneByOne = Callable[..., Awaitable[lifecycle.Outcome]]


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


class BulkTransitions:
    """The bulk path of one GrantStore: ``read`` fills a dict with the grants of the ids given
    (one command), ``one_by_one`` is the store's single transition."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        keys: Keys,
        chain: AuditChain,
        pacer: Pacer,
        read: Callable[[list[str], dict[str, Grant]], Awaitable[None]],
        one_by_one: OneByOne,
    ) -> None:
        self._keys = keys
        self._chain = chain
        self._pacer = pacer
        self._read = read
        self._one_by_one = one_by_one
        self._commit_many = register(client, "commit_many.lua")

    async def run(
        self,
        requests: Sequence[TransitionRequest],
        *,
        now: float,
        policy_version: str,
        current: Mapping[str, Grant] | None = None,
    ) -> list[BulkResult]:
        """See :meth:`GrantStore.transition_many`."""
        ids = [r.grant_id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("transition_many needs distinct grant ids")
        results: list[BulkResult | None] = [None] * len(requests)
        known = dict(current or {})
        for start in range(0, len(requests), BULK_CHUNK):
            chunk = range(start, min(start + BULK_CHUNK, len(requests)))
            await self._chunk(
                requests, chunk, results, known, now=now, policy_version=policy_version
            )
        return [r for r in results if r is not None]

    async def _chunk(
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
                await self._read(unread, known)
            async for i in self._pacer.paced(pending):  # ~100 us a grant: slices, acks between
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
            # Everything but the chain hashes is encoded before the chain is held, so one
            # batch's CPU work overlaps another's wait for Redis.
            key_list, rows = await self._encode(items)
            reply = await self._commit(key_list, rows, [st.body for st in items])
            if reply[0] == "ok":
                for st in items:
                    results[st.index] = lifecycle.Outcome(
                        grant=st.new,
                        event=st.outcome.event,
                        from_status=st.old.status,
                        details=st.outcome.details,
                    )
                return
            # Changed since read: judge those again on fresh state.
            for item in reply[1:]:
                st = items[int(item) - 1]
                known.pop(st.old.id, None)
                del staged[st.index]
        # Still changing after many rounds: one by one, each with its own CAS retries.
        for i in pending:
            req = requests[i]
            try:
                results[i] = await self._one_by_one(
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
        paced by the pacer."""
        key_list = [self._keys.audit, self._keys.audit_head]
        key_pos: dict[str, int] = {}

        def key_index(name: str) -> int:
            pos = key_pos.get(name)
            if pos is None:
                key_list.append(name)
                pos = key_pos[name] = len(key_list)  # 1-based, as Lua sees KEYS
            return pos

        rows: list[_Encoded] = []
        async for st in self._pacer.paced(items):
            ops = index_ops(self._keys, st.old, st.new, key_index)
            rows.append(
                _Encoded(
                    head=f"{key_index(self._keys.grant(st.new.id))} {st.old.version} "
                    f"{st.new.status.value}",
                    body=st.body.encode(),
                    ops=ops_json(ops).encode(),
                    grant=st.new.model_dump_json().encode(),
                )
            )
        return key_list, rows

    async def _commit(
        self, key_list: list[str], rows: list[_Encoded], bodies: list[str]
    ) -> list[Any]:
        """Chain the rows onto the audit head and run commit_many.lua: the ok reply, or a
        conflict reply naming the items whose version moved."""

        def attempt(head: str, hashes: list[str]) -> ScriptCall:
            args = [head, *(row.pack(h) for row, h in zip(rows, hashes, strict=True))]
            return ScriptCall(self._commit_many, key_list, args)

        return await self._chain.extend(bodies, attempt)


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
    body = transition_body(
        event=req.event,
        actor=req.actor,
        grant_id=req.grant_id,
        old=old,
        outcome=outcome,
        now=now,
        policy_version=policy_version,
        reason=req.reason,
        details=req.details,
    )
    return _Staged(index=index, old=old, new=new, outcome=outcome, body=body)


def transition_body(
    *,
    event: Event,
    actor: Actor,
    grant_id: str,
    old: Grant,
    outcome: lifecycle.Outcome,
    now: float,
    policy_version: str,
    reason: str | None,
    details: Mapping[str, Any] | None,
) -> str:
    """The audit body of one grant's transition (the single and the bulk path write the same)."""
    return entry_body(
        at=now,
        event=event.value,
        actor=actor.id,
        grant_id=grant_id,
        reason=reason,
        policy_version=policy_version,
        details={
            "from": old.status.value,
            "to": outcome.grant.status.value,
            "actor_kind": actor.kind.value,
            **outcome.details,
            **(details or {}),
        },
    )
