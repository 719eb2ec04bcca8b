"""The revocation scheduler: APScheduler as the clock, one leader, and the reconciler.

Every live grant has one APScheduler job whose id is the grant id, which runs
``bot.scheduler:run_revocation_job(grant_id)`` at ``expires_at`` (or at the next retry time
while its revocation is failing). Jobs live in Redis (:mod:`bot.store.revocation_jobs`),
read by APScheduler through :class:`~bot.scheduling.job_store.RevocationJobStore` in its own
thread (:mod:`bot.scheduling.thread`), so a burst of expiries never stalls the event loop.

Known APScheduler 3 traps, each pinned by a test:

- ``misfire_grace_time`` defaults to 1 s: a job overdue by more (the bot was down) is
  *skipped*. Revocation jobs use ``None``: however late, they run.
- Two running schedulers on one job store run jobs twice and miss others. Only the replica
  holding the Redis lease (:mod:`bot.scheduling.lease`) runs its scheduler; the others keep
  theirs paused, which still lets them add jobs to the shared store.
- A stored job refers to its function by a textual ``module:function`` path, so that path is
  stable API: :data:`~bot.store.revocation_jobs.JOB_FUNC_REF`. Never rename or move
  :func:`bot.scheduler.run_revocation_job`.
- Jobs have explicit ids (the grant id), so scheduling again replaces instead of duplicating.

Jobs only wake things up; the grant records decide. A job that fires for a grant that is not
due (extended meanwhile) re-arms itself at the new expiry; one that fires twice revokes once
(the store's compare-and-set makes the second a no-op). The reconciler sweeps the store's
index of live grants every ``reconcile_interval_s`` and fixes what jobs missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeAlias

from apscheduler.schedulers.background import BackgroundScheduler

from bot import metrics
from bot.aio import cancel_and_wait
from bot.errors import StoreUnavailable
from bot.log_throttle import Outage, Throttle
from bot.scheduling.job_store import (
    DEFAULT_DUE_BATCH_LIMIT,
    TOLD_BY_OUTAGE,
    RevocationJobStore,
)
from bot.scheduling.jobs import EXECUTOR_ALIAS, JOBSTORE_ALIAS, Revocations
from bot.scheduling.lease import (
    DEFAULT_LEASE_TTL_S,
    LEASE_CHECKS_PER_TTL,
    LEASE_SAFETY_MARGIN_FRACTION,
    Lease,
)
from bot.scheduling.reconciler import (
    DEFAULT_OVERDUE_GRACE_S,
    DEFAULT_RECONCILE_INTERVAL_S,
    ProviderInventory,
    Reconciler,
    ReconcileReport,
    describe_error,
)
from bot.scheduling.thread import (
    LoopOutage,
    LoopRunner,
    ThreadRest,
    start_scheduler,
    stop_scheduler,
)
from bot.store.connection import redis_outage, unavailable_cause
from bot.store.grants import GrantStore
from bot.store.job_index import JobIndex
from bot.store.revocation_jobs import JOB_MAX_INSTANCES

log = logging.getLogger(__name__)

#: Builds a further job store on start(): (the event loop, the outage its thread tells).
JobStoreFactory: TypeAlias = Callable[[asyncio.AbstractEventLoop, LoopOutage], Any]

#: How long stop() lets in-flight revocations finish before shutting the scheduler down.
DEFAULT_STOP_GRACE_S: Final = 10.0


def default_replica_id() -> str:
    """host:pid, which names a replica in logs and in the lease."""
    return f"{socket.gethostname()}:{os.getpid()}"


class RevocationScheduler:
    """Runs revocation jobs on exactly one replica at a time, and reconciles.

    ``start()`` starts APScheduler paused and a lease loop. The replica that takes the lease
    resumes its scheduler (jobs run; overdue ones at once), sweeps immediately and then every
    ``reconcile_interval_s``; it renews the lease every ``lease_ttl_s / 5`` and pauses the
    moment it cannot be sure it still holds it. Any replica may ``schedule``/``unschedule``:
    those write to the shared job store. ``redis`` is the URL of the Redis whose job keys
    APScheduler reads (on a blocking client of its own: bot.store.job_index), or such a
    :class:`JobIndex`; the lease and job writes go through ``store``.
    """

    def __init__(
        self,
        store: GrantStore,
        revoker: Revocations,
        *,
        redis: str | JobIndex,
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
        self.lease = Lease(store.scheduler_lease(), replica_id=self.replica_id, ttl_s=lease_ttl_s)
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
        self._index = JobIndex.connect(redis, keys=store.keys) if isinstance(redis, str) else redis
        self._due_batch_limit = due_batch_limit
        self._aps: BackgroundScheduler | None = None
        self._leader = False
        self._lease_task: asyncio.Task[None] | None = None
        self._reconcile_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._stop_grace_s = stop_grace_s
        self.last_report: ReconcileReport | None = None
        self._more_stores: dict[str, JobStoreFactory] = {}
        self._sweeps: list[Callable[[], Awaitable[object]]] = []

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
            self._index,
            runner=LoopRunner(self.revoker, loop),
            due_batch_limit=self._due_batch_limit,
            # The job store runs in APScheduler's thread: it tells the outage on the loop.
            redis_outage=LoopOutage(self._outage, loop),
            # The thread's wakeups hold the GIL the loop needs: they rest while people wait.
            rest=ThreadRest(self.store.pacer.foreground_busy),
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
        for alias, make in self._more_stores.items():
            self._aps.add_jobstore(make(loop, LoopOutage(self._outage, loop)), alias)
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
        """Run one reconciler sweep now (on any replica; fixes are idempotent), then every
        sweep added with :meth:`add_sweep`."""
        report = await self.reconciler.sweep()
        self.last_report = report
        for sweep in self._sweeps:
            await sweep()
        return report

    def add_jobstore(self, alias: str, make: JobStoreFactory) -> None:
        """Run the jobs of another APScheduler job store too, only while leading, as
        revocations are (the lifecycle jobs: bot.scheduling.lifecycle_store). ``make`` builds
        it on ``start()`` from the event loop and the outage to tell. Call before start()."""
        if self._aps is not None:
            raise RuntimeError("add_jobstore after start()")
        self._more_stores[alias] = make

    def add_sweep(self, sweep: Callable[[], Awaitable[object]]) -> None:
        """Also run ``sweep`` after each reconciler sweep (on the leader; idempotent)."""
        self._sweeps.append(sweep)

    def poke(self) -> None:
        """A job was written: a leading scheduler looks at its job stores again."""
        self._poke()

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
                    "lease", "scheduler lease check failed: %s", describe_error(e), exc_info=e
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
                    "reconcile", "reconciler sweep failed: %s", describe_error(e), exc_info=e
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


class _ToldByOutage(logging.Filter):
    """Drops APScheduler's "Error getting due jobs from job store" warning when the error
    is a Redis failure our job store has already told the outage about: one line per outage,
    not one per retry. Any other error in the job store is still logged by APScheduler."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(
            isinstance(a, BaseException) and getattr(a, TOLD_BY_OUTAGE, False) for a in args
        )


_APS_LOGGER.addFilter(_ToldByOutage())
