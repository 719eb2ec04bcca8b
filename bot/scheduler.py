"""Revocation timing: APScheduler as the clock, its jobs in Redis, one leader, a reconciler.

Every live grant has one APScheduler job whose id is the grant id, which runs
``bot.scheduler:run_revocation_job(grant_id)`` at ``expires_at`` (or at the next retry time
while its revocation is failing). Jobs live in Redis, in :class:`RevocationJobStore`, an
APScheduler job store over two keys under the grant store's ``{prefix}`` hash tag: a hash of
JSON job records and a sorted set of run times whose members are grant ids, like the store's
expiries index, so one ``ZDIFF`` finds live grants without a job.

Why our own job store and not APScheduler's ``RedisJobStore`` (measured in bench/):

- ``get_due_jobs`` is one Lua call returning at most ``due_batch_limit`` jobs, and APScheduler's
  per-job ``remove_job`` after a job is submitted is deferred and flushed in one call per
  wakeup. ``RedisJobStore`` makes 2 round trips per job (HEXISTS, then MULTI HDEL ZREM), all
  synchronous: 10,000 jobs due at once take seconds of them.
- A job whose function cannot be imported is kept (and reported), never deleted:
  ``RedisJobStore`` deletes it on load, which for us would silently cancel a revocation.
- Records are JSON (readable with ``HGET``; no unpickling of what Redis hands back).

APScheduler 3 calls its job store synchronously; under ``AsyncIOScheduler`` that happens inside
the event loop, so a burst of expiries would stall every ack and Slack call of the process.
APScheduler runs in its own thread instead (:mod:`bot.scheduler_thread`: ``BackgroundScheduler``
with an executor that runs each fired job's coroutine on the event loop); the job store's
blocking client is only ever used from that thread.

Known APScheduler 3 traps, each pinned by a test:

- ``misfire_grace_time`` defaults to 1 s: a job overdue by more (the bot was down) is
  *skipped*. Revocation jobs use ``None``: however late, they run.
- Two running schedulers on one job store run jobs twice and miss others. Only the replica
  holding the Redis lease (``SET NX PX`` + compare-and-renew) runs its scheduler; the others
  keep theirs paused, which still lets them add jobs to the shared store.
- A stored job refers to its function by a textual ``module:function`` path, so that path is
  stable API: :data:`JOB_FUNC_REF`. Never rename or move :func:`run_revocation_job`.
- Jobs have explicit ids (the grant id), so scheduling again replaces instead of duplicating.

Jobs only wake things up; the grant records decide. A job that fires for a grant that is not
due (extended meanwhile) re-arms itself at the new expiry; one that fires twice revokes once
(the store's compare-and-set makes the second a no-op). The reconciler sweeps the store's
index of live grants every ``reconcile_interval_s`` and fixes what jobs missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

import redis as redis_sync
import redis.asyncio as aioredis
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import ref_to_obj
from redis.commands.core import AsyncScript

from bot import metrics
from bot.aio import cancel_and_wait
from bot.domain.model import LIVE, Status
from bot.errors import GrantbotError, StoreUnavailable
from bot.log_throttle import Outage, OutageReport, Throttle
from bot.providers.base import GrantContext, Provider
from bot.scheduler_thread import LoopOutage, LoopRunner, start_scheduler, stop_scheduler
from bot.store.connection import (
    UNAVAILABLE,
    aw,
    redis_outage,
    translate_errors,
    unavailable_as_store_error,
    unavailable_cause,
)
from bot.store.keys import Keys

if TYPE_CHECKING:
    from bot.revocation import Revoker
    from bot.store.grants import GrantStore

log = logging.getLogger(__name__)

#: The stable textual reference every stored revocation job names. Changing it orphans every
#: job already in Redis (our store keeps them and reports them; the reconciler still revokes).
JOB_FUNC_REF: Final = "bot.scheduler:run_revocation_job"
JOBSTORE_ALIAS: Final = "revocations"
EXECUTOR_ALIAS: Final = "revocations"
JOB_RECORD_VERSION: Final = 1
#: The in-memory batch job (never stored) that runs due revocation jobs together.
BATCH_FUNC_REF: Final = "bot.scheduler:run_revocation_jobs"
BATCH_JOB_PREFIX: Final = "revocation-batch:"
#: Several instances of one job may overlap (a retry scheduled while the failed run finishes).
#: With 1, APScheduler would skip the new run *and delete the job*; the revoker dedupes.
JOB_MAX_INSTANCES: Final = 1000

DEFAULT_LEASE_TTL_S: Final = 5.0
#: Followers try to take the lease, and the leader renews it, this many times per TTL: a dead
#: leader is replaced within lease_ttl_s * (1 + 1/LEASE_CHECKS_PER_TTL).
LEASE_CHECKS_PER_TTL: Final = 5
#: The leader stops running jobs this long before its lease would lapse unrenewed, so that two
#: replicas never run the scheduler at once even when Redis is slow to answer.
LEASE_SAFETY_MARGIN_FRACTION: Final = 0.4
DEFAULT_RECONCILE_INTERVAL_S: Final = 30.0
#: A live grant this far past its expiry is revoked by the reconciler even though it still has
#: a job: the job evidently did not run (function unimportable, scheduler wedged).
DEFAULT_OVERDUE_GRACE_S: Final = 60.0
#: Jobs fetched per APScheduler wakeup: one batch job's worth (the revoker splits it into
#: batches); APScheduler wakes again at once while due jobs remain.
DEFAULT_DUE_BATCH_LIMIT: Final = 1000
#: An unloadable job is pushed back this far, so the scheduler does not spin on it.
UNLOADABLE_RETRY_S: Final = 300.0
#: Timeouts of the synchronous client the job store uses in the scheduler's thread: short, so
#: an unreachable Redis delays a wakeup (and a graceful stop) briefly.
SYNC_SOCKET_TIMEOUT_S: Final = 2.0
SYNC_CONNECT_TIMEOUT_S: Final = 1.0
#: How long stop() lets in-flight revocations finish before shutting the scheduler down.
DEFAULT_STOP_GRACE_S: Final = 10.0
#: Cap on ids listed in one reconciler audit entry (counts are always complete).
MAX_IDS_IN_REPORT: Final = 100
PROVIDER_CALL_TIMEOUT_S: Final = 30.0
_MISSING: Final = ""  # a score argument meaning "unconditional" in the job scripts

# -- the job target -------------------------------------------------------------------------


class JobRunner(Protocol):
    """What fired revocation jobs call: implemented by :class:`bot.revocation.Revoker`."""

    async def run_job(self, grant_id: str) -> None: ...

    async def run_jobs(self, grant_ids: Sequence[str]) -> None: ...

    def note_claimed(self, grant_ids: Sequence[str]) -> None:
        """Called when due jobs are taken from the store to be run, before they run; on the
        event loop (the scheduler's thread goes through ``scheduler_thread.LoopRunner``)."""
        ...


async def run_revocation_job(grant_id: str, *, runner: JobRunner | None = None) -> None:
    """The function every revocation job runs (stable path :data:`JOB_FUNC_REF`).

    The stored job carries only the grant id. :class:`RevocationJobStore` binds ``runner``
    (its replica's revoker) when it loads the job, so the same stored job runs on whichever
    replica leads. Called unbound, it raises LookupError.
    """
    if runner is None:
        raise LookupError(
            f"revocation job for {grant_id} ran without a runner; revocation jobs must be "
            "loaded through bot.scheduler.RevocationJobStore"
        )
    await runner.run_job(grant_id)


async def run_revocation_jobs(grant_ids: Sequence[str], *, runner: JobRunner) -> None:
    """What the batch job :class:`RevocationJobStore` makes of due revocation jobs runs: the
    same as :func:`run_revocation_job` for each id, in one go. Never stored."""
    await runner.run_jobs(grant_ids)


def _plain_revocation(job_id: str, data: Mapping[str, Any]) -> bool:
    """True for a stored job that is exactly "run_revocation_job(<its own id>), never skip"."""
    return (
        data.get("func") == JOB_FUNC_REF
        and data.get("args") == [job_id]
        and not data.get("kwargs")
        and data.get("misfire_grace_time") is None
    )


# -- the job records ------------------------------------------------------------------------


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
            "executor": EXECUTOR_ALIAS,
            "name": name or f"revoke {grant_id}",
            "misfire_grace_time": None,  # never skip a late revocation
            "coalesce": True,
            "max_instances": JOB_MAX_INSTANCES,
            "run_date": run_at,
        },
        separators=(",", ":"),
    )


