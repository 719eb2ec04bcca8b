"""The path from due grants to revoked grants.

Ending a grant is two steps, always in this order: take the access away at its target
(``provider.revoke``, idempotent), then store the end (one compare-and-set transition that
also appends the audit entry). A grant is never stored EXPIRED or REVOKED while its access
may remain; if the second step loses a race, the access is gone anyway and the winner's
transition stands.

Three ways in:

- :meth:`Revoker.run_job`: a revocation job fired (see :mod:`bot.scheduling`). Jobs that fire
  together are gathered into batches: one read of all their grants, revocations at the targets
  with bounded concurrency per target, and one bulk commit per batch
  (:meth:`GrantStore.transition_many`). This is what lets 10,000 expiries in one second finish
  within the second after, where one job at a time cannot.
- :meth:`Revoker.expire_due` / :meth:`Revoker.expire_grants`: the same batches, driven by the
  store's expiries index (restart recovery, the reconciler).
- :meth:`Revoker.revoke` / :meth:`Revoker.force_close`: a person ends one grant now.

A revocation that fails at the target leaves the grant REVOKE_FAILED (one REVOKE_FAIL
transition, so one audit entry, per attempt), tells the listener, counts it, and schedules a
retry with exponential backoff and jitter (:mod:`bot.revocation.retry`). After ``window_s`` of
failures it gives up loudly: the grant stays REVOKE_FAILED until an operator force-closes it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from bot import metrics
from bot.domain import lifecycle
from bot.domain.model import Actor, ActorKind, Event, Grant, Status
from bot.errors import ConcurrencyError, TransitionError
from bot.log_throttle import Outage
from bot.ports import ProviderResolver, RevocationListener
from bot.revocation.batcher import Batcher, Handled, Work
from bot.revocation.failures import REVOKER_ACTOR, Ending, Failures, assumed_state
from bot.revocation.notices import Notices
from bot.revocation.retry import RetryPolicy
from bot.revocation.targets import (
    DEFAULT_MAX_CONCURRENCY_PER_TARGET,
    DEFAULT_REVOKE_TIMEOUT_S,
    Targets,
)
from bot.store.bulk import TransitionRequest
from bot.store.connection import redis_outage as new_redis_outage
from bot.store.grants import GrantStore
from bot.store.retry_states import RetryState
from bot.store.revocation_jobs import RevocationJobs

log = logging.getLogger(__name__)

#: Grants per batch: big enough to amortise the round trips of a burst, small enough that one
#: batch's bulk commit holds Redis for only ~10 ms.
DEFAULT_BATCH_SIZE: Final = 500
#: Batches in flight at once; more overlap a slow target with the next batch's Redis work.
DEFAULT_MAX_BATCHES: Final = 4
#: A job taken by the job store counts as being handled for this long at most (in case its
#: run never starts: the scheduler shut down in between).
CLAIM_TTL_S: Final = 60.0
SCHEDULER_ACTOR: Final = Actor.system("scheduler")


@dataclass(frozen=True, slots=True)
class _Ended:
    handled: dict[str, str]  # grant id -> Handled.*
    grants: dict[str, Grant]  # as stored: EXPIRED/REVOKED, or REVOKE_FAILED


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
        self.policy_version = policy_version
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.jobs = jobs or store.revocation_jobs()
        self._rand = rand
        self._targets = Targets(
            resolver,
            pacer=store.pacer,
            max_concurrency_per_target=max_concurrency_per_target,
            revoke_timeout_s=revoke_timeout_s,
        )
        self._notices = Notices(listener, pacer=store.pacer)
        self._failures = Failures(
            store,
            jobs=self.jobs,
            retry=self.retry,
            policy_version=policy_version,
            clock=clock,
            rand=rand,
        )
        self._batcher = Batcher(
            self._handle,
            batch_size=batch_size,
            max_batches=max_batches,
            redis_outage=redis_outage or new_redis_outage(),
        )
        self._claimed: dict[str, float] = {}  # grant id -> monotonic time its job was taken
        #: Grants revoked at their target whose end could not be stored because the grant
        #: changed meanwhile (an extension): judged again; if live, their access is restored.
        self._revoked_while_changing: set[str] = set()

    # -- entry points ------------------------------------------------------------------

    async def run_job(self, grant_id: str) -> None:
        """What a fired revocation job does: end ``grant_id`` if due, or retry its failing
        revocation. Batched with every other job firing now; returns once handled."""
        await asyncio.shield(self._batcher.submit(Work(grant_id, retry=True)))

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
            self._batcher.submit(Work(gid, retry=retry))
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
        ids = await self.store.due_expiries(now, limit=None)
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
            old = (await self.store.retry_states.get_many([grant_id])).get(
                grant_id
            ) or assumed_state(grant)
            state = RetryState(
                first_failed_at=old.first_failed_at,
                event=event,
                requested_by=actor,
                reason=reason,
            )
        result = await self._end([Ending(grant, event, actor, reason, state)], inline=True)
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
        error = (await self._targets.revoke_all([grant]))[grant.id]
        details: dict[str, Any] = {"final_revoke": "ok" if error is None else error}
        if error is not None:
            details["still_live"] = await self._targets.check_live(grant)
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
        await self._notices.now(self._notices.listener.on_ended, outcome.grant)
        return outcome.grant

    async def drain(self, *, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) for batches in flight and their notifications."""
        await self._batcher.drain(timeout_s=timeout_s)
        await self._notices.wait(timeout_s=timeout_s)

    async def aclose(self, *, timeout_s: float = 10.0) -> None:
        await self.drain(timeout_s=timeout_s)

    # -- the batch path ----------------------------------------------------------------

    async def _handle(self, batch: list[Work]) -> dict[str, str]:
        """Decide what each submitted grant needs, then end the due ones in bulk."""
        now = self.clock()
        grants = await self.store.read_many(w.grant_id for w in batch)
        failing = [w.grant_id for w in batch if _status(grants, w.grant_id) is Status.REVOKE_FAILED]
        states = await self.store.retry_states.get_many(failing)
        endings: list[Ending] = []
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
                    Ending(grant, Event.EXPIRE, SCHEDULER_ACTOR, None, None, not work.retry)
                )
            elif grant.status is Status.REVOKE_FAILED and work.retry:
                state = states.get(grant.id) or assumed_state(grant)
                if state.abandoned_at is not None:
                    continue
                endings.append(
                    Ending(grant, state.event, REVOKER_ACTOR, state.reason, state, False)
                )
        if rearm:
            await self.jobs.put_many(rearm)
        for grant in restore:
            log.warning(
                "%s was extended while being revoked at its target; issuing it again", grant.id
            )
            self._notices.start(
                self._notices.now(self._notices.listener.on_access_removed, grant),
                name="revocation-restore",
            )
        if not endings:
            return {}
        return (await self._end(endings, inline=False)).handled

    async def _end(self, endings: list[Ending], *, inline: bool) -> _Ended:
        """Revoke at the targets, then store the ends and the failures; then tell the
        listener (awaited when ``inline``, else in the background so a slow listener never
        holds up the next batch)."""
        errors = await self._targets.revoke_all([e.grant for e in endings])
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
        failed_grants = await self._failures.record(failed, handled) if failed else []
        if changed:
            self._revoked_while_changing.update(changed)
            self._notices.start(self._judge_again(changed), name="revocation-recheck")
        if not inline:
            log.info(
                "revocation batch: %d ended, %d failed, %d skipped",
                len(ended),
                len(failed_grants),
                len(endings) - len(ended) - len(failed_grants),
            )
        if inline:
            await self._notices.tell(ended, failed_grants)
        else:
            self._notices.later(ended, failed_grants)
        return _Ended(handled=handled, grants={g.id: g for g in (*ended, *failed_grants)})

    async def _forget(self, *, jobs: Sequence[str], retries: Sequence[str]) -> None:
        """Drop what ended grants leave behind: their jobs (unless APScheduler already did)
        and the retry states of those whose revocation had been failing."""
        if jobs:
            await self.jobs.remove_many(jobs)
        await self.store.retry_states.forget(retries)

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


# -- helpers ------------------------------------------------------------------------------


@cache
def _ended_counter(event: Event) -> Any:
    """The revocations counter's child for ``event`` (looked up once, not per grant)."""
    return metrics.REVOCATIONS.labels(event=event.value)


def _status(grants: dict[str, Grant], grant_id: str) -> Status | None:
    grant = grants.get(grant_id)
    return None if grant is None else grant.status


def _retry_details(e: Ending) -> dict[str, Any] | None:
    if e.retry_state is None:
        return None
    return {
        "after_attempts": e.grant.revoke_attempts,
        "requested_by": e.retry_state.requested_by.id,
    }
