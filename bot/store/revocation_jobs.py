"""Revocation jobs in Redis: their record format and the asynchronous reads and writes.

Every live grant has one job whose id is the grant id, kept under two keys: a hash of JSON
job records (:attr:`~bot.store.keys.Keys.revocation_jobs`) and a sorted set of run times
whose members are grant ids (:attr:`~bot.store.keys.Keys.revocation_run_times`), like the
expiries index, so one ``ZDIFF`` finds live grants without a job. APScheduler reads them
through :mod:`bot.scheduling.job_store` on the blocking :class:`~bot.store.job_index.JobIndex`;
anything else (the service, the revoker, the reconciler, the CLI) uses
:class:`RevocationJobs`.

A record names the function it runs by its textual path, :data:`JOB_FUNC_REF`: stable API,
since every job already in Redis names it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

from bot.store.connection import as_awaitable, translate_errors, unavailable_as_store_error
from bot.store.keys import Keys
from bot.store.scripts import register

#: The stable textual reference every stored revocation job names (bot/scheduler.py says why
#: it never moves). Changing it orphans every job already in Redis.
JOB_FUNC_REF: Final = "bot.scheduler:run_revocation_job"
#: The APScheduler executor alias stored in every record.
JOB_EXECUTOR: Final = "revocations"
JOB_RECORD_VERSION: Final = 1
#: Several instances of one job may overlap (a retry scheduled while the failed run finishes).
#: With 1, APScheduler would skip the new run *and delete the job*; the revoker dedupes.
JOB_MAX_INSTANCES: Final = 1000
#: A score argument meaning "unconditional" in the job scripts.
UNCONDITIONAL: Final = ""


def job_record(
    grant_id: str, run_at: float, *, func_ref: str = JOB_FUNC_REF, name: str | None = None
) -> str:
    """The JSON record of a revocation job for ``grant_id`` at ``run_at`` (epoch seconds)."""
    return json.dumps(
        {
            "v": JOB_RECORD_VERSION,
            "func": func_ref,
            "args": [grant_id],
            "kwargs": {},
            "executor": JOB_EXECUTOR,
            "name": name or f"revoke {grant_id}",
            "misfire_grace_time": None,  # never skip a late revocation
            "coalesce": True,
            "max_instances": JOB_MAX_INSTANCES,
            "run_date": run_at,
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True, slots=True)
class IndexGaps:
    """Where the live-grant index and the jobs disagree (grant ids)."""

    without_job: set[str]  # live grants with no job
    overdue: list[str]  # live grants past their expiry by more than the grace given
    stale: list[str]  # jobs whose grant is not live


class RevocationJobs:
    """Asynchronous writes and reads of revocation jobs (the format the job store reads).

    Usable in any process, with or without a running scheduler: the CLI schedules a retry the
    same way the leader does. ``put`` replaces an existing job with the same id.
    """

    def __init__(self, client: aioredis.Redis, *, keys: Keys) -> None:
        self._r = client
        self._keys = keys
        self._put = register(client, "job_put.lua")
        self._remove = register(client, "job_remove.lua")
        self._remove_stale = register(client, "job_remove_stale.lua")
        #: Called after every put; a leading scheduler sets it to look at the store again
        #: (a retry may now be due sooner than its next wakeup).
        self.on_put: Callable[[], None] | None = None

    @property
    def _job_keys(self) -> list[str]:
        return [self._keys.revocation_jobs, self._keys.revocation_run_times]

    @translate_errors
    async def put(self, grant_id: str, run_at: float) -> None:
        """Schedule (or move) ``grant_id``'s job to ``run_at``."""
        await self._put(
            keys=self._job_keys, args=[grant_id, job_record(grant_id, run_at), repr(run_at), "put"]
        )
        if self.on_put is not None:
            self.on_put()

    @translate_errors
    async def put_many(self, items: Iterable[tuple[str, float]], *, chunk: int = 1000) -> int:
        """Schedule many jobs, pipelined in chunks (each chunk one MULTI). Returns the count."""
        count = 0
        batch: list[tuple[str, float]] = []
        for item in items:
            batch.append(item)
            if len(batch) >= chunk:
                count += await self._put_batch(batch)
                batch = []
        if batch:
            count += await self._put_batch(batch)
        if count and self.on_put is not None:
            self.on_put()
        return count

    async def _put_batch(self, batch: list[tuple[str, float]]) -> int:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._keys.revocation_jobs,
                mapping={gid: job_record(gid, at) for gid, at in batch},
            )
            pipe.zadd(self._keys.revocation_run_times, {gid: at for gid, at in batch})
            await pipe.execute()
        return len(batch)

    @translate_errors
    async def remove(self, grant_id: str) -> bool:
        """Remove ``grant_id``'s job; False when there was none."""
        return bool(await self._remove(keys=self._job_keys, args=[grant_id, UNCONDITIONAL]))

    @translate_errors
    async def remove_many(self, grant_ids: Sequence[str]) -> int:
        """Remove the jobs of ``grant_ids`` (one call). Returns how many existed."""
        if not grant_ids:
            return 0
        args: list[str] = []
        for gid in grant_ids:
            args += [gid, UNCONDITIONAL]
        return int(await self._remove(keys=self._job_keys, args=args))

    @translate_errors
    async def run_time(self, grant_id: str) -> float | None:
        """When ``grant_id``'s job runs next (epoch seconds), or None when it has no job."""
        score = await self._r.zscore(self._keys.revocation_run_times, grant_id)
        return None if score is None else float(score)

    @translate_errors
    async def record(self, grant_id: str) -> dict[str, Any] | None:
        """The stored record of ``grant_id``'s job (for inspection), or None."""
        raw = await as_awaitable(self._r.hget(self._keys.revocation_jobs, grant_id))
        if raw is None:
            return None
        parsed: dict[str, Any] = json.loads(raw)
        return parsed

    @translate_errors
    async def count(self) -> int:
        return int(await self._r.zcard(self._keys.revocation_run_times))

    # -- the reconciler's view -------------------------------------------------------------

    async def gaps(self, *, overdue_before: float) -> IndexGaps:
        """Live grants without a job, live grants expired before ``overdue_before``, and jobs
        without a live grant: one round trip."""
        keys = self._keys
        async with (
            unavailable_as_store_error(),
            self._r.pipeline(transaction=False) as pipe,
        ):
            pipe.zdiff([keys.expiries, keys.revocation_run_times])
            pipe.zrangebyscore(keys.expiries, "-inf", overdue_before)
            pipe.zdiff([keys.revocation_run_times, keys.expiries])
            no_job, overdue, stale = await pipe.execute()
        return IndexGaps(without_job=set(no_job), overdue=list(overdue), stale=list(stale))

    @translate_errors
    async def remove_stale(self, grant_ids: Sequence[str]) -> int:
        """Remove the jobs of those of ``grant_ids`` whose grant is (still) not live, checked
        atomically; how many were removed."""
        if not grant_ids:
            return 0
        keys = [self._keys.revocation_jobs, self._keys.revocation_run_times, self._keys.expiries]
        return int(await self._remove_stale(keys=keys, args=list(grant_ids)))