# KEYS[1] records hash, KEYS[2] run times. ARGV[1] id, ARGV[2] record, ARGV[3] score or "",
# ARGV[4] mode: "add" fails (0) if the id exists, "update" fails if it does not, "put" never.
_PUT_LUA: Final = """
local exists = redis.call("HEXISTS", KEYS[1], ARGV[1]) == 1
if (ARGV[4] == "add" and exists) or (ARGV[4] == "update" and not exists) then return 0 end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == "" then redis.call("ZREM", KEYS[2], ARGV[1])
else redis.call("ZADD", KEYS[2], ARGV[3], ARGV[1]) end
return 1
"""

# KEYS[1] records, KEYS[2] run times. ARGV: pairs (id, score); an empty score removes
# unconditionally, otherwise only while the job's run time is still that score (a job that was
# re-scheduled after we fetched it is left alone). Returns how many records were deleted.
_REMOVE_LUA: Final = """
local n = 0
for i = 1, #ARGV, 2 do
  local id, score = ARGV[i], ARGV[i + 1]
  if score == "" or tonumber(redis.call("ZSCORE", KEYS[2], id)) == tonumber(score) then
    n = n + redis.call("HDEL", KEYS[1], id)
    redis.call("ZREM", KEYS[2], id)
  end
end
return n
"""

# KEYS[1] run times, KEYS[2] records. ARGV[1] now, ARGV[2] limit.
# Returns {id, score, record, ...} for the due jobs, soonest first (record nil if missing).
_DUE_LUA: Final = """
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "WITHSCORES", "LIMIT", 0,
  tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
  out[#out + 1] = redis.call("HGET", KEYS[2], due[i])
end
return out
"""


