"""APScheduler's job store over grantbot's revocation job keys (:class:`RevocationJobStore`).

Why our own job store and not APScheduler's ``RedisJobStore`` (measured in bench/):

- ``get_due_jobs`` is one Lua call returning at most ``due_batch_limit`` jobs, and APScheduler's
  per-job ``remove_job`` after a job is submitted is deferred and flushed in one call per
  wakeup. ``RedisJobStore`` makes 2 round trips per job (HEXISTS, then MULTI HDEL ZREM), all
  synchronous: 10,000 jobs due at once take seconds of them.
- A job whose function cannot be imported is kept (and reported), never deleted:
  ``RedisJobStore`` deletes it on load, which for us would silently cancel a revocation.
- Records are JSON (readable with ``HGET``; no unpickling of what Redis hands back).

The plain revocation jobs of one wakeup come back as *one* in-memory batch job
(:func:`bot.scheduler.run_revocation_jobs`), so APScheduler's work per wakeup is constant.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import ref_to_obj

from bot.errors import StoreUnavailable
from bot.log_throttle import OutageReport
from bot.scheduler import run_revocation_job, run_revocation_jobs
from bot.scheduling.jobs import (
    BATCH_FUNC_REF,
    BATCH_JOB_PREFIX,
    EXECUTOR_ALIAS,
    JobRunner,
    plain_revocation,
)
from bot.store.connection import redis_outage, unavailable_cause
from bot.store.job_index import JobIndex
from bot.store.revocation_jobs import (
    JOB_FUNC_REF,
    JOB_MAX_INSTANCES,
    JOB_RECORD_VERSION,
    UNCONDITIONAL,
)

log = logging.getLogger(__name__)

#: Jobs fetched per APScheduler wakeup: one batch job's worth (the revoker splits it into
#: batches); APScheduler wakes again at once while due jobs remain.
DEFAULT_DUE_BATCH_LIMIT: Final = 1000
#: An unloadable job is pushed back this far, so the scheduler does not spin on it.
UNLOADABLE_RETRY_S: Final = 300.0
#: Set on a Redis error the job store has told the outage about (APScheduler's own warning
#: about it is then dropped: see bot.scheduling.scheduler).
TOLD_BY_OUTAGE: Final = "_grantbot_told_by_outage"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class RevocationJobStore(BaseJobStore):  # type: ignore[misc]  # apscheduler is untyped
    """An APScheduler 3 job store of one-shot (date) jobs in Redis. See the module docstring.

    Synchronous, as APScheduler 3 requires: it uses its own blocking :class:`JobIndex`, and is
    called from the scheduler's own thread, never from the event loop (see
    :mod:`bot.scheduling.thread`; ``runner`` is then a LoopRunner). Each method is one round
    trip; ``remove_job`` for a job just returned by ``get_due_jobs`` is deferred and flushed
    by the next call (conditionally on the run time, so a job re-scheduled in between
    survives).
    """

    def __init__(
        self,
        index: JobIndex,
        *,
        runner: JobRunner,
        due_batch_limit: int = DEFAULT_DUE_BATCH_LIMIT,
        unloadable_retry_s: float = UNLOADABLE_RETRY_S,
        redis_outage: OutageReport | None = None,
        rest: Callable[[], None] | None = None,
    ) -> None:
        """``rest``, if given, is called before each wakeup's due jobs are read, in the
        scheduler's thread (bot.scheduling.thread.ThreadRest: it waits while people wait)."""
        super().__init__()
        self._rest = rest
        self._index = index
        self._outage = redis_outage or _own_outage()
        self._runner = runner
        self._due_batch_limit = due_batch_limit
        self._unloadable_retry_s = unloadable_retry_s
        # APScheduler job id -> flat (stored id, score) pairs the last get_due_jobs returned.
        self._claimed: dict[str, list[str]] = {}
        self._removals: list[str] = []  # flat (id, score) pairs awaiting deletion
        self._funcs: dict[str, Callable[..., Any]] = {}
        # Set by shutdown. APScheduler closes job stores before it joins its thread, and the
        # thread's last wakeup may still ask for due jobs: a closed store answers "none"
        # rather than opening a connection on the closed client (a leaked socket).
        self._closed = False

    # APScheduler's interface ---------------------------------------------------------------

    def lookup_job(self, job_id: str) -> Job | None:
        self._flush()
        record, score = self._index.lookup(job_id)
        if record is None:
            return None
        return self._reconstitute(job_id, json.loads(record), score)

    def get_due_jobs(self, now: datetime) -> list[Job]:
        """Due jobs, soonest first, at most ``due_batch_limit`` of them. The plain revocation
        jobs among them come back as one batch job (see the module docstring). Redis being
        unreachable is told by the outage and raised (APScheduler retries after
        ``jobstore_retry_interval``)."""
        if self._closed:
            return []
        if self._rest is not None:
            self._rest()
        try:
            self._flush()
            due = self._index.due(now=now.timestamp(), limit=self._due_batch_limit)
        except StoreUnavailable as e:
            self._outage.failed(unavailable_cause(e))
            setattr(e, TOLD_BY_OUTAGE, True)  # APScheduler's own warning about it is dropped
            raise
        self._outage.succeeded()
        self._claimed = {}
        jobs: list[Job] = []
        batch: list[tuple[str, str]] = []
        unloadable: dict[str, float] = {}
        for row in due:
            try:
                if row.record is None:
                    raise LookupError("its record is missing")
                data = json.loads(row.record)
                if plain_revocation(row.id, data):
                    self._resolve(JOB_FUNC_REF)  # the same import check a single job gets
                    batch.append((row.id, row.score))
                    continue
                job = self._reconstitute(row.id, data, float(row.score))
            except Exception as e:
                # APScheduler's RedisJobStore deletes such a job. Deleting a revocation would
                # leave access in place, so keep it, say so loudly, and retry later.
                log.error(
                    "revocation job %s cannot be loaded (%s); kept, retrying in %ss. The "
                    "reconciler revokes its grant once overdue.",
                    row.id,
                    e,
                    self._unloadable_retry_s,
                )
                unloadable[row.id] = now.timestamp() + self._unloadable_retry_s
                continue
            self._claimed[row.id] = [row.id, row.score]
            jobs.append(job)
        if batch:
            self._runner.note_claimed([gid for gid, _ in batch])
            job = self._batch_job(batch)
            self._claimed[job.id] = [part for pair in batch for part in pair]
            jobs.append(job)
        if unloadable:
            self._index.push_back(unloadable)
        jobs.sort(key=lambda j: j.next_run_time)
        return jobs

    def get_next_run_time(self) -> datetime | None:
        if self._closed:
            return None
        try:
            self._flush()
            first = self._index.first_run_time()
        except StoreUnavailable as e:
            # APScheduler does not guard this call; an exception here would stop its timer.
            self._outage.failed(unavailable_cause(e))
            return datetime.now(UTC)
        return None if first is None else _utc(first)

    def get_all_jobs(self) -> list[Job]:
        self._flush()
        records, run_at = self._index.all()
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
        if not self._index.remove([job_id, UNCONDITIONAL]):
            raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        self._removals = []
        self._index.clear()

    def shutdown(self) -> None:
        self._closed = True
        with contextlib.suppress(StoreUnavailable):
            self._flush()
        self._index.close()

    # internals ----------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._removals:
            self._index.remove(self._removals)
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
        score = UNCONDITIONAL if job.next_run_time is None else repr(job.next_run_time.timestamp())
        return self._index.write(job.id, record, score=score, mode=mode)

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
        job = self._job(
            job_id=f"{BATCH_JOB_PREFIX}{first_id}+{len(due)}",
            func_ref=BATCH_FUNC_REF,
            func=partial(run_revocation_jobs, tuple(gid for gid, _ in due), runner=self._runner),
            run_date=run_at,
        )
        job.name = f"revoke {len(due)} grant(s)"
        job.next_run_time = run_at
        return job

    def _reconstitute(self, job_id: str, data: dict[str, Any], score: float | None) -> Job:
        if data.get("v") != JOB_RECORD_VERSION:
            raise ValueError(f"unknown job record version {data.get('v')!r}")
        func = self._resolve(data["func"])
        if func is run_revocation_job:
            func = partial(run_revocation_job, runner=self._runner)
        job = self._job(
            job_id=job_id,
            func_ref=data["func"],
            func=func,
            run_date=_utc(float(data["run_date"])),
        )
        job.executor = data.get("executor", EXECUTOR_ALIAS)
        job.args = tuple(data.get("args", ()))
        job.kwargs = dict(data.get("kwargs", {}))
        job.name = data.get("name", job_id)
        job.misfire_grace_time = data.get("misfire_grace_time")
        job.coalesce = data.get("coalesce", True)
        job.max_instances = data.get("max_instances", JOB_MAX_INSTANCES)
        job.next_run_time = None if score is None else _utc(float(score))
        return job

    def _job(
        self, *, job_id: str, func_ref: str, func: Callable[..., Any], run_date: datetime
    ) -> Job:
        """A Job of this store with a date trigger at ``run_date``, built without APScheduler's
        validation (what ``RedisJobStore`` does through ``__setstate__``)."""
        trigger = DateTrigger.__new__(DateTrigger)
        trigger.__setstate__({"version": 1, "run_date": run_date})
        job = Job.__new__(Job)
        job.id = job_id
        job.func_ref = func_ref
        job.func = func
        job.trigger = trigger
        job.executor = EXECUTOR_ALIAS
        job.args = ()
        job.kwargs = {}
        job.misfire_grace_time = None
        job.coalesce = True
        job.max_instances = JOB_MAX_INSTANCES
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def __repr__(self) -> str:
        return f"<RevocationJobStore {self._index!r}>"


def _own_outage() -> OutageReport:
    """For a job store built without the process's shared Redis outage."""
    return redis_outage()
