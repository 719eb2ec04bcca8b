"""The revocation jobs as APScheduler's job store sees them: blocking calls, one round trip
each, made only from the scheduler's own thread (see :mod:`bot.scheduling.thread`).

APScheduler 3 calls its job store synchronously, so this side of the job keys uses a blocking
client (:func:`bot.store.connection.connect_blocking`: short timeouts). The records and their
format are :mod:`bot.store.revocation_jobs`'. Redis being unreachable is
:class:`~bot.errors.StoreUnavailable` (its cause the redis-py error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import redis as redis_sync

from bot.store.connection import (
    close_blocking,
    connect_blocking,
    unavailable_as_store_error_blocking,
)
from bot.store.keys import Keys
from bot.store.scripts import register_blocking


@dataclass(frozen=True, slots=True)
class DueJob:
    """A job due now: its id, its run time as stored (the exact score text, so removing it
    can be made conditional on it) and its record (None when missing)."""

    id: str
    score: str
    record: str | None


class JobIndex:
    """Blocking reads and writes of the job keys for one key prefix."""

    def __init__(
        self, client: redis_sync.Redis, *, keys: Keys, job_keys: tuple[str, str] | None = None
    ) -> None:
        """``job_keys``: the (records hash, run-times sorted set) to serve; the revocation
        jobs' unless given (the lifecycle jobs use their own pair)."""
        self._r = client
        self._keys = keys
        self._records, self._runs = job_keys or (keys.revocation_jobs, keys.revocation_run_times)
        self._put = register_blocking(client, "job_put.lua")
        self._remove = register_blocking(client, "job_remove.lua")
        self._due = register_blocking(client, "job_due.lua")

    @classmethod
    def connect(cls, url: str, *, keys: Keys, job_keys: tuple[str, str] | None = None) -> JobIndex:
        """On a blocking client of its own to the Redis at ``url``."""
        return cls(connect_blocking(url, slot_key=keys.audit), keys=keys, job_keys=job_keys)

    @property
    def _job_keys(self) -> list[str]:
        return [self._records, self._runs]

    def __repr__(self) -> str:
        return f"<JobIndex {self._runs}>"

    def lookup(self, job_id: str) -> tuple[str | None, float | None]:
        """The record and run time of ``job_id`` (None for what is missing)."""
        with unavailable_as_store_error_blocking(), self._r.pipeline(transaction=False) as pipe:
            pipe.hget(self._records, job_id)
            pipe.zscore(self._runs, job_id)
            record, score = pipe.execute()
        return record, score

    def due(self, *, now: float, limit: int) -> list[DueJob]:
        """Jobs whose run time is at or before ``now``, soonest first, at most ``limit``."""
        with unavailable_as_store_error_blocking():
            rows = self._due(
                keys=[self._runs, self._records],
                args=[repr(now), limit],
            )
        return [DueJob(rows[i], rows[i + 1], rows[i + 2]) for i in range(0, len(rows), 3)]

    def first_run_time(self) -> float | None:
        """The soonest run time of any job, or None when there is none."""
        with unavailable_as_store_error_blocking():
            first = cast(
                list[tuple[str, float]],
                self._r.zrange(self._runs, 0, 0, withscores=True),
            )
        return float(first[0][1]) if first else None

    def all(self) -> tuple[dict[str, str], dict[str, float]]:
        """Every record and every run time, by job id."""
        with unavailable_as_store_error_blocking(), self._r.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._records)
            pipe.zrange(self._runs, 0, -1, withscores=True)
            records, scores = pipe.execute()
        return dict(records), dict(scores)

    def write(self, job_id: str, record: str, *, score: str, mode: str) -> bool:
        """Write a job (``score`` "" for no run time). ``mode`` "add" fails (False) if it
        exists, "update" if it does not, "put" never."""
        with unavailable_as_store_error_blocking():
            return bool(self._put(keys=self._job_keys, args=[job_id, record, score, mode]))

    def remove(self, pairs: Sequence[str]) -> int:
        """Remove jobs given as flat (id, score) pairs; a score of "" removes unconditionally,
        any other only while the job's run time is still that. How many were removed."""
        if not pairs:
            return 0
        with unavailable_as_store_error_blocking():
            return int(self._remove(keys=self._job_keys, args=list(pairs)))

    def push_back(self, run_at: Mapping[str, float]) -> None:
        """Move the run times of existing jobs (never adds one)."""
        with unavailable_as_store_error_blocking():
            self._r.zadd(self._runs, dict(run_at), xx=True)

    def clear(self) -> None:
        """Delete every job."""
        with unavailable_as_store_error_blocking():
            self._r.delete(*self._job_keys)

    def close(self) -> None:
        close_blocking(self._r)
