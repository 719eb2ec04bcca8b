"""The lifecycle's one object in a process: runs fired jobs, sweeps, and sees every
(re)scheduling of a revocation so a grant's reminder follows its end.

Wiring (bot/wiring.py, ``build_core``), in order: the revocation scheduler; the lifecycle
jobs, poking it after each put; the reminders and the :class:`~bot.lifecycle.starts.StartBook`;
the service, given :class:`WithLifecycle` around the scheduler and the book; then the
:class:`Lifecycle`, firing starts through the service's issuing path, which
:meth:`Lifecycle.attach` has the scheduler run (its job store and sweep, registered before
the scheduler starts), so reminders and starts run on the lease holder only, late ones at
once, and lost ones are put back, as revocations are.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from bot.lifecycle.reminders import ReminderNotices, Reminders
from bot.lifecycle.starts import ScheduledStarts, StartNotices
from bot.log_throttle import OutageReport
from bot.ports import Scheduler
from bot.store.keys import Keys
from bot.store.lifecycle_jobs import LifecycleJobs

if TYPE_CHECKING:  # APScheduler only where a scheduler runs (not in the CLI)
    from bot.scheduling.lifecycle_store import LifecycleJobStore
    from bot.scheduling.scheduler import RevocationScheduler

log = logging.getLogger(__name__)


class LifecycleNotices(ReminderNotices, StartNotices, Protocol):
    """Where the lifecycle's messages go (bot.slack.reminders.SlackLifecycleNotices)."""


class Lifecycle:
    """Reminders and scheduled starts of one process (its jobs' ``LifecycleRunner``)."""

    def __init__(
        self, *, reminders: Reminders, starts: ScheduledStarts, jobs: LifecycleJobs
    ) -> None:
        self.reminders = reminders
        self.starts = starts
        self.jobs = jobs

    async def remind(self, grant_id: str) -> None:
        await self.reminders.fire(grant_id)

    async def start(self, grant_id: str) -> None:
        await self.starts.fire(grant_id)

    async def sweep(self) -> int:
        """Put back lost reminder and start jobs (the leader, after each reconciler sweep)."""
        armed = await self.reminders.sweep()
        restored = await self.starts.book.sweep()
        if armed or restored:
            log.info(
                "lifecycle sweep: %d reminder(s) and %d start(s) scheduled again", armed, restored
            )
        return armed + restored

    def attach(self, scheduler: RevocationScheduler, *, redis_url: str, keys: Keys) -> None:
        """Have ``scheduler`` (before its start) run this lifecycle's jobs and sweep."""
        from bot.scheduling.lifecycle_store import LIFECYCLE_JOBSTORE_ALIAS

        scheduler.add_jobstore(LIFECYCLE_JOBSTORE_ALIAS, self.jobstore(redis_url, keys=keys))
        scheduler.add_sweep(self.sweep)

    def jobstore(self, redis_url: str, *, keys: Keys) -> Any:
        """A factory for :meth:`RevocationScheduler.add_jobstore`: the lifecycle job store on
        a blocking client of its own (APScheduler's thread)."""
        from bot.scheduling.lifecycle_store import LifecycleJobStore
        from bot.store.job_index import JobIndex

        def make(loop: asyncio.AbstractEventLoop, outage: OutageReport) -> LifecycleJobStore:
            index = JobIndex.connect(redis_url, keys=keys, job_keys=self.jobs.job_keys)
            return LifecycleJobStore(index, runner=self, redis_outage=outage)

        return make


class WithLifecycle:
    """The service's ``Scheduler``: schedules the revocation, then (re)arms the reminder for
    the same end, so issuing and every extension move it. Unscheduling removes both."""

    def __init__(self, inner: Scheduler, *, reminders: Reminders, jobs: LifecycleJobs) -> None:
        self.inner = inner
        self.reminders = reminders
        self.jobs = jobs

    async def schedule(self, grant_id: str, expires_at: float) -> None:
        await self.inner.schedule(grant_id, expires_at)
        try:
            await self.reminders.arm(grant_id)
        except Exception as e:  # the revocation is what matters; the sweep arms it later
            log.warning("could not schedule the reminder of %s: %s", grant_id, e)

    async def unschedule(self, grant_id: str) -> None:
        await self.inner.unschedule(grant_id)
        await self.jobs.remove("remind", grant_id)