class RevocationJobs:
    """Asynchronous writes and reads of revocation jobs (the format RevocationJobStore reads).

    Usable in any process, with or without a running scheduler: the CLI schedules a retry the
    same way the leader does. ``put`` replaces an existing job with the same id.
    """

    def __init__(self, client: aioredis.Redis, *, keys: Keys) -> None:
        self._r = client
        self._keys = keys
        self._put = client.register_script(_PUT_LUA)
        self._remove = client.register_script(_REMOVE_LUA)
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
        return bool(await self._remove(keys=self._job_keys, args=[grant_id, _MISSING]))

    @translate_errors
    async def remove_many(self, grant_ids: Sequence[str]) -> int:
        """Remove the jobs of ``grant_ids`` (one call). Returns how many existed."""
        if not grant_ids:
            return 0
        args: list[str] = []
        for gid in grant_ids:
            args += [gid, _MISSING]
        return int(await self._remove(keys=self._job_keys, args=args))

    @translate_errors
    async def run_time(self, grant_id: str) -> float | None:
        """When ``grant_id``'s job runs next (epoch seconds), or None when it has no job."""
        score = await self._r.zscore(self._keys.revocation_run_times, grant_id)
        return None if score is None else float(score)

    @translate_errors
    async def record(self, grant_id: str) -> dict[str, Any] | None:
        """The stored record of ``grant_id``'s job (for inspection), or None."""
        raw = await aw(self._r.hget(self._keys.revocation_jobs, grant_id))
        if raw is None:
            return None
        parsed: dict[str, Any] = json.loads(raw)
        return parsed

    @translate_errors
    async def count(self) -> int:
        return int(await self._r.zcard(self._keys.revocation_run_times))


