"""The stable home of the functions stored revocation jobs run. Never move or rename them.

Every revocation job in Redis names its function by a textual ``module:function`` path,
``bot.scheduler:run_revocation_job`` (:data:`bot.store.revocation_jobs.JOB_FUNC_REF`), which
APScheduler imports when it loads the job. Moving or renaming :func:`run_revocation_job`
would orphan every job already stored: the job store keeps such a job and reports it (it
never deletes a revocation), and the reconciler revokes its grant once overdue, but nothing
would run on time. So this module holds only these two functions; the scheduling machinery
is in :mod:`bot.scheduling`.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.scheduling.jobs import JobRunner


async def run_revocation_job(grant_id: str, *, runner: JobRunner | None = None) -> None:
    """The function every revocation job runs (stable path
    :data:`~bot.store.revocation_jobs.JOB_FUNC_REF`).

    The stored job carries only the grant id.
    :class:`~bot.scheduling.job_store.RevocationJobStore` binds ``runner`` (its replica's
    revoker) when it loads the job, so the same stored job runs on whichever replica leads.
    Called unbound, it raises LookupError.
    """
    if runner is None:
        raise LookupError(
            f"revocation job for {grant_id} ran without a runner; revocation jobs must be "
            "loaded through bot.scheduling.job_store.RevocationJobStore"
        )
    await runner.run_job(grant_id)


async def run_revocation_jobs(grant_ids: Sequence[str], *, runner: JobRunner) -> None:
    """What the batch job the job store makes of due revocation jobs runs
    (:data:`~bot.scheduling.jobs.BATCH_FUNC_REF`): the same as :func:`run_revocation_job`
    for each id, in one go. Never stored."""
    await runner.run_jobs(grant_ids)
