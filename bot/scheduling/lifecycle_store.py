"""APScheduler's job store over the lifecycle jobs (reminders, scheduled starts).

The revocation job store's machinery (:class:`~bot.scheduling.job_store.RevocationJobStore`:
one Lua call per wakeup, deferred conditional removal, unloadable jobs kept) on the lifecycle
jobs' own keys (:class:`~bot.store.lifecycle_jobs.LifecycleJobs`). It is added to the
revocation scheduler's APScheduler (:meth:`RevocationScheduler.add_jobstore`), so its jobs run
only on the lease holder, late ones at once, and survive a restart as revocations do. Each
loaded job is bound to this replica's :class:`~bot.lifecycle.jobs.LifecycleRunner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Final

from apscheduler.job import Job

from bot.lifecycle.jobs import LifecycleRunner, run_reminder_job, run_start_job
from bot.log_throttle import OutageReport
from bot.scheduling.job_store import RevocationJobStore
from bot.store.job_index import JobIndex

LIFECYCLE_JOBSTORE_ALIAS: Final = "lifecycle"
_BOUND: Final = (run_reminder_job, run_start_job)


class _NoRevocations:
    """The revocation runner slot of the base store: no revocation job lives in these keys."""

    async def run_job(self, grant_id: str) -> None:
        raise LookupError(f"a revocation job for {grant_id} in the lifecycle job store")

    async def run_jobs(self, grant_ids: Sequence[str]) -> None:
        raise LookupError("revocation jobs in the lifecycle job store")

    def note_claimed(self, grant_ids: Sequence[str]) -> None:
        return None


class LifecycleJobStore(RevocationJobStore):
    """The revocation job store, on the lifecycle keys, binding ``runner`` to each job."""

    def __init__(
        self, index: JobIndex, *, runner: LifecycleRunner, redis_outage: OutageReport | None
    ) -> None:
        super().__init__(index, runner=_NoRevocations(), redis_outage=redis_outage)
        self._lifecycle = runner

    def _reconstitute(self, job_id: str, data: dict[str, Any], score: float | None) -> Job:
        job = super()._reconstitute(job_id, data, score)
        if job.func in _BOUND:
            job.func = partial(job.func, runner=self._lifecycle)
        return job

    def __repr__(self) -> str:
        return f"<LifecycleJobStore {self._index!r}>"
