"""The path from due grants to revoked grants.

Ending a grant is two steps, always in this order: take the access away at its target
(``provider.revoke``, idempotent), then store the end (one compare-and-set transition that
also appends the audit entry). A grant is never stored EXPIRED or REVOKED while its access
may remain; if the second step loses a race, the access is gone anyway and the winner's
transition stands.

Three ways in:

- :meth:`Revoker.run_job`: a revocation job fired (see :mod:`bot.scheduler`). Jobs that fire
  together are gathered into batches: one read of all their grants, revocations at the targets
  with bounded concurrency per target, and one bulk commit per batch
  (:meth:`GrantStore.transition_many`). This is what lets 10,000 expiries in one second finish
  within the second after, where one job at a time cannot.
- :meth:`Revoker.expire_due` / :meth:`Revoker.expire_grants`: the same batches, driven by the
  store's expiries index (restart recovery, the reconciler).
- :meth:`Revoker.revoke` / :meth:`Revoker.force_close`: a person ends one grant now.

A revocation that fails at the target leaves the grant REVOKE_FAILED (one REVOKE_FAIL
transition, so one audit entry, per attempt), tells the listener, counts it, and schedules a
retry with exponential backoff and jitter (:class:`RetryPolicy`). After ``window_s`` of
failures it gives up loudly: the grant stays REVOKE_FAILED until an operator force-closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Protocol, cast

from bot import metrics
from bot.domain import lifecycle
from bot.domain.duration import format_duration
from bot.domain.model import Actor, ActorKind, Event, Grant, Status
from bot.errors import ConcurrencyError, GrantbotError, StoreUnavailable, TransitionError
from bot.log_throttle import Outage
from bot.pacing import PACE_EVERY
from bot.providers.base import BulkRevoker, GrantContext, Provider
from bot.scheduler import RevocationJobs
from bot.store.connection import aw, translate_errors, unavailable_as_store_error, unavailable_cause
from bot.store.connection import redis_outage as new_redis_outage
from bot.store.grants import GrantStore, TransitionRequest

log = logging.getLogger(__name__)

DEFAULT_MAX_CONCURRENCY_PER_TARGET: Final = 16
DEFAULT_REVOKE_TIMEOUT_S: Final = 30.0
#: Grants per batch: big enough to amortise the round trips of a burst, small enough that one
#: batch's bulk commit holds Redis for only ~10 ms.
DEFAULT_BATCH_SIZE: Final = 500
#: Batches in flight at once; more overlap a slow target with the next batch's Redis work.
DEFAULT_MAX_BATCHES: Final = 4
#: While Redis is unreachable a batch is retried with doubling waits between these bounds.
STORE_RETRY_MIN_S: Final = 0.25
STORE_RETRY_MAX_S: Final = 5.0
#: A job taken by the job store counts as being handled for this long at most (in case its
#: run never starts: the scheduler shut down in between).
CLAIM_TTL_S: Final = 60.0
SCHEDULER_ACTOR: Final = Actor.system("scheduler")
REVOKER_ACTOR: Final = Actor.system("revoker")
ABANDONED_EVENT: Final = "REVOKE_ABANDONED"

# -- what the service provides ------------------------------------------------------------


class ProviderResolver(Protocol):
    """The provider and context that can take ``grant``'s access away (from the policy)."""

    def resolve(self, grant: Grant) -> tuple[Provider, GrantContext]: ...


class RevocationListener(Protocol):
    """Told after each change is stored. Must not raise; if it does, it is logged and ignored.

    ``on_revoke_failed`` is called after every failed attempt (``grant.revoke_attempts`` says
    which; update one message rather than posting each). When the retry window has passed,
    ``grant.last_error`` says so and asks for a force-close.
    """

    async def on_ended(self, grant: Grant) -> None: ...

    async def on_revoke_failed(self, grant: Grant) -> None: ...

    async def on_access_removed(self, grant: Grant) -> None:
        """``grant`` is live (it was extended while its access was being taken away), but its
        access is gone at the target: issue it again."""
        ...