# -- the APScheduler job store --------------------------------------------------------------


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class RevocationJobStore(BaseJobStore):  # type: ignore[misc]  # apscheduler is untyped
    """An APScheduler 3 job store of one-shot (date) jobs in Redis. See the module docstring.

    Synchronous, as APScheduler 3 requires: it uses its own blocking client with short
    timeouts, and is called from the scheduler's own thread, never from the event loop (see
    :mod:`bot.scheduler_thread`; ``runner`` is then a LoopRunner). Each method is one round
    trip; ``remove_job`` for a job just returned by ``get_due_jobs`` is deferred and flushed
    by the next call (conditionally on the run time, so a job re-scheduled in between
    survives).
    """

    def __init__(
        self,
        client: redis_sync.Redis,
        *,
        keys: Keys,
        runner: JobRunner,
        due_batch_limit: int = DEFAULT_DUE_BATCH_LIMIT,
        unloadable_retry_s: float = UNLOADABLE_RETRY_S,
        redis_outage: OutageReport | None = None,
    ) -> None:
        super().__init__()
        self._r = client
        self._outage = redis_outage or _own_outage()
        self._keys = keys
        self._runner = runner
        self._due_batch_limit = due_batch_limit
        self._unloadable_retry_s = unloadable_retry_s
        self._put = client.register_script(_PUT_LUA)
        self._remove = client.register_script(_REMOVE_LUA)
        self._due = client.register_script(_DUE_LUA)
        # APScheduler job id -> flat (stored id, score) pairs the last get_due_jobs returned.
        self._claimed: dict[str, list[str]] = {}
        self._removals: list[str] = []  # flat (id, score) pairs awaiting deletion
        self._funcs: dict[str, Callable[..., Any]] = {}

    @property
    def _job_keys(self) -> list[str]:
        return [self._keys.revocation_jobs, self._keys.revocation_run_times]

    # APScheduler's interface ---------------------------------------------------------------

    def lookup_job(self, job_id: str) -> Job | None:
        self._flush()
        with self._r.pipeline(transaction=False) as pipe:
            pipe.hget(self._keys.revocation_jobs, job_id)
            pipe.zscore(self._keys.revocation_run_times, job_id)
            record, score = pipe.execute()
        if record is None:
            return None
        return self._reconstitute(job_id, json.loads(record), score)

    def get_due_jobs(self, now: datetime) -> list[Job]:
        """Due jobs, soonest first, at most ``due_batch_limit`` of them. The plain revocation
        jobs among them come back as one batch job (see the class docstring). Redis being
        unreachable is told by the outage and raised (APScheduler retries after
        ``jobstore_retry_interval``)."""
        try:
            self._flush()
            rows = self._due(
                keys=[self._keys.revocation_run_times, self._keys.revocation_jobs],
                args=[repr(now.timestamp()), self._due_batch_limit],
            )
        except UNAVAILABLE as e:
            self._outage.failed(e)
            setattr(e, _TOLD, True)  # APScheduler's own warning about it is dropped
            raise
        self._outage.succeeded()
        self._claimed = {}
        jobs: list[Job] = []
        batch: list[tuple[str, str]] = []
        unloadable: dict[str, float] = {}
        for i in range(0, len(rows), 3):
            job_id, score, record = rows[i], rows[i + 1], rows[i + 2]
            try:
                if record is None:
                    raise LookupError("its record is missing")
                data = json.loads(record)
                if _plain_revocation(job_id, data):
                    self._resolve(JOB_FUNC_REF)  # the same import check a single job gets
                    batch.append((job_id, score))
                    continue
                job = self._reconstitute(job_id, data, float(score))
            except Exception as e:
                # APScheduler's RedisJobStore deletes such a job. Deleting a revocation would
                # leave access in place, so keep it, say so loudly, and retry later.
                log.error(
                    "revocation job %s cannot be loaded (%s); kept, retrying in %ss. The "
                    "reconciler revokes its grant once overdue.",
                    job_id,
                    e,
                    self._unloadable_retry_s,
                )
                unloadable[job_id] = now.timestamp() + self._unloadable_retry_s
                continue
            self._claimed[job_id] = [job_id, score]
            jobs.append(job)
        if batch:
            self._runner.note_claimed([gid for gid, _ in batch])
            job = self._batch_job(batch)
            self._claimed[job.id] = [part for pair in batch for part in pair]
            jobs.append(job)
        if unloadable:
            self._r.zadd(self._keys.revocation_run_times, unloadable, xx=True)
        jobs.sort(key=lambda j: j.next_run_time)
        return jobs

    def get_next_run_time(self) -> datetime | None:
        try:
            self._flush()
            first = cast(
                list[tuple[str, float]],
                self._r.zrange(self._keys.revocation_run_times, 0, 0, withscores=True),
            )
        except UNAVAILABLE as e:
            # APScheduler does not guard this call; an exception here would stop its timer.
            self._outage.failed(e)
            return datetime.now(UTC)
        return _utc(float(first[0][1])) if first else None

    def get_all_jobs(self) -> list[Job]:
        self._flush()
        with self._r.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.revocation_jobs)
            pipe.zrange(self._keys.revocation_run_times, 0, -1, withscores=True)
            records, scores = pipe.execute()
        run_at = dict(scores)
        jobs = [self._reconstitute(i, json.loads(rec), run_at.get(i)) for i, rec in records.items()]
        jobs.sort(key=lambda j: j.next_run_time or datetime.max.replace(tzinfo=UTC))
        return jobs

    def add_job(self, job: Job) -> None:
        self._flush()
        if not self._write(job, "add"):
            raise ConflictingIdError(job.id)

    def update_job(self, job: Job) -> None:
        self._flush()
        if not self._write(job, "update"):
            raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        claimed = self._claimed.pop(job_id, None)
        if claimed is not None:
            self._removals += claimed
            return
        self._flush()
        if not self._remove(keys=self._job_keys, args=[job_id, _MISSING]):
            raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        self._removals = []
        self._r.delete(*self._job_keys)

    def shutdown(self) -> None:
        with contextlib.suppress(*UNAVAILABLE):
            self._flush()
        self._r.close()

    # internals ----------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._removals:
            self._remove(keys=self._job_keys, args=self._removals)
            self._removals = []

    def _write(self, job: Job, mode: str) -> bool:
        if not isinstance(job.trigger, DateTrigger):
            raise TypeError(
                f"RevocationJobStore holds one-shot date jobs; {job.id} has {job.trigger}"
            )
        record = json.dumps(
            {
                "v": JOB_RECORD_VERSION,
                "func": job.func_ref,
                "args": list(job.args),
                "kwargs": dict(job.kwargs),
                "executor": job.executor,
                "name": job.name,
                "misfire_grace_time": job.misfire_grace_time,
                "coalesce": job.coalesce,
                "max_instances": job.max_instances,
                "run_date": job.trigger.run_date.timestamp(),
            },
            separators=(",", ":"),
        )
        score = _MISSING if job.next_run_time is None else repr(job.next_run_time.timestamp())
        return bool(self._put(keys=self._job_keys, args=[job.id, record, score, mode]))

    def _resolve(self, func_ref: str) -> Callable[..., Any]:
        func = self._funcs.get(func_ref)
        if func is None:
            func = ref_to_obj(func_ref)  # LookupError when it cannot be imported
            self._funcs[func_ref] = func
        return func

    def _batch_job(self, due: list[tuple[str, str]]) -> Job:
        """One in-memory job that runs the plain revocation jobs ``due`` (id, score) together.

        Its id names the first grant and the count; removing it removes those stored jobs.
        """
        first_id, first_score = due[0]
        run_at = _utc(float(first_score))
        trigger = DateTrigger.__new__(DateTrigger)
        trigger.__setstate__({"version": 1, "run_date": run_at})
        job = Job.__new__(Job)
        job.id = f"{BATCH_JOB_PREFIX}{first_id}+{len(due)}"
        job.func_ref = BATCH_FUNC_REF
        job.func = partial(run_revocation_jobs, tuple(gid for gid, _ in due), runner=self._runner)
        job.trigger = trigger
        job.executor = EXECUTOR_ALIAS
        job.args = ()
        job.kwargs = {}
        job.name = f"revoke {len(due)} grant(s)"
        job.misfire_grace_time = None
        job.coalesce = True
        job.max_instances = JOB_MAX_INSTANCES
        job.next_run_time = run_at
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def _reconstitute(self, job_id: str, data: dict[str, Any], score: float | None) -> Job:
        if data.get("v") != JOB_RECORD_VERSION:
            raise ValueError(f"unknown job record version {data.get('v')!r}")
        func = self._resolve(data["func"])
        if func is run_revocation_job:
            func = partial(run_revocation_job, runner=self._runner)
        trigger = DateTrigger.__new__(DateTrigger)
        trigger.__setstate__({"version": 1, "run_date": _utc(float(data["run_date"]))})
        job = Job.__new__(Job)
        job.id = job_id
        job.func_ref = data["func"]
        job.func = func
        job.trigger = trigger
        job.executor = data.get("executor", EXECUTOR_ALIAS)
        job.args = tuple(data.get("args", ()))
        job.kwargs = dict(data.get("kwargs", {}))
        job.name = data.get("name", job_id)
        job.misfire_grace_time = data.get("misfire_grace_time")
        job.coalesce = data.get("coalesce", True)
        job.max_instances = data.get("max_instances", JOB_MAX_INSTANCES)
        job.next_run_time = None if score is None else _utc(float(score))
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def __repr__(self) -> str:
        return f"<RevocationJobStore {self._keys.revocation_run_times}>"


