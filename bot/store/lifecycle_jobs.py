"""The requester-lifecycle jobs in Redis (issue 13): a grant's reminder before its end and a
scheduled grant's start, written from the event loop.

They have their own pair of keys (:attr:`~bot.store.keys.Keys.lifecycle_jobs`,
:attr:`~bot.store.keys.Keys.lifecycle_run_times`), so the revocation reconciler's ``ZDIFF``
of revocation jobs against live grants never sees them; their records have the revocation
jobs' format (:func:`bot.store.revocation_jobs.job_record`'s fields, never skipped when late)
and APScheduler reads them through :mod:`bot.scheduling.lifecycle_store`, run by the same
leader. A job's id is ``<kind>:<grant id>``, so scheduling again moves it.

The function references are stable API like the revocation jobs' (every stored job names
one): :data:`REMIND_FUNC_REF`, :data:`START_FUNC_REF`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Final, Literal

import redis.asyncio as aioredis

from bot.store.connection import translate_errors
from bot.store.keys import Keys
from bot.store.revocation_jobs import JOB_EXECUTOR, JOB_MAX_INSTANCES, JOB_RECORD_VERSION
from bot.store.scripts import register

JobKind = Literal["remind", "start"]
#: Stable: every stored reminder / start job names its function by these paths.
REMIND_FUNC_REF: Final = "bot.lifecycle.jobs:run_reminder_job"
START_FUNC_REF: Final = "bot.lifecycle.jobs:run_start_job"
FUNC_REFS: Final[dict[str, str]] = {"remind": REMIND_FUNC_REF, "start": START_FUNC_REF}
_UNCONDITIONAL: Final = ""


def job_id(kind: JobKind, grant_id: str) -> str:
    """``remind:g-7k3p9x``: the id of ``grant_id``'s job of ``kind``."""
    return f"{kind}:{grant_id}"


def lifecycle_record(kind: JobKind, grant_id: str, run_at: float) -> str:
    """The JSON record of ``grant_id``'s ``kind`` job at ``run_at`` (epoch seconds)."""
    return json.dumps(
        {
            "v": JOB_RECORD_VERSION,
            "func": FUNC_REFS[kind],
            "args": [grant_id],
            "kwargs": {},
            "executor": JOB_EXECUTOR,
            "name": f"{kind} {grant_id}",
            "misfire_grace_time": None,  # a late reminder or start still runs; it decides
            "coalesce": True,
            "max_instances": JOB_MAX_INSTANCES,
            "run_date": run_at,
        },
        separators=(",", ":"),
    )


class LifecycleJobs:
    """Put, remove and read reminder and start jobs (any process; the leader runs them)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        keys: Keys,
        on_put: Callable[[], None] | None = None,
    ) -> None:
        self._r = client
        self._keys = keys
        self._put = register(client, "job_put.lua")
        self._remove = register(client, "job_remove.lua")
        #: Called after every put: the scheduler that runs these jobs looks at them again.
        self.on_put = on_put

    @property
    def job_keys(self) -> tuple[str, str]:
        """(records hash, run-times sorted set)."""
        return (self._keys.lifecycle_jobs, self._keys.lifecycle_run_times)

    @translate_errors
    async def put(self, kind: JobKind, grant_id: str, run_at: float) -> None:
        """Schedule (or move) ``grant_id``'s ``kind`` job to ``run_at``."""
        record = lifecycle_record(kind, grant_id, run_at)
        await self._put(
            keys=list(self.job_keys), args=[job_id(kind, grant_id), record, repr(run_at), "put"]
        )
        if self.on_put is not None:
            self.on_put()

    @translate_errors
    async def remove(self, kind: JobKind, grant_id: str) -> bool:
        """Remove ``grant_id``'s ``kind`` job; False when there was none."""
        args = [job_id(kind, grant_id), _UNCONDITIONAL]
        return bool(await self._remove(keys=list(self.job_keys), args=args))

    @translate_errors
    async def run_time(self, kind: JobKind, grant_id: str) -> float | None:
        """When ``grant_id``'s ``kind`` job runs (epoch seconds), or None when it has none."""
        score = await self._r.zscore(self._keys.lifecycle_run_times, job_id(kind, grant_id))
        return None if score is None else float(score)

    @translate_errors
    async def without_job(self, kind: JobKind, grant_ids: Sequence[str]) -> list[str]:
        """Those of ``grant_ids`` that have no ``kind`` job (one ZMSCORE)."""
        if not grant_ids:
            return []
        ids = [job_id(kind, g) for g in grant_ids]
        scores = await self._r.zmscore(self._keys.lifecycle_run_times, ids)
        return [g for g, score in zip(grant_ids, scores, strict=True) if score is None]

    @translate_errors
    async def expiring_between(self, start: float, end: float, *, limit: int = 1000) -> list[str]:
        """Ids of live grants ending in ``[start, end]``, soonest first (the reminder sweep's
        read of the expiries index: only those a reminder may still be due for)."""
        return list(
            await self._r.zrangebyscore(self._keys.expiries, start, end, start=0, num=limit)
        )