# -- retry timing (pure) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter over a window that outlasts a maintenance outage.

    Attempt ``n`` (1 = the first failure) waits ``min(cap_s, base_s * 2**(n-1))``, of which
    the second half is random ("equal jitter": retries of many grants spread out, yet never
    come sooner than half the backoff). Retries stop once ``window_s`` has passed since the
    first failure; the last one is placed at the end of the window.
    """

    base_s: float = 5.0
    cap_s: float = 600.0
    window_s: float = 24 * 3600.0

    def delay_s(self, attempt: int, *, rand: float) -> float:
        """The wait after failure number ``attempt`` (>= 1); ``rand`` is uniform in [0, 1)."""
        exponent = min(max(attempt, 1) - 1, 62)
        backoff = min(self.cap_s, self.base_s * 2.0**exponent)
        return backoff / 2 + backoff / 2 * rand

    def next_attempt_at(
        self, *, attempt: int, first_failed_at: float, now: float, rand: float
    ) -> float | None:
        """When to try again after failure number ``attempt`` at ``now``; None to give up."""
        window_ends = first_failed_at + self.window_s
        if now >= window_ends:
            return None
        return min(now + self.delay_s(attempt, rand=rand), window_ends)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryState:
    """What a failing revocation must remember between attempts (stored as JSON)."""

    first_failed_at: float
    event: Event  # what ends the grant once the target lets go: EXPIRE or REVOKE
    requested_by: Actor
    reason: str | None = None
    abandoned_at: float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "first_failed_at": self.first_failed_at,
                "event": self.event.value,
                "requested_by": self.requested_by.model_dump(mode="json"),
                "reason": self.reason,
                "abandoned_at": self.abandoned_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> RetryState:
        data = json.loads(raw)
        return cls(
            first_failed_at=float(data["first_failed_at"]),
            event=Event(data["event"]),
            requested_by=Actor.model_validate(data["requested_by"]),
            reason=data.get("reason"),
            abandoned_at=data.get("abandoned_at"),
        )


# -- batching -----------------------------------------------------------------------------


class Handled:
    """How a grant submitted for revocation was handled (the value of its future)."""

    ENDED: Final = "ended"
    FAILED: Final = "failed"  # REVOKE_FAILED, retry scheduled (or window passed)
    SKIPPED: Final = "skipped"  # not due, not live, or ended by someone else meanwhile


@dataclass(frozen=True, slots=True)
class _Work:
    grant_id: str
    retry: bool  # a job fired: a REVOKE_FAILED grant is retried (else only ACTIVE, due)


class _Batcher:
    """Gathers submissions made in the same moment into batches; one future per grant id.

    A grant already waiting or in flight is not submitted twice: the second caller shares the
    first one's future. Futures resolve as soon as their batch's state is stored.
    """

    def __init__(
        self,
        handle: Callable[[list[_Work]], Awaitable[dict[str, str]]],
        *,
        batch_size: int,
        max_batches: int,
        redis_outage: Outage,
    ) -> None:
        self._handle = handle
        self._outage = redis_outage
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(max_batches)
        self._queue: list[_Work] = []
        self._futures: dict[str, asyncio.Future[str]] = {}
        self._drainer: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()

    def submit(self, work: _Work) -> asyncio.Future[str]:
        fut = self._futures.get(work.grant_id)
        if fut is not None:
            return fut
        fut = asyncio.get_running_loop().create_future()
        self._futures[work.grant_id] = fut
        self._queue.append(work)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="revocation-batcher")
        return fut

    @property
    def busy(self) -> bool:
        return bool(self._queue or self._batches)

    def pending(self, grant_id: str) -> bool:
        """True while ``grant_id`` is queued or in a batch in flight."""
        return grant_id in self._futures

    async def settled(self, grant_ids: Iterable[str]) -> None:
        """Return once none of ``grant_ids`` is queued or in flight."""
        futures = [f for gid in grant_ids if (f := self._futures.get(gid)) is not None]
        if futures:
            await asyncio.wait(futures)

    async def _drain(self) -> None:
        # One loop turn first: every job APScheduler submitted in this wakeup joins the batch.
        await asyncio.sleep(0)
        while self._queue:
            await self._slots.acquire()
            batch, self._queue = self._queue[: self._batch_size], self._queue[self._batch_size :]
            task = asyncio.create_task(self._run(batch), name="revocation-batch")
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _run(self, batch: list[_Work]) -> None:
        try:
            delay_s = STORE_RETRY_MIN_S
            while True:
                try:
                    handled = await self._handle(batch)
                    self._outage.succeeded()
                    break
                except StoreUnavailable as e:
                    # Nothing was lost: the grants are still live in Redis. Keep the batch
                    # and try again when Redis is back (each step is idempotent). The
                    # outage says so once, not once per retry.
                    self._outage.failed(unavailable_cause(e))
                    await asyncio.sleep(delay_s)
                    delay_s = min(delay_s * 2, STORE_RETRY_MAX_S)
        except Exception as e:
            log.exception("a revocation batch of %d grant(s) failed", len(batch))
            for work in batch:
                self._settle(work.grant_id, error=e)
        else:
            for work in batch:
                self._settle(work.grant_id, result=handled.get(work.grant_id, Handled.SKIPPED))
        finally:
            self._slots.release()

    def _settle(
        self, grant_id: str, *, result: str | None = None, error: BaseException | None = None
    ) -> None:
        fut = self._futures.pop(grant_id, None)
        if fut is None or fut.done():
            return
        if error is not None:
            fut.set_exception(error)
            fut.exception()  # retrieved: nobody may be waiting on it
        else:
            fut.set_result(result or Handled.SKIPPED)

    async def drain(self, *, timeout_s: float) -> None:
        """Wait until nothing is queued or in flight (at most ``timeout_s``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.busy:
                    waiting = [*self._batches] + ([self._drainer] if self._drainer else [])
                    await asyncio.wait(waiting)


# -- the revoker --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ended:
    handled: dict[str, str]  # grant id -> Handled.*
    grants: dict[str, Grant]  # as stored: EXPIRED/REVOKED, or REVOKE_FAILED


@dataclass(frozen=True, slots=True)
class _Ending:
    """One grant to take away now, and how its end is to be recorded."""

    grant: Grant
    event: Event
    actor: Actor
    reason: str | None
    retry_state: RetryState | None  # set when this is a retry of a failing revocation
    #: False when a fired job brought it: APScheduler has already removed that job.
    may_have_job: bool = True


class Revoker:
    """Takes access away and records it. Every public method is safe to call concurrently,
    from any replica (the store's compare-and-set lets exactly one end win)."""

    def __init__(
        self,
        store: GrantStore,
        *,
        resolver: ProviderResolver,
        listener: RevocationListener,
        policy_version: Callable[[], str],
        clock: Callable[[], float] = time.time,
        max_concurrency_per_target: int = DEFAULT_MAX_CONCURRENCY_PER_TARGET,
        retry: RetryPolicy | None = None,
        revoke_timeout_s: float = DEFAULT_REVOKE_TIMEOUT_S,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batches: int = DEFAULT_MAX_BATCHES,
        jobs: RevocationJobs | None = None,
        rand: Callable[[], float] = random.random,
        redis_outage: Outage | None = None,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.listener = listener
        self.policy_version = policy_version
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.jobs = jobs or RevocationJobs(store.redis, keys=store.keys)
        self._max_per_target = max_concurrency_per_target
        self._revoke_timeout_s = revoke_timeout_s
        self._rand = rand
        self._targets: dict[str, asyncio.Semaphore] = {}
        self._batcher = _Batcher(
            self._handle,
            batch_size=batch_size,
            max_batches=max_batches,
            redis_outage=redis_outage or new_redis_outage(),
        )
        self._notifications: set[asyncio.Task[None]] = set()
        self._claimed: dict[str, float] = {}  # grant id -> monotonic time its job was taken
        #: Grants revoked at their target whose end could not be stored because the grant
        #: changed meanwhile (an extension): judged again; if live, their access is restored.
        self._revoked_while_changing: set[str] = set()

    # -- entry points ------------------------------------------------------------------

    async def run_job(self, grant_id: str) -> None:
        """What a fired revocation job does: end ``grant_id`` if due, or retry its failing
        revocation. Batched with every other job firing now; returns once handled."""
        await asyncio.shield(self._batcher.submit(_Work(grant_id, retry=True)))

    async def run_jobs(self, grant_ids: Sequence[str]) -> None:
        """:meth:`run_job` for many grants (the revocation jobs due in one wakeup)."""
        try:
            await self._submit_all(grant_ids, retry=True)
        finally:
            for gid in grant_ids:
                self._claimed.pop(gid, None)

    def note_claimed(self, grant_ids: Sequence[str]) -> None:
        """The job store took these grants' jobs to run them: they are being handled even
        before their job starts (so the reconciler does not count them as missed)."""
        now = time.monotonic()
        for gid in grant_ids:
            self._claimed[gid] = now

    def is_handling(self, grant_id: str) -> bool:
        """True while this process is revoking ``grant_id`` (claimed, queued or in flight)."""
        if self._batcher.pending(grant_id):
            return True
        claimed_at = self._claimed.get(grant_id)
        return claimed_at is not None and time.monotonic() - claimed_at < CLAIM_TTL_S

    async def expire_grants(self, grant_ids: Iterable[str]) -> int:
        """End those of ``grant_ids`` that are ACTIVE and past expiry (batched). Returns how
        many this call ended. REVOKE_FAILED grants are left to their retry jobs."""
        results = await self._submit_all(grant_ids, retry=False)
        return sum(1 for r in results if r == Handled.ENDED)

    async def _submit_all(self, grant_ids: Iterable[str], *, retry: bool) -> list[str]:
        futures = [
            self._batcher.submit(_Work(gid, retry=retry))
            async for gid in self.store.pacer.paced(grant_ids)
        ]
        if not futures:
            return []
        # Shielded: a caller that is cancelled (scheduler shutdown) must not cancel futures
        # other callers share; the batches run to completion either way.
        return await asyncio.shield(asyncio.gather(*futures))

    async def expire_due(self, now: float) -> int:
        """End every ACTIVE grant whose expiry is at or before ``now``, in bulk, from the
        store's expiries index (restart recovery). Returns how many were ended."""
        ids = await self._due_ids(now)
        return await self.expire_grants(ids)

    async def revoke(
        self,
        grant_id: str,
        *,
        actor: Actor,
        reason: str | None,
        event: Event = Event.REVOKE,
    ) -> Grant:
        """End one grant now on behalf of ``actor``: revoke at the target, then store it.

        Idempotent: a grant already ended is returned as it is. Raises NotFound for an unknown
        id, and NotAuthorized / TransitionError (before touching the target) when ``actor``
        may not do this in the grant's state. When the target fails, the grant is returned
        REVOKE_FAILED with a retry scheduled; that is not an exception.
        """
        grant = await self.store.get(grant_id)
        if grant.terminal:
            return grant
        # Judge authority and state first: nobody gets a revocation they may not cause.
        lifecycle.apply(grant, event, actor=actor, now=self.clock(), reason=reason)
        state: RetryState | None = None
        if grant.status is Status.REVOKE_FAILED:
            # A person retrying a failing revocation: keep the window it started.
            old = (await self.retry_states([grant_id])).get(grant_id) or _assumed_state(grant)
            state = RetryState(
                first_failed_at=old.first_failed_at,
                event=event,
                requested_by=actor,
                reason=reason,
            )
        result = await self._end([_Ending(grant, event, actor, reason, state)], inline=True)
        stored = result.grants.get(grant_id)
        if stored is not None:
            return stored
        current = await self.store.get(grant_id)  # ended by someone else meanwhile
        if not current.terminal:
            raise TransitionError(f"{grant_id} changed while being revoked; try again")
        return current

    async def force_close(self, grant_id: str, *, operator: str, reason: str | None) -> Grant:
        """Close a grant whose revocation keeps failing (``grantbot grants revoke --force``).

        Tries the target once more and records in the audit entry whether that worked and
        whether access still looks live; closes the grant either way, since the operator has
        taken responsibility. If access is still live, the reconciler keeps revoking it as an
        orphan. An ACTIVE grant must be revoked instead (TransitionError); an ended one is
        returned as it is.
        """
        grant = await self.store.get(grant_id)
        if grant.terminal:
            return grant
        if grant.status is Status.ACTIVE:
            raise TransitionError(
                f"{grant_id} is ACTIVE: revoke it; force-close is for grants whose revocation "
                "keeps failing"
            )
        actor = Actor(kind=ActorKind.OPERATOR, id=operator)
        lifecycle.apply(grant, Event.FORCE_CLOSE, actor=actor, now=self.clock(), reason=reason)
        error = (await self._revoke_all([grant]))[grant.id]
        details: dict[str, Any] = {"final_revoke": "ok" if error is None else error}
        if error is not None:
            details["still_live"] = await self._check_live(grant)
        try:
            outcome = await self.store.transition(
                grant_id,
                Event.FORCE_CLOSE,
                actor=actor,
                now=self.clock(),
                policy_version=self.policy_version(),
                reason=reason,
                details=details,
            )
        except TransitionError:
            current = await self.store.get(grant_id)
            if current.terminal:
                return current
            raise
        await self._forget(jobs=[grant_id], retries=[grant_id])
        _ended_counter(Event.FORCE_CLOSE).inc()
        log.warning(
            "grant %s force-closed by %s (final revoke: %s)",
            grant_id,
            operator,
            details["final_revoke"],
        )
        await self._notify_now(self.listener.on_ended, outcome.grant)
        return outcome.grant

    async def drain(self, *, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) for batches in flight and their notifications."""
        await self._batcher.drain(timeout_s=timeout_s)
        if self._notifications:
            await asyncio.wait(set(self._notifications), timeout=timeout_s)

    async def aclose(self, *, timeout_s: float = 10.0) -> None:
        await self.drain(timeout_s=timeout_s)

    # -- queries used by the reconciler ------------------------------------------------

    @translate_errors
    async def retry_states(self, grant_ids: Sequence[str]) -> dict[str, RetryState]:
        """The stored retry states of those of ``grant_ids`` that are failing."""
        if not grant_ids:
            return {}
        rows = await aw(self.store.redis.hmget(self.store.keys.revoke_retries, list(grant_ids)))
        return {
            gid: RetryState.from_json(raw)
            for gid, raw in zip(grant_ids, rows, strict=True)
            if raw is not None
        }

    @translate_errors
    async def abandoned_ids(self) -> list[str]:
        """Grants whose revocation failed for the whole retry window (still REVOKE_FAILED)."""
        rows = await aw(self.store.redis.hgetall(self.store.keys.revoke_retries))
        return [gid for gid, raw in rows.items() if RetryState.from_json(raw).abandoned_at]

    # -- the batch path ----------------------------------------------------------------

    @translate_errors
    async def _due_ids(self, now: float) -> list[str]:
        ids: list[str] = await self.store.redis.zrangebyscore(self.store.keys.expiries, "-inf", now)
        return ids

    async def _handle(self, batch: list[_Work]) -> dict[str, str]:
        """Decide what each submitted grant needs, then end the due ones in bulk."""
        now = self.clock()
        grants = await self.store.read_many(w.grant_id for w in batch)
        failing = [w.grant_id for w in batch if _status(grants, w.grant_id) is Status.REVOKE_FAILED]
        states = await self.retry_states(failing)
        endings: list[_Ending] = []
        rearm: list[tuple[str, float]] = []
        restore: list[Grant] = []
        async for work in self.store.pacer.paced(batch):
            grant = grants.get(work.grant_id)
            revoked_while_changing = work.grant_id in self._revoked_while_changing
            self._revoked_while_changing.discard(work.grant_id)
            if grant is None or grant.expires_at is None:
                continue
            if grant.status is Status.ACTIVE:
                if grant.expires_at > now:
                    if work.retry:  # the job fired early: the grant was extended meanwhile
                        rearm.append((grant.id, grant.expires_at))
                    if revoked_while_changing:
                        restore.append(grant)  # live, but we took its access away
                    continue
                endings.append(
                    _Ending(grant, Event.EXPIRE, SCHEDULER_ACTOR, None, None, not work.retry)
                )
            elif grant.status is Status.REVOKE_FAILED and work.retry:
                state = states.get(grant.id) or _assumed_state(grant)
                if state.abandoned_at is not None:
                    continue
                endings.append(
                    _Ending(grant, state.event, REVOKER_ACTOR, state.reason, state, False)
                )
        if rearm:
            await self.jobs.put_many(rearm)
        for grant in restore:
            log.warning(
                "%s was extended while being revoked at its target; issuing it again", grant.id
            )
            self._start(
                self._notify_now(self.listener.on_access_removed, grant), name="revocation-restore"
            )
        if not endings:
            return {}
        return (await self._end(endings, inline=False)).handled

    async def _end(self, endings: list[_Ending], *, inline: bool) -> _Ended:
        """Revoke at the targets, then store the ends and the failures; then tell the
        listener (awaited when ``inline``, else in the background so a slow listener never
        holds up the next batch)."""
        errors = await self._revoke_all([e.grant for e in endings])
        done = [e for e in endings if errors.get(e.grant.id) is None]
        failed = [(e, err) for e in endings if (err := errors.get(e.grant.id)) is not None]
        handled: dict[str, str] = {}
        ended: list[Grant] = []
        changed: list[str] = []
        if done:
            now = self.clock()
            results = await self.store.transition_many(
                [
                    TransitionRequest(
                        grant_id=e.grant.id,
                        event=e.event,
                        actor=e.actor,
                        reason=e.reason,
                        details=_retry_details(e),
                        expected_version=e.grant.version,
                    )
                    for e in done
                ],
                now=now,
                policy_version=self.policy_version(),
                current={e.grant.id: e.grant for e in done},
            )
            async for e, result in self.store.pacer.paced(zip(done, results, strict=True)):
                if isinstance(result, lifecycle.Outcome):
                    handled[e.grant.id] = Handled.ENDED
                    ended.append(result.grant)
                    _ended_counter(e.event).inc()
                    if e.event is Event.EXPIRE and e.grant.expires_at is not None:
                        metrics.REVOCATION_LAG.observe(max(0.0, now - e.grant.expires_at))
                elif isinstance(result, ConcurrencyError):
                    # Changed after we read it and revoked at the target (an extension, most
                    # likely): our end no longer describes it. Judge it again from scratch.
                    handled[e.grant.id] = Handled.SKIPPED
                    changed.append(e.grant.id)
                else:
                    handled[e.grant.id] = Handled.SKIPPED  # ended by someone else meanwhile
            ended_ids = {g.id for g in ended}
            await self._forget(
                jobs=[e.grant.id for e in done if e.may_have_job and e.grant.id in ended_ids],
                retries=[
                    e.grant.id
                    for e in done
                    if e.grant.status is Status.REVOKE_FAILED and e.grant.id in ended_ids
                ],
            )
        failed_grants = await self._record_failures(failed, handled) if failed else []
        if changed:
            self._revoked_while_changing.update(changed)
            self._start(self._judge_again(changed), name="revocation-recheck")
        if not inline:
            log.info(
                "revocation batch: %d ended, %d failed, %d skipped",
                len(ended),
                len(failed_grants),
                len(endings) - len(ended) - len(failed_grants),
            )
        if inline:
            await self._notify_all(ended, failed_grants)
        else:
            self._notify_later(ended, failed_grants)
        return _Ended(handled=handled, grants={g.id: g for g in (*ended, *failed_grants)})

    async def _record_failures(
        self, failed: list[tuple[_Ending, str]], handled: dict[str, str]
    ) -> list[Grant]:
        """REVOKE_FAIL each (audited), store its retry state, schedule its retry or give up."""
        now = self.clock()
        plans: list[tuple[_Ending, RetryState, float | None, str]] = []
        for e, error in failed:
            state = e.retry_state or RetryState(
                first_failed_at=now, event=e.event, requested_by=e.actor, reason=e.reason
            )
            attempt = e.grant.revoke_attempts + 1
            next_at = self.retry.next_attempt_at(
                attempt=attempt, first_failed_at=state.first_failed_at, now=now, rand=self._rand()
            )
            message = error
            if next_at is None:
                window = format_duration(int(now - state.first_failed_at))
                message = (
                    f"{error}; gave up after {attempt} attempts over {window}: check the target "
                    "and close this grant with `grantbot grants revoke --force`"
                )
                state = RetryState(
                    first_failed_at=state.first_failed_at,
                    event=state.event,
                    requested_by=state.requested_by,
                    reason=state.reason,
                    abandoned_at=now,
                )
            plans.append((e, state, next_at, message))
        results = await self.store.transition_many(
            [
                TransitionRequest(
                    grant_id=e.grant.id,
                    event=Event.REVOKE_FAIL,
                    actor=REVOKER_ACTOR,
                    error=message,
                    details={
                        "ends_with": state.event.value,
                        "next_attempt_at": next_at,
                        "requested_by": state.requested_by.id,
                    },
                )
                for e, state, next_at, message in plans
            ],
            now=now,
            policy_version=self.policy_version(),
            current={e.grant.id: e.grant for e, _ in failed},
        )
        stored: list[Grant] = []
        retry_states: dict[str, str] = {}
        retry_jobs: list[tuple[str, float]] = []
        abandoned: list[Grant] = []
        for (e, state, next_at, message), result in zip(plans, results, strict=True):
            if not isinstance(result, lifecycle.Outcome):
                handled[e.grant.id] = Handled.SKIPPED  # ended meanwhile (e.g. force-closed)
                continue
            handled[e.grant.id] = Handled.FAILED
            stored.append(result.grant)
            retry_states[e.grant.id] = state.to_json()
            metrics.REVOKE_FAILURES.labels(resource=e.grant.resource).inc()
            if next_at is not None:
                retry_jobs.append((e.grant.id, next_at))
                log.warning(
                    "revoking %s at %s failed (attempt %d): %s; retrying at %.0f",
                    e.grant.id,
                    e.grant.resource,
                    result.grant.revoke_attempts,
                    _first_line(message),
                    next_at,
                )
            else:
                abandoned.append(result.grant)
        if retry_states:
            async with unavailable_as_store_error():
                await aw(
                    self.store.redis.hset(self.store.keys.revoke_retries, mapping=retry_states)
                )
        if retry_jobs:
            await self.jobs.put_many(retry_jobs)
        for grant in abandoned:
            await self._abandon(grant, now=now)
        return stored

    async def _abandon(self, grant: Grant, *, now: float) -> None:
        metrics.REVOKE_ABANDONED.labels(resource=grant.resource).inc()
        log.error(
            "GAVE UP revoking %s at %s after %d attempts; access may remain. Check the target "
            "and run `grantbot grants revoke --force %s`. Last error: %s",
            grant.id,
            grant.resource,
            grant.revoke_attempts,
            grant.id,
            grant.last_error,
        )
        await self.store.audit.append(
            ABANDONED_EVENT,
            actor=REVOKER_ACTOR.id,
            at=now,
            grant_id=grant.id,
            reason="revocation kept failing for the whole retry window",
            policy_version=self.policy_version(),
            details={
                "attempts": grant.revoke_attempts,
                "window_s": self.retry.window_s,
                "resource": grant.resource,
                "error": grant.last_error,
            },
        )

    async def _forget(self, *, jobs: Sequence[str], retries: Sequence[str]) -> None:
        """Drop what ended grants leave behind: their jobs (unless APScheduler already did)
        and the retry states of those whose revocation had been failing."""
        if jobs:
            await self.jobs.remove_many(jobs)
        if retries:
            async with unavailable_as_store_error():
                await aw(self.store.redis.hdel(self.store.keys.revoke_retries, *retries))

    # -- targets -----------------------------------------------------------------------

    def _target(self, resource: str) -> asyncio.Semaphore:
        sem = self._targets.get(resource)
        if sem is None:
            sem = self._targets[resource] = asyncio.Semaphore(self._max_per_target)
        return sem

    async def _revoke_all(self, grants: list[Grant]) -> dict[str, str | None]:
        """Revoke each grant at its target. A provider with ``revoke_many`` (BulkRevoker)
        gets all of a target's grants in one call; for the others, per target, up to
        ``max_concurrency_per_target`` workers (a few tasks per batch, not one per grant).
        Either way a target's slots are shared by every batch in flight."""
        errors: dict[str, str | None] = {}
        if len(grants) == 1:
            async with self._target(grants[0].resource):
                errors[grants[0].id] = await self._revoke_at_target(grants[0])
            return errors
        by_target: dict[str, deque[tuple[Grant, Provider, GrantContext]]] = {}
        bulk: dict[tuple[str, int], tuple[BulkRevoker, list[tuple[Grant, GrantContext]]]] = {}
        async for grant in self.store.pacer.paced(grants):
            try:
                provider, ctx = self.resolver.resolve(grant)
            except Exception as e:
                errors[grant.id] = self._failure(grant.resource, grant.id, e)
                continue
            if _bulk_capable(type(provider)):
                bulk_provider = cast(BulkRevoker, provider)
                key = (grant.resource, id(provider))
                _, group = bulk.setdefault(key, (bulk_provider, []))
                group.append((grant, ctx))
            else:
                by_target.setdefault(grant.resource, deque()).append((grant, provider, ctx))

        async def worker(resource: str, queue: deque[tuple[Grant, Provider, GrantContext]]) -> None:
            async with self._target(resource):  # one slot per worker, not per grant
                done = 0
                while queue:
                    grant, provider, ctx = queue.popleft()
                    errors[grant.id] = await self._revoke_one(grant, provider, ctx)
                    done += 1
                    if done % PACE_EVERY == 0:  # a target answering at once: one turn (I/O
                        await asyncio.sleep(0)  # bound otherwise, so no rest is earned here)

        workers = [
            worker(resource, queue)
            for resource, queue in by_target.items()
            for _ in range(min(self._max_per_target, len(queue)))
        ]
        bulk_calls = [
            self._revoke_many_at_target(resource, provider, group, errors)
            for (resource, _), (provider, group) in bulk.items()
        ]
        await asyncio.gather(*workers, *bulk_calls)
        return errors

    async def _revoke_many_at_target(
        self,
        resource: str,
        provider: BulkRevoker,
        group: list[tuple[Grant, GrantContext]],
        errors: dict[str, str | None],
    ) -> None:
        """One ``revoke_many`` call for ``group`` (all at ``resource``), in one slot of the
        target's limit; records each grant's outcome in ``errors``."""
        try:
            async with self._target(resource):
                async with asyncio.timeout(self._revoke_timeout_s):
                    failures = await provider.revoke_many([ctx for _, ctx in group])
        except Exception as e:
            message = self._failure(resource, f"{len(group)} grant(s)", e)
            for grant, _ in group:
                errors[grant.id] = message
            return
        for grant, _ in group:
            error = failures.get(grant.id)
            errors[grant.id] = None if error is None else self._failure(resource, grant.id, error)

    async def _revoke_at_target(self, grant: Grant) -> str | None:
        """Take ``grant``'s access away; None on success, else a one-line reason. The caller
        holds a slot of the target's concurrency limit."""
        try:
            provider, ctx = self.resolver.resolve(grant)
        except Exception as e:
            return self._failure(grant.resource, grant.id, e)
        return await self._revoke_one(grant, provider, ctx)

    async def _revoke_one(self, grant: Grant, provider: Provider, ctx: GrantContext) -> str | None:
        """``provider.revoke(ctx)`` within the revoke timeout; None or the reason it failed."""
        try:
            async with asyncio.timeout(self._revoke_timeout_s):
                await provider.revoke(ctx)
        except Exception as e:
            return self._failure(grant.resource, grant.id, e)
        return None

    def _failure(self, resource: str, what: str, e: BaseException) -> str:
        """The one-line reason stored on a grant whose revocation at ``resource`` raised
        ``e`` (``what``: the grant or grants, for the log)."""
        if isinstance(e, TimeoutError):
            return f"revoking at {resource} timed out after {self._revoke_timeout_s:g}s"
        if isinstance(e, GrantbotError):
            return str(e) or type(e).__name__
        # Not one of ours: its text may quote anything (a URL with a password), so only the
        # type goes into the grant and the audit log; the log has the traceback.
        log.error("revoking %s at %s raised", what, resource, exc_info=e)
        return f"unexpected {type(e).__name__} from the {resource} provider"

    async def _check_live(self, grant: Grant) -> bool | None:
        """Whether access still looks live at the target; None when that cannot be told."""
        try:
            provider, ctx = self.resolver.resolve(grant)
            async with asyncio.timeout(self._revoke_timeout_s):
                return await provider.check(ctx)
        except Exception as e:
            log.warning("checking %s at %s failed: %s", grant.id, grant.resource, e)
            return None

    # -- telling the service -----------------------------------------------------------

    def _start(self, work: Awaitable[None], *, name: str) -> None:
        """Run ``work`` in the background, owned (drain waits for it)."""
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._notifications.add(task)
        task.add_done_callback(self._notifications.discard)

    def _notify_later(self, ended: list[Grant], failed: list[Grant]) -> None:
        if not ended and not failed:
            return
        self._start(self._notify_all(ended, failed, give_way=True), name="revocation-notify")

    async def _judge_again(self, grant_ids: list[str]) -> None:
        """Grants whose end lost to a change after we revoked them at the target: once the
        batch that handled them has settled, submit them again as a fired job would. Still
        due: revoked again and ended. Extended: their job moves, and their access, which we
        took away, is restored (see :meth:`_handle`)."""
        await self._batcher.settled(grant_ids)
        try:
            await self._submit_all(grant_ids, retry=True)
        except Exception:  # the reconciler will find them; never lose the task silently
            log.exception("judging %d changed grant(s) again failed", len(grant_ids))

    async def _notify_all(
        self, ended: list[Grant], failed: list[Grant], *, give_way: bool = False
    ) -> None:
        """Tell the listener, one grant at a time. ``give_way``: a batch's notices are
        background work; each waits (a bounded time) while Slack work people wait on is in
        progress (see bot.pacing), so 10,000 expiry notices never slow a credential DM."""
        for grant in ended:
            if give_way:
                await self.store.pacer.give_way()
            await self._notify_now(self.listener.on_ended, grant)
        for grant in failed:
            if give_way:
                await self.store.pacer.give_way()
            await self._notify_now(self.listener.on_revoke_failed, grant)

    @staticmethod
    async def _notify_now(call: Callable[[Grant], Awaitable[None]], grant: Grant) -> None:
        try:
            await call(grant)
        except Exception:
            log.exception("revocation listener failed for %s; revocation is unaffected", grant.id)


# -- helpers ------------------------------------------------------------------------------


@cache
def _ended_counter(event: Event) -> Any:
    """The revocations counter's child for ``event`` (looked up once, not per grant)."""
    return metrics.REVOCATIONS.labels(event=event.value)


@cache
def _bulk_capable(provider_type: type) -> bool:
    """Whether providers of this class have ``revoke_many`` (:class:`BulkRevoker`). Asked of
    the class, once: a runtime Protocol check per grant would cost more than the grant."""
    return callable(getattr(provider_type, "revoke_many", None))


def _status(grants: dict[str, Grant], grant_id: str) -> Status | None:
    grant = grants.get(grant_id)
    return None if grant is None else grant.status


def _assumed_state(grant: Grant) -> RetryState:
    """A failing grant without a stored retry state (stored before this code, or lost): its
    window starts at its last change; it ends as expired if past expiry, else as revoked."""
    expired = grant.expires_at is not None and grant.expires_at <= grant.updated_at
    return RetryState(
        first_failed_at=grant.updated_at,
        event=Event.EXPIRE if expired else Event.REVOKE,
        requested_by=REVOKER_ACTOR,
    )


def _retry_details(e: _Ending) -> dict[str, Any] | None:
    if e.retry_state is None:
        return None
    return {
        "after_attempts": e.grant.revoke_attempts,
        "requested_by": e.retry_state.requested_by.id,
    }


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


__all__ = [
    "Handled",
    "ProviderResolver",
    "RetryPolicy",
    "RetryState",
    "RevocationListener",
    "Revoker",
]