def sync_client(url: str) -> redis_sync.Redis:
    """The blocking client :class:`RevocationJobStore` uses (short timeouts, str replies)."""
    client: redis_sync.Redis = redis_sync.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=SYNC_SOCKET_TIMEOUT_S,
        socket_connect_timeout=SYNC_CONNECT_TIMEOUT_S,
        health_check_interval=30,
    )
    return client


# -- the lease ------------------------------------------------------------------------------

# KEYS[1] lease; ARGV[1] our token, ARGV[2] ttl ms. Extends the lease only if still ours.
_RENEW_LUA: Final = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
"""
# KEYS[1] lease; ARGV[1] our token. Deletes the lease only if still ours.
_RELEASE_LUA: Final = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
"""


class Lease:
    """A Redis lease: ``SET key token NX PX ttl`` to take it, compare-and-renew to keep it.

    ``token`` starts with the replica id, so ``GET`` on the key shows who leads. Timing is
    judged on this process's monotonic clock from the moment a request was *sent*, so the
    holder always believes its lease ends no later than Redis does.
    """

    def __init__(self, client: aioredis.Redis, *, key: str, replica_id: str, ttl_s: float):
        self._r = client
        self.key = key
        self.token = f"{replica_id}:{secrets.token_hex(8)}"
        self.ttl_s = ttl_s
        self._renew: AsyncScript = client.register_script(_RENEW_LUA)
        self._release: AsyncScript = client.register_script(_RELEASE_LUA)
        self.valid_until: float = 0.0  # monotonic

    @property
    def _ttl_ms(self) -> int:
        return int(self.ttl_s * 1000)

    def held(self, *, now_monotonic: float) -> bool:
        """True while the lease is ours with a safety margin to spare."""
        margin = self.ttl_s * LEASE_SAFETY_MARGIN_FRACTION
        return now_monotonic < self.valid_until - margin

    @translate_errors
    async def acquire(self) -> bool:
        sent = time.monotonic()
        if await self._r.set(self.key, self.token, nx=True, px=self._ttl_ms):
            self.valid_until = sent + self.ttl_s
            return True
        return False

    @translate_errors
    async def renew(self) -> bool:
        sent = time.monotonic()
        if await self._renew(keys=[self.key], args=[self.token, self._ttl_ms]):
            self.valid_until = sent + self.ttl_s
            return True
        self.valid_until = 0.0
        return False

    @translate_errors
    async def release(self) -> None:
        self.valid_until = 0.0
        await self._release(keys=[self.key], args=[self.token])

    @translate_errors
    async def holder(self) -> str | None:
        """The token of whoever holds the lease now, or None."""
        value = await self._r.get(self.key)
        return None if value is None else str(value)


# -- the reconciler -------------------------------------------------------------------------


@dataclass(slots=True)
class ReconcileReport:
    """What one sweep found and fixed. Ids are grant ids."""

    at: float
    revoked_without_job: list[str] = field(default_factory=list)
    revoked_overdue: list[str] = field(default_factory=list)
    jobs_restored: list[str] = field(default_factory=list)
    retries_restored: list[str] = field(default_factory=list)
    stale_jobs_removed: int = 0
    orphans_revoked: list[str] = field(default_factory=list)
    orphan_errors: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)

    @property
    def fixes(self) -> dict[str, int]:
        """Counts by kind (the reconciler-fixes metric's label values)."""
        return {
            "revoked_without_job": len(self.revoked_without_job),
            "revoked_overdue": len(self.revoked_overdue),
            "job_restored": len(self.jobs_restored),
            "retry_restored": len(self.retries_restored),
            "stale_job_removed": self.stale_jobs_removed,
            "orphan_revoked": len(self.orphans_revoked),
        }

    @property
    def fixed(self) -> int:
        return sum(self.fixes.values())

    def details(self) -> dict[str, Any]:
        """The audit entry's details: every count, and up to MAX_IDS_IN_REPORT ids per list."""
        out: dict[str, Any] = {k: v for k, v in self.fixes.items() if v}
        for name in (
            "revoked_without_job",
            "revoked_overdue",
            "jobs_restored",
            "retries_restored",
            "orphans_revoked",
            "orphan_errors",
            "abandoned",
        ):
            ids: list[str] = getattr(self, name)
            if ids:
                out[f"{name}_ids"] = ids[:MAX_IDS_IN_REPORT]
        if self.abandoned:
            out["abandoned"] = len(self.abandoned)
        return out


#: The providers to check for orphans, by resource name (the service's current set).
ProviderInventory = Callable[[], Mapping[str, Provider]]


