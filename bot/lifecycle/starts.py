"""Scheduled starts (issue 13, item 2): an approved grant waits SCHEDULED until its start.

A request with ``starts_at`` (``at 14:00``, ``in 2h``, ``on 2026-12-01 09:00``: read by
:mod:`bot.domain.start`) is decided before its start; approved, it becomes SCHEDULED (the
pure state machine decides, :mod:`bot.domain.lifecycle`) and a start job is put at
``starts_at`` (:mod:`bot.lifecycle.jobs`, run by the scheduler's leader, late ones at once).
When it fires, the grant as stored decides: still SCHEDULED and its window
``[starts_at, starts_at + duration)`` open, it is STARTed (compare-and-set, so two firings
issue once) and issued through the service's one issuing path, ending when its window closes;
the window closed (the bot was down all of it), it is TIMED_OUT and never issued. A
SCHEDULED grant may be cancelled by its requester or revoked by an approver or operator;
nothing was issued, so nothing is revoked at a target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from bot import metrics
from bot.domain.model import Actor, ActorKind, Event, Grant, Status
from bot.domain.start import window_open
from bot.errors import ConcurrencyError, NotFound, TransitionError
from bot.store.grants import GrantStore
from bot.store.lifecycle_jobs import LifecycleJobs

log = logging.getLogger(__name__)

#: A start job this early still starts (replicas' clocks differ a little).
EARLY_S: Final = 5.0
WINDOW_CLOSED: Final = "its start window closed before it could be issued"


class StartNotices(Protocol):
    """Where a scheduled grant is announced (:class:`bot.slack.reminders.SlackLifecycleNotices`)."""

    async def scheduled(self, grant: Grant) -> None:
        """Tell the requester ``grant`` is approved and when it starts. Never raises."""
        ...


class StartBook:
    """Puts start jobs, ends SCHEDULED grants, times out those whose window closed, sweeps
    lost start jobs: all a SCHEDULED grant needs short of its issuing (the service's
    :class:`~bot.ports.StartBook`, built before the service).

    ``ended`` tells of an end where no audit-stream announcer does (the service's notifier);
    ``policy_version`` names the policy each change is stored under.
    """

    def __init__(
        self,
        *,
        store: GrantStore,
        jobs: LifecycleJobs,
        ended: Callable[[Grant], Awaitable[None]],
        policy_version: Callable[[], str],
        notices: StartNotices | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.ended = ended
        self.policy_version = policy_version
        self.notices = notices
        self.clock = clock

    async def scheduled(self, grant: Grant) -> Grant:
        """``grant`` was just approved into SCHEDULED: put its start job, tell the requester."""
        await self.jobs.put("start", grant.id, grant.starts_at or self.clock())
        if self.notices is not None:
            await self.notices.scheduled(grant)
        return grant

    async def time_out(self, grant: Grant, *, now: float) -> Grant | None:
        """SCHEDULED ``grant``'s window closed before it could start: TIME_OUT, never issued
        (None when it changed meanwhile)."""
        try:
            outcome = await self.store.transition(
                grant.id,
                Event.TIME_OUT,
                actor=Actor.system("scheduler"),
                now=now,
                policy_version=self.policy_version(),
                reason=WINDOW_CLOSED,
                expected_version=grant.version,
            )
        except (TransitionError, ConcurrencyError):
            return None
        metrics.record_request("timed_out")
        log.warning("%s was not issued: %s", grant.id, WINDOW_CLOSED)
        await self.ended(outcome.grant)
        return outcome.grant

    async def end(self, grant: Grant, *, actor: Actor, reason: str | None) -> Grant:
        """End a SCHEDULED grant before its start: CANCEL when its requester asks, REVOKE
        when an approver or operator does. Its start job is removed."""
        event = Event.CANCEL if actor.kind is ActorKind.REQUESTER else Event.REVOKE
        outcome = await self.store.transition(
            grant.id,
            event,
            actor=actor,
            now=self.clock(),
            policy_version=self.policy_version(),
            reason=reason,
        )
        await self.jobs.remove("start", grant.id)
        if event is Event.CANCEL:
            metrics.record_request("cancelled")
        await self.ended(outcome.grant)
        return outcome.grant

    async def sweep(self) -> int:
        """Put back the start job of every SCHEDULED grant that has none (lost, or woken
        early); how many. A start whose window closed meanwhile then times out at once."""
        scheduled = await self.store.in_status(Status.SCHEDULED)
        missing = set(await self.jobs.without_job("start", [g.id for g in scheduled]))
        for grant in scheduled:
            if grant.id in missing:
                await self.jobs.put("start", grant.id, grant.starts_at or self.clock())
        return len(missing)


class ScheduledStarts:
    """Fires start jobs: ``book``'s grants, issued through ``activate``, the service's one
    issuing path (APPROVED -> ACTIVE, revocation scheduled, credential DM). Built after the
    service, whose issuing puts start jobs through ``book``."""

    def __init__(self, book: StartBook, *, activate: Callable[[Grant], Awaitable[object]]) -> None:
        self.book = book
        self.activate = activate

    async def fire(self, grant_id: str) -> Grant | None:
        """The start job of ``grant_id`` fired: issue it if it is still SCHEDULED and its
        window is open, time it out if the window closed. The grant as it ends up (None when
        nothing was done: not SCHEDULED any more, or woken early)."""
        book = self.book
        try:
            grant = await book.store.get(grant_id)
        except NotFound:
            return None
        now = book.clock()
        if grant.status is not Status.SCHEDULED or grant.starts_at is None:
            return None
        if now < grant.starts_at - EARLY_S:
            return None  # woken early: the sweep puts the job back
        if not window_open(starts_at=grant.starts_at, duration_s=grant.duration_s, now=now):
            return await book.time_out(grant, now=now)
        try:
            outcome = await book.store.transition(
                grant_id,
                Event.START,
                actor=Actor.system("scheduler"),
                now=now,
                policy_version=book.policy_version(),
                expected_version=grant.version,
            )
        except (TransitionError, ConcurrencyError):
            return None  # started, cancelled or revoked meanwhile: whoever won decided
        await self.activate(outcome.grant)
        return await book.store.get(grant_id)
