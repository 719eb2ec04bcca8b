"""APScheduler's clock and job store calls in their own thread; the jobs it fires on the loop.

APScheduler 3 calls its job store synchronously. Under ``AsyncIOScheduler`` those calls (for
:class:`bot.scheduling.job_store.RevocationJobStore`: Redis round trips on a blocking
client, the JSON of up to 1,000 due jobs a wakeup, one wakeup per grant scheduled) run inside
the event loop, so while 10,000 grants expire every ack and Slack call of the process waits
behind them.
:func:`start_scheduler` runs APScheduler's ``BackgroundScheduler`` instead: its thread waits
for the next run time, asks the job store for due jobs and hands each fired job to
:class:`LoopExecutor`, which runs its coroutine on the event loop
(``asyncio.run_coroutine_threadsafe``) and reports the outcome back to APScheduler as its own
``AsyncIOExecutor`` does.

The thread contract:

- The scheduler's thread calls the job store and the executor's submit, nothing else. A job
  store that must tell the loop something does it through :class:`LoopRunner`.
- Everything a job does runs on the event loop.
- From the loop, only ``wakeup()``, ``pause()`` and ``resume()`` are called (a
  ``threading.Event`` and a state flag: they never block), and :func:`stop_scheduler`, which
  shuts down and joins the thread in a worker thread.

A wakeup already in progress when ``pause()`` is called still runs the jobs it took (at most
one wakeup's worth); jobs only wake things up and the grant records decide, so a job that
runs once more than intended revokes nothing twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any, Final

from apscheduler.executors.base import BaseExecutor, run_coroutine_job, run_job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.util import iscoroutinefunction_partial

from bot.log_throttle import OutageReport
from bot.scheduling.jobs import JobRunner

#: The longest the scheduler's thread rests before one wakeup while people wait on Slack work.
#: Measured with bench/slack_e2e.py during 10,000 expiries: the thread, waking for the few
#: jobs due since its last wakeup a few hundred times a second, used 15-35 % of a core in the
#: burst's second (Python, holding the GIL the event loop needs), and the acks served then
#: were the slowest. Resting, it wakes at most this often while the foreground is busy and
#: takes what became due meanwhile as one batch: revocations wait at most this much longer.
THREAD_REST_MAX_S: Final = 0.05
#: How often a resting thread looks whether the foreground is done (it goes on at once).
THREAD_RECHECK_S: Final = 0.005


class ThreadRest:
    """Called by the job store in the scheduler's thread before each wakeup's work: while
    ``foreground_busy()`` (read from that thread; it only reads counters), sleep, the GIL
    released, up to ``max_s``. The thread's share of Python time then goes to the loop, as
    the loop's own background work rests (bot.pacing)."""

    def __init__(
        self,
        foreground_busy: Callable[[], bool],
        *,
        max_s: float = THREAD_REST_MAX_S,
        recheck_s: float = THREAD_RECHECK_S,
    ) -> None:
        self._busy = foreground_busy
        self._max_s = max_s
        self._recheck_s = recheck_s
        self.rested_s = 0.0  # in total, for tests and curiosity

    def __call__(self) -> None:
        started = time.monotonic()
        deadline = started + self._max_s
        while self._busy():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, self._recheck_s))
        self.rested_s += time.monotonic() - started


class LoopExecutor(BaseExecutor):  # type: ignore[misc]  # apscheduler is untyped
    """An APScheduler executor, called from the scheduler's thread, that runs coroutine jobs
    on ``loop`` (functions that are not coroutines in the loop's default thread pool).

    ``shutdown`` cancels jobs still running, as ``AsyncIOExecutor`` does (callers let their
    work finish first: see RevocationScheduler.stop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._pending: set[concurrent.futures.Future[Any]] = set()

    def shutdown(self, wait: bool = True) -> None:
        for future in list(self._pending):
            future.cancel()
        self._pending.clear()

    def _do_submit_job(self, job: Any, run_times: Sequence[Any]) -> None:
        alias, logger_name = job._jobstore_alias, self._logger.name
        if iscoroutinefunction_partial(job.func):
            work = run_coroutine_job(job, alias, run_times, logger_name)
        else:
            work = asyncio.to_thread(run_job, job, alias, run_times, logger_name)
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        self._pending.add(future)

        def finished(done: concurrent.futures.Future[Any]) -> None:
            self._pending.discard(done)
            try:
                events = done.result()
            except BaseException:
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)

        future.add_done_callback(finished)


class LoopRunner:
    """A :class:`~bot.scheduling.jobs.JobRunner` that a job store may call from the scheduler's
    thread: ``note_claimed`` is delivered to ``runner`` on ``loop`` (ahead of the jobs just
    claimed, which reach the loop after it); the jobs themselves call ``run_job`` and
    ``run_jobs`` on the loop."""

    def __init__(self, runner: JobRunner, loop: asyncio.AbstractEventLoop) -> None:
        self._runner = runner
        self._loop = loop

    async def run_job(self, grant_id: str) -> None:
        await self._runner.run_job(grant_id)

    async def run_jobs(self, grant_ids: Sequence[str]) -> None:
        await self._runner.run_jobs(grant_ids)

    def note_claimed(self, grant_ids: Sequence[str]) -> None:
        self._loop.call_soon_threadsafe(self._runner.note_claimed, tuple(grant_ids))


class LoopOutage:
    """Reports to ``outage`` (which belongs to the event loop's thread) from APScheduler's
    thread: each report runs on ``loop``, so the outage's state is only touched there."""

    def __init__(self, outage: OutageReport, loop: asyncio.AbstractEventLoop) -> None:
        self._outage = outage
        self._loop = loop

    def failed(self, cause: BaseException | str) -> None:
        self._loop.call_soon_threadsafe(self._outage.failed, cause)

    def succeeded(self) -> None:
        self._loop.call_soon_threadsafe(self._outage.succeeded)


def start_scheduler(
    *,
    jobstore: Any,
    jobstore_alias: str,
    executor_alias: str,
    loop: asyncio.AbstractEventLoop,
    retry_interval_s: float,
    job_defaults: dict[str, Any],
    logger: logging.Logger,
) -> BackgroundScheduler:
    """A started, paused ``BackgroundScheduler`` (daemon thread) over ``jobstore``, its jobs
    run on ``loop``. Per-job INFO lines ("Running job", "executed successfully") are
    silenced: a burst of 10,000 expiries would log 20,000 of them; failures still log."""
    scheduler = BackgroundScheduler(
        timezone=UTC,
        jobstore_retry_interval=retry_interval_s,
        job_defaults=job_defaults,
        logger=logger,
        daemon=True,
    )
    logging.getLogger(f"apscheduler.executors.{executor_alias}").setLevel(logging.WARNING)
    logger.setLevel(logging.WARNING)
    scheduler.add_jobstore(jobstore, jobstore_alias)
    scheduler.add_executor(LoopExecutor(loop), executor_alias)
    scheduler.start(paused=True)
    return scheduler


async def stop_scheduler(scheduler: BackgroundScheduler) -> None:
    """Shut ``scheduler`` down (its job store too) and join its thread, without blocking the
    loop while a wakeup in progress finishes."""
    if scheduler.running:
        await asyncio.to_thread(scheduler.shutdown, wait=False)