class Reconciler:
    """One sweep over the store's live-grant index, the job store and the providers.

    Finds and fixes: a due grant with no job (revoked now); a grant overdue by more than
    ``overdue_grace_s`` although it has a job (revoked now); a live grant not yet due with no
    job (job restored); a failing revocation with no retry job (retry restored); a job whose
    grant is no longer live (removed); access live at a target that no live grant accounts for
    (an orphan: revoked at the target). REVOKE_FAILED grants past their retry window are
    reported (log, gauge) on every sweep until an operator force-closes them.
    """

    def __init__(
        self,
        store: GrantStore,
        revoker: Revoker,
        jobs: RevocationJobs,
        *,
        providers: ProviderInventory | None = None,
        clock: Callable[[], float] = time.time,
        overdue_grace_s: float = DEFAULT_OVERDUE_GRACE_S,
        provider_timeout_s: float = PROVIDER_CALL_TIMEOUT_S,
    ) -> None:
        self._store = store
        self._revoker = revoker
        self._jobs = jobs
        self._providers = providers
        self._clock = clock
        self._overdue_grace_s = overdue_grace_s
        self._provider_timeout_s = provider_timeout_s
        self._remove_stale: AsyncScript = store.redis.register_script(_REMOVE_STALE_LUA)

    async def sweep(self) -> ReconcileReport:
        """Run one sweep; log, audit and count what was fixed. Raises StoreUnavailable."""
        now = self._clock()
        report = ReconcileReport(at=now)
        await self._sweep_index(report, now=now)
        await self._sweep_orphans(report)
        await self._report(report)
        return report

    async def _sweep_index(self, report: ReconcileReport, *, now: float) -> None:
        keys = self._store.keys
        async with (
            unavailable_as_store_error(),
            self._store.redis.pipeline(transaction=False) as pipe,
        ):
            pipe.zdiff([keys.expiries, keys.revocation_run_times])
            pipe.zrangebyscore(keys.expiries, "-inf", now - self._overdue_grace_s)
            pipe.zdiff([keys.revocation_run_times, keys.expiries])
            no_job, overdue, stale = await pipe.execute()
        without_job = set(no_job)
        grants = await self._store.read_many([*without_job, *overdue])
        retries = await self._revoker.retry_states(
            [g.id for g in grants.values() if g.status is Status.REVOKE_FAILED]
        )
        revoke_now: list[str] = []
        restore: list[tuple[str, float]] = []
        for gid, grant in grants.items():
            if self._revoker.is_handling(gid):
                continue  # its job was taken and is running in this process right now
            if grant.status is Status.ACTIVE and grant.expires_at is not None:
                if grant.expires_at <= now and gid in without_job:
                    report.revoked_without_job.append(gid)
                    revoke_now.append(gid)
                elif grant.expires_at <= now - self._overdue_grace_s:
                    report.revoked_overdue.append(gid)
                    revoke_now.append(gid)
                elif gid in without_job:
                    report.jobs_restored.append(gid)
                    restore.append((gid, grant.expires_at))
            elif grant.status is Status.REVOKE_FAILED and gid in without_job:
                state = retries.get(gid)
                if state is not None and state.abandoned_at is not None:
                    continue  # reported below, from the retry states
                report.retries_restored.append(gid)
                restore.append((gid, now))
        if restore:
            await self._jobs.put_many(restore)
        if revoke_now:
            await self._revoker.expire_grants(revoke_now)
        if stale:
            async with unavailable_as_store_error():
                report.stale_jobs_removed = int(
                    await self._remove_stale(
                        keys=[keys.revocation_jobs, keys.revocation_run_times, keys.expiries],
                        args=list(stale),
                    )
                )
        report.abandoned = sorted(await self._revoker.abandoned_ids())

    async def _sweep_orphans(self, report: ReconcileReport) -> None:
        if self._providers is None:
            return
        for resource, provider in self._providers().items():
            try:
                async with asyncio.timeout(self._provider_timeout_s):
                    live = await provider.live_grant_ids()
            except Exception as e:
                report.orphan_errors.append(f"{resource}: listing failed: {_describe(e)}")
                continue
            if not live:
                continue
            grants = await self._store.read_many(sorted(live))
            for gid in sorted(live):
                grant = grants.get(gid)
                if grant is not None and grant.status in LIVE:
                    continue
                # No grant, or one that has ended: nothing accounts for this access.
                ctx = GrantContext(
                    grant_id=gid,
                    user=grant.requester if grant else "unknown",
                    resource=resource,
                    role=grant.role if grant else "unknown",
                    expires_at=(grant.expires_at or 0.0) if grant else 0.0,
                )
                try:
                    async with asyncio.timeout(self._provider_timeout_s):
                        await provider.revoke(ctx)
                except Exception as e:
                    report.orphan_errors.append(f"{resource}/{gid}: {_describe(e)}")
                    continue
                report.orphans_revoked.append(f"{resource}/{gid}")

    async def _report(self, report: ReconcileReport) -> None:
        metrics.REVOKE_FAILED_ABANDONED.set(len(report.abandoned))
        for kind, count in report.fixes.items():
            if count:
                metrics.RECONCILER_FIXES.labels(kind=kind).inc(count)
        if report.abandoned:
            log.error(
                "%d grant(s) stay REVOKE_FAILED past the retry window; check the target and "
                "close them with `grantbot grants revoke --force`: %s",
                len(report.abandoned),
                ", ".join(report.abandoned[:MAX_IDS_IN_REPORT]),
            )
        if report.orphan_errors:
            log.warning("reconciler could not check or revoke: %s", "; ".join(report.orphan_errors))
        if report.fixed:
            log.warning("reconciler fixed %s", report.fixes, extra={"details": report.details()})
            await self._store.audit.append(
                RECONCILE_EVENT,
                actor=RECONCILER_ACTOR,
                at=report.at,
                reason="the reconciler found revocation work that jobs had not done",
                details=report.details(),
            )


RECONCILE_EVENT: Final = "RECONCILE"
RECONCILER_ACTOR: Final = "reconciler"

# KEYS[1] records, KEYS[2] run times, KEYS[3] expiries. ARGV: job ids. Removes the jobs whose
# grant is (still) not in the expiries index. Returns how many were removed.
_REMOVE_STALE_LUA: Final = """
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call("ZSCORE", KEYS[3], id) == false then
    n = n + redis.call("ZREM", KEYS[2], id)
    redis.call("HDEL", KEYS[1], id)
  end
end
return n
"""


