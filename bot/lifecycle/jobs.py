"""The stable home of the functions stored reminder and start jobs run. Never move or rename
them: every such job in Redis names one by its textual path
(:data:`bot.store.lifecycle_jobs.REMIND_FUNC_REF`, ``START_FUNC_REF``), as revocation jobs
name :func:`bot.scheduler.run_revocation_job`.

A stored job carries only the grant id; :class:`~bot.scheduling.lifecycle_store.LifecycleJobStore`
binds the replica's :class:`LifecycleRunner` when it loads the job, so the same job runs on
whichever replica leads. Jobs only wake things up: the runner re-reads the grant and decides.
"""

from __future__ import annotations

from typing import Protocol


class LifecycleRunner(Protocol):
    """What fired lifecycle jobs call (:class:`bot.lifecycle.runner.Lifecycle`)."""

    async def remind(self, grant_id: str) -> None:
        """Send ``grant_id``'s reminder if it is still due and not yet sent."""
        ...

    async def start(self, grant_id: str) -> None:
        """Start ``grant_id`` if it is SCHEDULED and its start has come."""
        ...


def _unbound(kind: str, grant_id: str) -> LookupError:
    return LookupError(
        f"{kind} job for {grant_id} ran without a runner; lifecycle jobs must be loaded "
        "through bot.scheduling.lifecycle_store.LifecycleJobStore"
    )


async def run_reminder_job(grant_id: str, *, runner: LifecycleRunner | None = None) -> None:
    """What every reminder job runs (stable path ``bot.lifecycle.jobs:run_reminder_job``)."""
    if runner is None:
        raise _unbound("reminder", grant_id)
    await runner.remind(grant_id)


async def run_start_job(grant_id: str, *, runner: LifecycleRunner | None = None) -> None:
    """What every scheduled-start job runs (stable path ``bot.lifecycle.jobs:run_start_job``)."""
    if runner is None:
        raise _unbound("start", grant_id)
    await runner.start(grant_id)
