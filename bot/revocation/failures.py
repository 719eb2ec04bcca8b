"""A revocation that failed at its target: recorded, retried later, or given up loudly.

Each failed attempt is one REVOKE_FAIL transition (so one audit entry) leaving the grant
REVOKE_FAILED, a stored retry state (:class:`bot.store.retry_states.RetryState`) and a retry
job at the time :mod:`bot.revocation.retry` gives; after the whole retry window the revoker
gives up, audits it and logs it, and the grant stays REVOKE_FAILED until an operator
force-closes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bot import metrics
from bot.domain import lifecycle
from bot.domain.model import Actor, Event, Grant
from bot.revocation.batcher import Handled
from bot.revocation.retry import RetryPolicy, plan_retry
from bot.store.bulk import TransitionRequest
from bot.store.grants import GrantStore
from bot.store.retry_states import RetryState
from bot.store.revocation_jobs import RevocationJobs

log = logging.getLogger(__name__)

REVOKER_ACTOR: Final = Actor.system("revoker")
ABANDONED_EVENT: Final = "REVOKE_ABANDONED"


@dataclass(frozen=True, slots=True)
class Ending:
    """One grant to take away now, and how its end is to be recorded."""

    grant: Grant
    event: Event
    actor: Actor
    reason: str | None
    retry_state: RetryState | None  # set when this is a retry of a failing revocation
    #: False when a fired job brought it: APScheduler has already removed that job.
    may_have_job: bool = True


class Failures:
    """Records failed attempts for one revoker."""

    def __init__(
        self,
        store: GrantStore,
        *,
        jobs: RevocationJobs,
        retry: RetryPolicy,
        policy_version: Callable[[], str],
        clock: Callable[[], float],
        rand: Callable[[], float],
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._retry = retry
        self._policy_version = policy_version
        self._clock = clock
        self._rand = rand

    async def record(
        self, failed: list[tuple[Ending, str]], handled: dict[str, str]
    ) -> list[Grant]:
        """REVOKE_FAIL each (audited), store its retry state, schedule its retry or give up."""
        now = self._clock()
        plans = [
            (
                e,
                plan_retry(
                    self._retry,
                    state=e.retry_state,
                    event=e.event,
                    actor=e.actor,
                    reason=e.reason,
                    attempt=e.grant.revoke_attempts + 1,
                    error=error,
                    now=now,
                    rand=self._rand(),
                ),
            )
            for e, error in failed
        ]
        results = await self._store.transition_many(
            [
                TransitionRequest(
                    grant_id=e.grant.id,
                    event=Event.REVOKE_FAIL,
                    actor=REVOKER_ACTOR,
                    error=plan.message,
                    details={
                        "ends_with": plan.state.event.value,
                        "next_attempt_at": plan.next_at,
                        "requested_by": plan.state.requested_by.id,
                    },
                )
                for e, plan in plans
            ],
            now=now,
            policy_version=self._policy_version(),
            current={e.grant.id: e.grant for e, _ in failed},
        )
        stored: list[Grant] = []
        retry_states: dict[str, RetryState] = {}
        retry_jobs: list[tuple[str, float]] = []
        abandoned: list[Grant] = []
        for (e, plan), result in zip(plans, results, strict=True):
            if not isinstance(result, lifecycle.Outcome):
                handled[e.grant.id] = Handled.SKIPPED  # ended meanwhile (e.g. force-closed)
                continue
            handled[e.grant.id] = Handled.FAILED
            stored.append(result.grant)
            retry_states[e.grant.id] = plan.state
            metrics.REVOKE_FAILURES.labels(resource=e.grant.resource).inc()
            if plan.next_at is not None:
                retry_jobs.append((e.grant.id, plan.next_at))
                log.warning(
                    "revoking %s at %s failed (attempt %d): %s; retrying at %.0f",
                    e.grant.id,
                    e.grant.resource,
                    result.grant.revoke_attempts,
                    _first_line(plan.message),
                    plan.next_at,
                )
            else:
                abandoned.append(result.grant)
        await self._store.retry_states.put_many(retry_states)
        if retry_jobs:
            await self._jobs.put_many(retry_jobs)
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
        await self._store.audit.append(
            ABANDONED_EVENT,
            actor=REVOKER_ACTOR.id,
            at=now,
            grant_id=grant.id,
            reason="revocation kept failing for the whole retry window",
            policy_version=self._policy_version(),
            details={
                "attempts": grant.revoke_attempts,
                "window_s": self._retry.window_s,
                "resource": grant.resource,
                "error": grant.last_error,
            },
        )


def assumed_state(grant: Grant) -> RetryState:
    """A failing grant without a stored retry state (stored before this code, or lost): its
    window starts at its last change; it ends as expired if past expiry, else as revoked."""
    expired = grant.expires_at is not None and grant.expires_at <= grant.updated_at
    return RetryState(
        first_failed_at=grant.updated_at,
        event=Event.EXPIRE if expired else Event.REVOKE,
        requested_by=REVOKER_ACTOR,
    )


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text