def _describe(e: BaseException) -> str:
    """A one-line description of an error for logs and audit (provider errors are written
    for humans and never carry secrets; for anything else, only the type is shown)."""
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, GrantbotError):
        return str(e)
    return type(e).__name__


# -- the scheduler --------------------------------------------------------------------------


def default_replica_id() -> str:
    """host:pid, which names a replica in logs and in the lease."""
    return f"{socket.gethostname()}:{os.getpid()}"


class RevocationScheduler:
    """Runs revocation jobs on exactly one replica at a time, and reconciles.

    ``start()`` starts APScheduler paused and a lease loop. The replica that takes the lease
    resumes its scheduler (jobs run; overdue ones at once), sweeps immediately and then every
    ``reconcile_interval_s``; it renews the lease every ``lease_ttl_s / 5`` and pauses the
    moment it cannot be sure it still holds it. Any replica may ``schedule``/``unschedule``:
    those write to the shared job store. ``redis`` is the URL (or a synchronous client) for
    the job store's blocking client; the lease and job writes use ``store.redis``.
    """

    def __init__(
        self,
        store: GrantStore,
        revoker: Revoker,
        *,
        redis: str | redis_sync.Redis,
        replica_id: str | None = None,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        reconcile_interval_s: float = DEFAULT_RECONCILE_INTERVAL_S,
        overdue_grace_s: float = DEFAULT_OVERDUE_GRACE_S,
        providers: ProviderInventory | None = None,
        clock: Callable[[], float] = time.time,
        due_batch_limit: int = DEFAULT_DUE_BATCH_LIMIT,
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
        redis_outage: Outage | None = None,
    ) -> None:
        self.store = store
        self.revoker = revoker
        self.replica_id = replica_id or default_replica_id()
        self._outage = redis_outage or _own_outage()
        self.reconcile_interval_s = reconcile_interval_s
        self.lease = Lease(
            store.redis,
            key=store.keys.scheduler_lease,
            replica_id=self.replica_id,
            ttl_s=lease_ttl_s,
        )
        self.tick_s = lease_ttl_s / LEASE_CHECKS_PER_TTL
        self.jobs = revoker.jobs
        self.jobs.on_put = self._poke
        self.reconciler = Reconciler(
            store,
            revoker,
            self.jobs,
            providers=providers,
            clock=clock,
            overdue_grace_s=overdue_grace_s,
        )
        self._sync = sync_client(redis) if isinstance(redis, str) else redis
        self._due_batch_limit = due_batch_limit
        self._aps: BackgroundScheduler | None = None
        self._leader = False
        self._lease_task: asyncio.Task[None] | None = None
        self._reconcile_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._stop_grace_s = stop_grace_s
        self.last_report: ReconcileReport | None = None

    @property
    def is_leader(self) -> bool:
        """True while this replica holds the lease and runs revocation jobs."""
        return self._leader

    async def start(self) -> None:
        """Start paused and begin contending for the lease. Returns at once."""
        if self._aps is not None:
            raise RuntimeError("RevocationScheduler already started")
        loop = asyncio.get_running_loop()
        jobstore = RevocationJobStore(
            self._sync,
            keys=self.store.keys,
            runner=LoopRunner(self.revoker, loop),
            due_batch_limit=self._due_batch_limit,
            # The job store runs in APScheduler's thread: it tells the outage on the loop.
            redis_outage=LoopOutage(self._outage, loop),
        )
        self._aps = start_scheduler(
            jobstore=jobstore,
            jobstore_alias=JOBSTORE_ALIAS,
            executor_alias=EXECUTOR_ALIAS,
            loop=loop,
            retry_interval_s=self.tick_s,
            job_defaults={
                "misfire_grace_time": None,
                "coalesce": True,
                "max_instances": JOB_MAX_INSTANCES,
            },
            logger=_APS_LOGGER,
        )
        self._set_leader(False)  # every replica shows on the lease-holder gauge from the start
        self._lease_task = asyncio.create_task(self._lease_loop(), name="scheduler-lease")

    async def stop(self) -> None:
        """Stop leading (the lease is released, so another replica takes over at once), let
        in-flight revocations finish (up to ``stop_grace_s``) and shut APScheduler down."""
        await cancel_and_wait(self._lease_task)
        self._lease_task = None
        was_leader = self._leader
        self._stop_leading("stopping", level=logging.INFO)
        aps, self._aps = self._aps, None
        await self.revoker.drain(timeout_s=self._stop_grace_s)
        if was_leader:
            with contextlib.suppress(StoreUnavailable):
                await self.lease.release()
        if aps is not None:
            await stop_scheduler(aps)

    async def schedule(self, grant_id: str, expires_at: float) -> None:
        """Schedule (or move) the revocation of ``grant_id`` to ``expires_at``.

        Call after the grant is stored ACTIVE (or extended). Replaces any job it had.
        """
        await self.jobs.put(grant_id, expires_at)  # pokes the scheduler if it leads

    async def schedule_many(self, items: Iterable[tuple[str, float]]) -> int:
        """:meth:`schedule` for many grants at once (pipelined). Returns the count."""
        return await self.jobs.put_many(items)

    async def unschedule(self, grant_id: str) -> None:
        """Remove ``grant_id``'s job (it ended early). Idempotent."""
        await self.jobs.remove(grant_id)

    async def reconcile(self) -> ReconcileReport:
        """Run one reconciler sweep now (on any replica; fixes are idempotent)."""
        report = await self.reconciler.sweep()
        self.last_report = report
        return report

    # internals ----------------------------------------------------------------------------

    def _poke(self) -> None:
        """Let a leading scheduler recompute its next wakeup (a job may now be sooner)."""
        if self._leader and self._aps is not None and self._aps.running:
            self._aps.wakeup()

    def _set_leader(self, leader: bool) -> None:
        self._leader = leader
        metrics.SCHEDULER_LEADER.set(1 if leader else 0)
        metrics.set_lease_holder(self.replica_id, leader)

    async def _lease_loop(self) -> None:
        while True:
            try:
                await self._lease_tick()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                _LOOP_ERRORS.log(
                    "lease", "scheduler lease check failed: %s", _describe(e), exc_info=e
                )
            await asyncio.sleep(self.tick_s)

    async def _lease_tick(self) -> None:
        leading = self._leader
        try:
            # Bounded, so a hanging Redis cannot hold up the step-down decision.
            async with asyncio.timeout(self.tick_s):
                won = await (self.lease.renew() if leading else self.lease.acquire())
        except (StoreUnavailable, TimeoutError) as e:
            self._outage.failed(
                unavailable_cause(e) if isinstance(e, StoreUnavailable) else "timed out"
            )
            return  # the watchdog stops us leading before the lease can lapse
        self._outage.succeeded()
        if leading and not won:
            self._stop_leading("another replica holds the lease")
        elif leading and not self.lease.held(now_monotonic=time.monotonic()):
            self._stop_leading("the lease renewal came back too late")
        elif leading:
            self._arm_watchdog()
            self._poke()  # sees jobs other replicas added for earlier than our next wakeup
        elif won:
            self._start_leading()

    def _start_leading(self) -> None:
        log.info("replica %s now runs the revocation scheduler", self.replica_id)
        self._set_leader(True)
        self._arm_watchdog()
        if self._aps is not None:
            self._aps.resume()  # overdue jobs run at once: misfire_grace_time is None
        self._reconcile_task = asyncio.create_task(self._reconcile_loop(), name="reconciler")

    def _stop_leading(self, why: str, *, level: int = logging.WARNING) -> None:
        """Stop running jobs and sweeps now (synchronous, so the watchdog can call it).
        Said at ``level``; at INFO while Redis is down, whose outage line says why."""
        if not self._leader:
            return
        if self._outage.down:
            level = min(level, logging.INFO)
        log.log(
            level, "replica %s stops running the revocation scheduler: %s", self.replica_id, why
        )
        self._set_leader(False)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._aps is not None and self._aps.running:
            self._aps.pause()
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
            self._reconcile_task = None

    def _arm_watchdog(self) -> None:
        """Stop leading when the lease stops being certainly ours, unless renewed before."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        margin = self.lease.ttl_s * LEASE_SAFETY_MARGIN_FRACTION
        delay = max(0.0, self.lease.valid_until - margin - time.monotonic())
        self._watchdog = asyncio.get_running_loop().call_later(delay, self._lease_expiring)

    def _lease_expiring(self) -> None:
        self._watchdog = None
        if self._leader and not self.lease.held(now_monotonic=time.monotonic()):
            self._stop_leading("the lease could not be renewed in time")

    async def _reconcile_loop(self) -> None:
        """Sweep at once on taking over, then every interval; after a failure (Redis down)
        retry every tick, so revocations catch up as soon as Redis is back."""
        delay = 0.0
        while True:
            await asyncio.sleep(delay)
            # A cancellation swallowed inside a Redis call (see bot.aio) must not leave a
            # replica that stopped leading sweeping on.
            if not self._leader:
                return
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as e:
                metrics.RECONCILER_SWEEPS.labels(outcome="error").inc()
                self._outage.failed(unavailable_cause(e))
                delay = self.tick_s
                continue
            except Exception as e:
                metrics.RECONCILER_SWEEPS.labels(outcome="error").inc()
                _LOOP_ERRORS.log(
                    "reconcile", "reconciler sweep failed: %s", _describe(e), exc_info=e
                )
                delay = self.reconcile_interval_s
                continue
            self._outage.succeeded()
            metrics.RECONCILER_SWEEPS.labels(outcome="ok").inc()
            delay = self.reconcile_interval_s


def _own_outage() -> Outage:
    """For a scheduler or job store built without the process's shared Redis outage."""
    return redis_outage()


#: One line a minute per loop failing for a reason other than Redis (a bug), traceback
#: included; Redis being down is the outage's to tell.
_LOOP_ERRORS: Final = Throttle(log, level=logging.ERROR)
#: APScheduler's logger for our scheduler.
_APS_LOGGER: Final = logging.getLogger(f"{__name__}.apscheduler")


#: Set on a Redis error the job store has told the outage about.
_TOLD: Final = "_grantbot_told_by_outage"


class _ToldByOutage(logging.Filter):
    """Drops APScheduler's "Error getting due jobs from job store" warning when the error
    is a Redis failure our job store has already told the outage about: one line per outage,
    not one per retry. Any other error in the job store is still logged by APScheduler."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(a, BaseException) and getattr(a, _TOLD, False) for a in args)


_APS_LOGGER.addFilter(_ToldByOutage())


__all__ = [
    "JOB_FUNC_REF",
    "Lease",
    "ReconcileReport",
    "Reconciler",
    "RevocationJobStore",
    "RevocationJobs",
    "RevocationScheduler",
    "run_revocation_job",
]
