"""Grants in Redis: create, read, query, and transition with compare-and-set; and the one
door to every other part of grantbot's Redis (:class:`GrantStore`'s parts).

Every change is one Lua call (``commit.lua``) that checks the version read, writes the new
record, moves it between indexes and appends its audit entry, so a state change and its
audit record can never be separated and concurrent writers produce exactly one winner.
Losers re-read and re-apply the pure state machine, which then usually refuses
("already approved by ..."). Many changes at once go through :mod:`bot.store.bulk`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any, Final

import redis.asyncio as aioredis

from bot.domain import lifecycle
from bot.domain.ids import new_grant_id
from bot.domain.model import Actor, Event, Grant, Status
from bot.errors import ConcurrencyError, NotFound
from bot.log_throttle import Outage
from bot.pacing import UNPACED, Pacer
from bot.store.audit import AuditLog, entry_body
from bot.store.audit_feed import AuditFeed
from bot.store.bulk import BulkResult, BulkTransitions, TransitionRequest, transition_body
from bot.store.bundles import Bundles
from bot.store.chain import AuditChain, ScriptCall
from bot.store.checkpoints import CheckpointLog
from bot.store.connection import as_awaitable, close_client, connect, ping, translate_errors
from bot.store.dedupe import Dedupe
from bot.store.durability import DEFAULT_WAIT_TIMEOUT_S, Confirmation, Durability
from bot.store.escalations import EscalationLedger
from bot.store.indexes import ops_json, plan_indexes
from bot.store.keys import Keys
from bot.store.lease import LeaseKey
from bot.store.lifecycle_jobs import LifecycleJobs
from bot.store.message_refs import MessageRefs
from bot.store.pipelines import ApiRateLimit, SealedCredentials
from bot.store.provider_state import ProviderState
from bot.store.quota import AutoApprovalQuota
from bot.store.reminders import ReminderLedger
from bot.store.retry_states import RetryStates
from bot.store.revocation_jobs import RevocationJobs
from bot.store.scripts import register
from bot.store.ship_position import ShipPositions
from bot.store.ssh_keys import SshKeys

MAX_CAS_ATTEMPTS: Final = 64
_CREATE_ATTEMPTS: Final = 5
CREATED_EVENT: Final = "REQUEST"


def _asked_details(grant: Grant) -> dict[str, str]:
    """Who asked on the requester's behalf and the bundle, when so (issue 13): the audit
    names both the requester (the beneficiary) and the person who asked."""
    found = {"requested_by": grant.requested_by, "bundle": grant.bundle}
    return {k: v for k, v in found.items() if v is not None}


class GrantStore:
    """The one way grant state is read and changed, and the door to the store's other parts,
    which share its client, key prefix and audit chain (see :mod:`bot.store`)."""

    def __init__(
        self, client: aioredis.Redis, *, keys: Keys | None = None, pacer: Pacer = UNPACED
    ) -> None:
        """``pacer``: how the bulk paths (``transition_many``, and the revoker's loops) hand
        the event loop back; ``grantbot serve`` gives one that yields to Slack work."""
        #: The asyncio client: private, so every use of grantbot's Redis stays in bot/store
        #: (other parts get store objects from the factories below).
        self._redis = client
        self.keys = keys or Keys()
        self.pacer = pacer
        self.chain = AuditChain(client)
        self.audit = AuditLog(client, keys=self.keys, chain=self.chain)
        self._commit_one = register(client, "commit.lua")
        self._read_many = register(client, "read_many.lua")
        self._bulk = BulkTransitions(
            client,
            keys=self.keys,
            chain=self.chain,
            pacer=pacer,
            read=self._read_into,
            one_by_one=self.transition,
        )

    @classmethod
    def open(
        cls, url: str, *, keys: Keys, pacer: Pacer = UNPACED, max_connections: int = 64
    ) -> GrantStore:
        """A store on its own connection pool to the Redis at ``url`` (closed by
        :meth:`aclose`)."""
        client = connect(url, max_connections=max_connections, slot_key=keys.audit)
        return cls(client, keys=keys, pacer=pacer)

    async def aclose(self) -> None:
        """Close the client (and every connection of its pool)."""
        await close_client(self._redis)

    async def ping(self, *, timeout_s: float) -> None:
        """Redis answers PING within ``timeout_s``; else StoreUnavailable or TimeoutError."""
        await ping(self._redis, timeout_s=timeout_s)

    # -- the other parts -------------------------------------------------------------------

    @cached_property
    def quota(self) -> AutoApprovalQuota:
        return AutoApprovalQuota(self._redis, keys=self.keys)

    @cached_property
    def bundles(self) -> Bundles:
        """Bundle requests (issue 13): their items, and their one credential DM."""
        return Bundles(self._redis, keys=self.keys)

    @cached_property
    def escalations(self) -> EscalationLedger:
        return EscalationLedger(self._redis, keys=self.keys)

    @cached_property
    def ssh_keys(self) -> SshKeys:
        return SshKeys(self._redis, keys=self.keys, chain=self.chain)

    @cached_property
    def retry_states(self) -> RetryStates:
        return RetryStates(self._redis, keys=self.keys)

    def revocation_jobs(self) -> RevocationJobs:
        """A writer of revocation jobs of its own (its ``on_put`` hook is its owner's)."""
        return RevocationJobs(self._redis, keys=self.keys)

    def lifecycle_jobs(self, *, on_put: Callable[[], None] | None = None) -> LifecycleJobs:
        """A writer of reminder and scheduled-start jobs of its own, calling ``on_put`` (the
        scheduler that runs them looks again) after each put."""
        return LifecycleJobs(self._redis, keys=self.keys, on_put=on_put)

    @cached_property
    def reminders(self) -> ReminderLedger:
        return ReminderLedger(self._redis, keys=self.keys)

    @cached_property
    def checkpoints(self) -> CheckpointLog:
        return CheckpointLog(self._redis, keys=self.keys)

    def audit_feed(self, *, consumer: str = "") -> AuditFeed:
        """The audit stream's news group, read as ``consumer`` (see AuditFeed)."""
        return AuditFeed(self._redis, keys=self.keys, consumer=consumer)

    def ship_positions(self, sink_id: str) -> ShipPositions:
        return ShipPositions(self._redis, keys=self.keys, sink_id=sink_id)

    def provider_state(self, *, kind: str, resource: str) -> ProviderState:
        return ProviderState(self._redis, keys=self.keys, kind=kind, resource=resource)

    def message_refs(self) -> MessageRefs:
        """The Slack messages shown about each grant (the notifier's)."""
        return MessageRefs(self._redis, keys=self.keys)

    def dedupe(self, *, redis_outage: Outage | None = None) -> Dedupe:
        """First-time tokens (Slack deliveries), failing open while Redis is down, which is
        told to ``redis_outage``."""
        return Dedupe(self._redis, keys=self.keys, redis_outage=redis_outage)

    @cached_property
    def sealed_credentials(self) -> SealedCredentials:
        """Machine clients' credentials, sealed to their requests' keys (the pipelines API)."""
        return SealedCredentials(self._redis, keys=self.keys)

    def api_rate_limit(self, *, limit: int) -> ApiRateLimit:
        """Per-client call counts of the pipelines API, ``limit`` calls a minute."""
        return ApiRateLimit(self._redis, keys=self.keys, limit=limit)

    @translate_errors
    async def confirm_replicated(
        self, grant: Grant, *, with_job: bool, timeout_s: float = DEFAULT_WAIT_TIMEOUT_S
    ) -> Confirmation:
        """Before a credential leaves: ``grant`` as written (its job too, ``with_job``) is on
        a replica (``WAIT 1``) whenever the master has one (:mod:`bot.store.durability`)."""
        durability = Durability(self._redis, keys=self.keys)
        return await durability.confirm(grant, with_job=with_job, timeout_s=timeout_s)

    def scheduler_lease(self) -> LeaseKey:
        """The key that says which replica runs the scheduler."""
        return LeaseKey(self._redis, key=self.keys.scheduler_lease)

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
                    **_pipeline_details(grant),
                    **_asked_details(grant),
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
            body = transition_body(
                event=event,
                actor=actor,
                grant_id=grant_id,
                old=current,
                outcome=outcome,
                now=now,
                policy_version=policy_version,
                reason=reason,
                details=details,
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
        """Run commit.lua on the audit chain; the audit entry id on success, None when the
        version moved."""
        plan = plan_indexes(self.keys, old, new)
        keys = [self.keys.grant(new.id), self.keys.audit, self.keys.audit_head, *plan.keys]
        fixed: list[str | int] = [
            expected_version,
            new.model_dump_json(),
            new.status.value,
            body,
            ops_json(plan.ops),
        ]

        def attempt(head: str, hashes: list[str]) -> ScriptCall:
            return ScriptCall(self._commit_one, keys, [*fixed, head, hashes[0]])

        result = await self.chain.extend([body], attempt)
        if result[0] == "ok":
            return str(result[2])
        return None

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
        return await self._bulk.run(
            requests, now=now, policy_version=policy_version, current=current
        )

    async def _read_into(self, ids: list[str], known: dict[str, Grant]) -> None:
        """Read the grants in ``ids`` (into ``known``) in one command."""
        rows: list[str | None] = await self._read_many(keys=[self.keys.grant(gid) for gid in ids])
        async for gid, row in self.pacer.paced(zip(ids, rows, strict=True)):
            if row is not None:
                known[gid] = Grant.model_validate_json(row)

    @translate_errors
    async def read_many(self, grant_ids: Iterable[str]) -> dict[str, Grant]:
        """The grants that exist among ``grant_ids``, by id, read with one command.

        Like :meth:`get_many` but one Lua call instead of a pipeline of HGETs, which costs a
        quarter of the client CPU for thousands of ids (the bulk revocation path).
        """
        known: dict[str, Grant] = {}
        await self._read_into(list(dict.fromkeys(grant_ids)), known)
        return known

    # -- reads --------------------------------------------------------------------------

    @translate_errors
    async def get(self, grant_id: str) -> Grant:
        """The grant, or NotFound with a message naming the id."""
        data = await as_awaitable(self._redis.hget(self.keys.grant(grant_id), "d"))
        if data is None:
            raise NotFound(f"no request or grant {grant_id}")
        return Grant.model_validate_json(data)

    @translate_errors
    async def get_many(self, grant_ids: Iterable[str]) -> list[Grant]:
        """Grants for the ids that exist, in the order given (pipelined)."""
        ids = list(grant_ids)
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
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
            ids: list[str] = list(
                await as_awaitable(self._redis.smembers(self.keys.by_status(status)))
            )
            grants = await self.get_many(ids)
            grants.sort(key=lambda g: g.created_at, reverse=True)
            return grants[:limit]
        index = self.keys.user_all(user) if user is not None else self.keys.all_grants
        # Over-fetch when also filtering by status so the page still fills.
        fetch = limit if status is None else max(limit * 10, 1000)
        ids = list(await self._redis.zrevrange(index, 0, fetch - 1))
        grants = await self.get_many(ids)
        if status is not None:
            grants = [g for g in grants if g.status is status]
        return grants[:limit]

    @translate_errors
    async def open_for_user(self, user: str) -> list[Grant]:
        """A user's pending and live requests/grants, oldest first."""
        grants = await self.get_many(
            await as_awaitable(self._redis.smembers(self.keys.user_open(user)))
        )
        return sorted(grants, key=lambda g: g.created_at)

    @translate_errors
    async def in_status(self, status: Status) -> list[Grant]:
        return await self.get_many(
            await as_awaitable(self._redis.smembers(self.keys.by_status(status)))
        )

    async def live_rules(self) -> dict[tuple[str, str], list[str]]:
        """(resource, role) -> ids of the live grants (APPROVED, ACTIVE, REVOKE_FAILED) on it,
        and of the SCHEDULED ones (issued at their start under the rule): what a policy
        change must not remove. Reads every live grant; for rare callers."""
        used: dict[tuple[str, str], list[str]] = {}
        for status in (Status.APPROVED, Status.ACTIVE, Status.REVOKE_FAILED, Status.SCHEDULED):
            for grant in await self.in_status(status):
                used.setdefault((grant.resource, grant.role), []).append(grant.id)
        return used

    @translate_errors
    async def live_by_resource(self) -> dict[str, int]:
        """Resource -> live grants (ACTIVE or REVOKE_FAILED) on it, the standing privileges;
        resources with none are left out. One HGETALL, kept exact by the commit scripts."""
        raw = await as_awaitable(self._redis.hgetall(self.keys.live_by_resource))
        counts = {str(resource): int(n) for resource, n in raw.items()}
        return {resource: n for resource, n in counts.items() if n > 0}

    @translate_errors
    async def due_expiries(self, now: float, *, limit: int | None = 1000) -> list[str]:
        """Ids of live grants whose expires_at <= now, soonest first (all when ``limit`` is
        None)."""
        if limit is None:
            return list(await self._redis.zrangebyscore(self.keys.expiries, "-inf", now))
        return list(
            await self._redis.zrangebyscore(self.keys.expiries, "-inf", now, start=0, num=limit)
        )

    @translate_errors
    async def due_pending(self, now: float, *, limit: int = 1000) -> list[str]:
        """Ids of PENDING requests whose request_expires_at <= now."""
        return list(
            await self._redis.zrangebyscore(
                self.keys.pending_deadlines, "-inf", now, start=0, num=limit
            )
        )


def _pipeline_details(grant: Grant) -> dict[str, Any]:
    """A machine client's request is audited with the client and its deployment."""
    if grant.client is None:
        return {}
    details: dict[str, Any] = {"client": grant.client}
    if grant.deployment is not None:
        details["deployment"] = grant.deployment.model_dump(exclude_none=True)
    return details
