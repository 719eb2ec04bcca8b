"""What a fired revocation job calls, and the names APScheduler knows the jobs by.

A stored job names its function by text (:data:`bot.store.revocation_jobs.JOB_FUNC_REF`,
:func:`bot.scheduler.run_revocation_job`) and carries only the grant id; the job store binds
the replica's :class:`JobRunner` (its revoker) when it loads the job, so the same stored job
runs on whichever replica leads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from bot.store.revocation_jobs import JOB_EXECUTOR, JOB_FUNC_REF, RevocationJobs

JOBSTORE_ALIAS: Final = "revocations"
EXECUTOR_ALIAS: Final = JOB_EXECUTOR
#: The in-memory batch job (never stored) that runs due revocation jobs together.
BATCH_FUNC_REF: Final = "bot.scheduler:run_revocation_jobs"
BATCH_JOB_PREFIX: Final = "revocation-batch:"


class JobRunner(Protocol):
    """What fired revocation jobs call: implemented by :class:`bot.revocation.revoker.Revoker`."""

    async def run_job(self, grant_id: str) -> None: ...

    async def run_jobs(self, grant_ids: Sequence[str]) -> None: ...

    def note_claimed(self, grant_ids: Sequence[str]) -> None:
        """Called when due jobs are taken from the store to be run, before they run; on the
        event loop (the scheduler's thread goes through ``thread.LoopRunner``)."""
        ...


class Revocations(JobRunner, Protocol):
    """What the scheduler and the reconciler ask of the revoker beyond running jobs."""

    @property
    def jobs(self) -> RevocationJobs:
        """Where the revoker writes jobs (a leading scheduler hooks ``on_put``)."""
        ...

    def is_handling(self, grant_id: str) -> bool:
        """True while this process is revoking ``grant_id`` (claimed, queued or in flight)."""
        ...

    async def expire_grants(self, grant_ids: Iterable[str]) -> int:
        """End those of ``grant_ids`` that are ACTIVE and past expiry; how many."""
        ...

    async def drain(self, *, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) for revocations in flight."""
        ...


def plain_revocation(job_id: str, data: Mapping[str, Any]) -> bool:
    """True for a stored job that is exactly "run_revocation_job(<its own id>), never skip"."""
    return (
        data.get("func") == JOB_FUNC_REF
        and data.get("args") == [job_id]
        and not data.get("kwargs")
        and data.get("misfire_grace_time") is None
    )
