"""The revocation scheduler: APScheduler's traps, the job store, the lease, the reconciler.

Each APScheduler 3 trap named in bot/scheduler.py has a test here: misfire_grace_time skipping
late jobs, implicit ids duplicating jobs, a job store deleting jobs it cannot import, and two
schedulers running one store (prevented by the lease; see the lease and shared-store tests).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_sync
import redis.asyncio as aioredis
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from prometheus_client import REGISTRY

from bot import metrics
from bot.devtools.scheduler_worker import RecordingListener, StaticResolver
from bot.domain.model import Actor, Grant, Status
from bot.providers.base import GrantContext
from bot.providers.noop import NoopProvider
from bot.revocation.revoker import Revoker
from bot.scheduler import run_revocation_job
from bot.scheduling.job_store import UNLOADABLE_RETRY_S
from bot.scheduling.jobs import JOBSTORE_ALIAS
from bot.scheduling.reconciler import RECONCILE_EVENT
from bot.scheduling.scheduler import RevocationScheduler
from bot.store.grants import GrantStore
from bot.store.revocation_jobs import JOB_FUNC_REF, job_record
from tests.factories import POLICY_V, make_grant
from tests.integration.support import AheadClock, wait_for

TTL_S = 1.0


class CountingNoop(NoopProvider):
    def __init__(self) -> None:
        super().__init__()
        self.revoked: dict[str, int] = {}

    async def revoke(self, ctx: GrantContext) -> None:
        self.revoked[ctx.grant_id] = self.revoked.get(ctx.grant_id, 0) + 1
        await super().revoke(ctx)


async def grant_in(store: GrantStore, status: Status, *, expires_at: float) -> Grant:
    now = min(time.time(), expires_at) - 60
    grant = make_grant(
        status=status,
        created_at=now,
        updated_at=now,
        activated_at=now,
        expires_at=expires_at,
    )
    return await store.create(grant, actor=Actor.system(), policy_version=POLICY_V)


async def all_status(store: GrantStore, grants: list[Grant], status: Status) -> bool:
    return all(g.status is status for g in await store.get_many(g.id for g in grants))


Factory = Callable[..., Awaitable[RevocationScheduler]]


@pytest.fixture
async def provider() -> CountingNoop:
    return CountingNoop()


@pytest.fixture
async def schedulers(
    store: GrantStore, redis_url: str, provider: CountingNoop
) -> AsyncIterator[Factory]:
    """Builds started schedulers (each with its own revoker, as separate replicas would
    have); stops them all afterwards."""
    started: list[tuple[RevocationScheduler, Revoker]] = []

    async def build(replica_id: str = "r1", **options: object) -> RevocationScheduler:
        revoker = Revoker(
            store,
            resolver=StaticResolver(default=provider),
            listener=RecordingListener(),
            policy_version=lambda: POLICY_V,
        )
        scheduler = RevocationScheduler(
            store,
            revoker,
            redis=redis_url,
            replica_id=replica_id,
            lease_ttl_s=float(options.pop("lease_ttl_s", TTL_S)),  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )
        await scheduler.start()
        started.append((scheduler, revoker))
        return scheduler

    yield build
    for scheduler, revoker in started:
        await scheduler.stop()
        await revoker.aclose()


async def leading(scheduler: RevocationScheduler) -> bool:
    return scheduler.is_leader


# -- misfires -------------------------------------------------------------------------------


async def test_job_overdue_at_start_still_runs(
    store: GrantStore, schedulers: Factory, provider: CountingNoop
) -> None:
    """A revocation job whose time passed an hour ago (the bot was down) runs as soon as
    the scheduler starts: misfire_grace_time is None, so late jobs are never skipped."""
    grant = await grant_in(store, Status.ACTIVE, expires_at=time.time() - 3600)
    await store.revocation_jobs().put(grant.id, grant.expires_at or 0)

    # A huge grace keeps the reconciler out of it: the job itself must do the revoking.
    await schedulers(overdue_grace_s=1e9)

    await wait_for(
        lambda: all_status(store, [grant], Status.EXPIRED), timeout_s=5, what="the late job"
    )
    assert provider.revoked == {grant.id: 1}
    events = [e.data["event"] async for e in store.audit.entries()]
    assert RECONCILE_EVENT not in events


async def test_default_misfire_grace_silently_skips_a_late_job() -> None:
    """The trap: with APScheduler's default misfire_grace_time (1 s) a job overdue by more
    at start is dropped as "missed"; with None the same job runs."""
    ran: list[str] = []
    missed: list[str] = []

    async def job(name: str) -> None:
        ran.append(name)

    def on_missed(event: JobExecutionEvent) -> None:
        missed.append(event.job_id)

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_listener(on_missed, EVENT_JOB_MISSED)
    late = datetime.now(UTC) - timedelta(seconds=5)
    scheduler.add_job(job, "date", run_date=late, args=["default"], id="default")
    scheduler.add_job(job, "date", run_date=late, args=["none"], id="none", misfire_grace_time=None)
    scheduler.start()
    try:
        for _ in range(50):
            await asyncio.sleep(0.02)
            if ran and missed:
                break
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.01)
    assert ran == ["none"]
    assert missed == ["default"]


# -- ids and replace_existing ---------------------------------------------------------------


async def test_scheduling_again_moves_the_one_job(store: GrantStore, schedulers: Factory) -> None:
    """A grant has one job, keyed by its id: scheduling again (an extension) moves it,
    unscheduling (an early revoke) removes it."""
    now = time.time()
    grant = await grant_in(store, Status.ACTIVE, expires_at=now + 100)
    scheduler = await schedulers()
    await scheduler.schedule(grant.id, now + 100)
    await scheduler.schedule(grant.id, now + 200)

    assert await scheduler.jobs.count() == 1
    assert await scheduler.jobs.run_time(grant.id) == now + 200
    record = await scheduler.jobs.record(grant.id)
    assert record is not None and record["args"] == [grant.id]
    assert record["func"] == JOB_FUNC_REF and record["misfire_grace_time"] is None

    await scheduler.unschedule(grant.id)
    await scheduler.unschedule(grant.id)  # idempotent
    assert await scheduler.jobs.count() == 0


async def test_apscheduler_add_job_needs_explicit_ids_and_replace_existing(
    store: GrantStore, schedulers: Factory
) -> None:
    """Through APScheduler's own add_job on our job store: an explicit id with
    replace_existing replaces; the same id without it is refused; no id at all (the trap)
    stores a second, duplicate revocation."""
    grant = await grant_in(store, Status.ACTIVE, expires_at=time.time() + 3600)
    scheduler = await schedulers(reconcile_interval_s=3600)
    await wait_for(lambda: leading(scheduler), timeout_s=5, what="a leader")
    aps = scheduler._aps
    assert aps is not None
    at = datetime.now(UTC) + timedelta(hours=1)

    def add(**kw: object) -> None:
        aps.add_job(run_revocation_job, "date", args=[grant.id], jobstore=JOBSTORE_ALIAS, **kw)

    add(id=grant.id, run_date=at, replace_existing=True)
    add(id=grant.id, run_date=at + timedelta(minutes=5), replace_existing=True)
    assert await scheduler.jobs.count() == 1
    run_time = await scheduler.jobs.run_time(grant.id)
    assert run_time == (at + timedelta(minutes=5)).timestamp()
    with pytest.raises(ConflictingIdError):
        add(id=grant.id, run_date=at)
    add(run_date=at)
    add(run_date=at)
    assert await scheduler.jobs.count() == 3


# -- the job's target: a stable importable path ---------------------------------------------


async def test_stored_job_survives_a_restart(
    store: GrantStore, schedulers: Factory, provider: CountingNoop
) -> None:
    """A job scheduled by one scheduler that stops before it is due is run by a brand-new
    scheduler: the store holds only the grant id and the stable path."""
    grant = await grant_in(store, Status.ACTIVE, expires_at=time.time() + 1.5)
    first = await schedulers("before-restart")
    await wait_for(lambda: leading(first), timeout_s=5, what="a leader")
    await first.schedule(grant.id, grant.expires_at or 0)
    await first.stop()
    assert (await first.jobs.record(grant.id) or {})["func"] == "bot.scheduler:run_revocation_job"

    await schedulers("after-restart")

    await wait_for(lambda: all_status(store, [grant], Status.EXPIRED), timeout_s=10, what="the job")
    assert provider.revoked == {grant.id: 1}


async def test_unimportable_job_is_kept_and_reported_not_deleted(
    store: GrantStore,
    redis_client: aioredis.Redis,
    schedulers: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stored job whose function cannot be imported (code moved) is kept and logged as an
    error, never silently deleted; once its grant is overdue past the grace the reconciler
    revokes the grant anyway (and then drops the dead job)."""
    grant = await grant_in(store, Status.ACTIVE, expires_at=time.time() - 0.5)
    await redis_client.hset(
        store.keys.revocation_jobs,
        grant.id,
        job_record(grant.id, grant.expires_at or 0, func_ref="bot.moved_away:revoke"),
    )
    await redis_client.zadd(store.keys.revocation_run_times, {grant.id: grant.expires_at or 0})

    clock = AheadClock()
    with caplog.at_level(logging.ERROR, logger="bot.scheduling.job_store"):
        scheduler = await schedulers(overdue_grace_s=2.0, reconcile_interval_s=3600, clock=clock)

        async def reported() -> bool:
            return any(grant.id in r.getMessage() for r in caplog.records)

        await wait_for(reported, timeout_s=5, what="the load error")

    assert "kept" in caplog.records[-1].getMessage()
    pushed_back = await scheduler.jobs.run_time(grant.id)
    assert pushed_back is not None and pushed_back > time.time() + UNLOADABLE_RETRY_S / 2
    # The sweep made on taking the lease has run (and found it within the grace).
    await wait_for(lambda: scheduler.last_report is not None, timeout_s=5, what="the first sweep")
    assert (await store.get(grant.id)).status is Status.ACTIVE

    clock.offset = 2.0  # the grace passes, for the reconciler
    report = await scheduler.reconcile()

    assert report.revoked_overdue == [grant.id]
    assert (await store.get(grant.id)).status is Status.EXPIRED
    assert await scheduler.jobs.run_time(grant.id) is None


def test_stock_redis_job_store_deletes_a_job_it_cannot_import(redis_url: str) -> None:
    """The trap our store avoids: APScheduler's RedisJobStore deletes, on load, a stored job
    whose function can no longer be imported."""
    module = types.ModuleType("grantbot_vanishing_module")

    async def revoke(grant_id: str) -> None:
        return None

    revoke.__module__ = module.__name__
    module.revoke = revoke  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    client = redis_sync.Redis.from_url(redis_url)
    tag = f"test-trap:{time.time_ns()}"
    store = RedisJobStore(
        jobs_key=f"{tag}:jobs", run_times_key=f"{tag}:runs", connection_pool=client.connection_pool
    )
    scheduler = AsyncIOScheduler(timezone=UTC)
    store.start(scheduler, "default")
    late = datetime.now(UTC) - timedelta(seconds=1)
    try:
        store.add_job(
            Job(
                scheduler,
                id="g-cccccccc",
                func=f"{module.__name__}:revoke",
                trigger=DateTrigger(run_date=late),
                executor="default",
                args=["g-cccccccc"],
                kwargs={},
                name="revoke",
                misfire_grace_time=None,
                coalesce=True,
                max_instances=1,
                next_run_time=late,
            )
        )
        assert client.hexists(store.jobs_key, "g-cccccccc")
        del sys.modules[module.__name__]  # the code moved in a new release

        assert store.get_due_jobs(datetime.now(UTC)) == []

        assert not client.hexists(store.jobs_key, "g-cccccccc")  # the revocation is gone
    finally:
        sys.modules.pop(module.__name__, None)
        client.delete(store.jobs_key, store.run_times_key)
        client.close()


# -- the lease ------------------------------------------------------------------------------


async def test_only_one_scheduler_leads_and_another_takes_over(
    store: GrantStore, schedulers: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two schedulers on one Redis: exactly one leads (and the lease names it). When the
    leader stops renewing it stops running jobs before its lease can lapse, and the other
    takes over within the lease TTL plus a check interval; never are both leading."""
    a = await schedulers("replica-a")
    b = await schedulers("replica-b")
    await wait_for(lambda: a.is_leader or b.is_leader, timeout_s=5, what="a leader")
    leader, follower = (a, b) if a.is_leader else (b, a)
    refused = refusals(follower, monkeypatch)
    await wait_for(lambda: len(refused) >= 3, timeout_s=5, what="three refused lease requests")
    assert a.is_leader != b.is_leader
    holder = await leader.lease.holder()
    assert holder is not None and holder.startswith(leader.replica_id + ":")
    assert lease_gauge(leader.replica_id) == 1 and lease_gauge(follower.replica_id) == 0

    # The leader's renewals stop (as if its event loop hung); nothing is released.
    assert leader._lease_task is not None
    leader._lease_task.cancel()
    stopped_renewing = time.monotonic()
    both = False
    while not follower.is_leader and time.monotonic() - stopped_renewing < 5:
        both = both or (leader.is_leader and follower.is_leader)
        await asyncio.sleep(0.005)

    took_over_s = time.monotonic() - stopped_renewing
    assert follower.is_leader and not leader.is_leader and not both
    assert took_over_s <= TTL_S + 2 * follower.tick_s + 0.5
    holder = await follower.lease.holder()
    assert holder is not None and holder.startswith(follower.replica_id + ":")
    assert lease_gauge(leader.replica_id) == 0 and lease_gauge(follower.replica_id) == 1


def refusals(scheduler: RevocationScheduler, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """From now on, one entry per time ``scheduler`` asks for the lease and is refused."""
    refused: list[bool] = []
    acquire = scheduler.lease.acquire

    async def counted() -> bool:
        won = await acquire()
        if not won:
            refused.append(True)
        return won

    monkeypatch.setattr(scheduler.lease, "acquire", counted)
    return refused


def lease_gauge(replica: str) -> float | None:
    return REGISTRY.get_sample_value("grantbot_scheduler_lease_holder", {"replica": replica})


async def test_graceful_stop_hands_over_at_once(store: GrantStore, schedulers: Factory) -> None:
    """A leader that stops releases the lease: the other replica leads within one check."""
    a = await schedulers("replica-a")
    await wait_for(lambda: leading(a), timeout_s=5, what="a to lead")
    b = await schedulers("replica-b")
    await a.stop()
    took_s = await wait_for(lambda: leading(b), timeout_s=5, what="b to lead")
    assert took_s <= 2 * b.tick_s + 0.5


async def test_schedulers_sharing_a_store_run_each_job_once(
    store: GrantStore, schedulers: Factory, provider: CountingNoop
) -> None:
    """Four schedulers share one job store, 20 jobs come due: each grant is revoked once and
    expired once (the duplicate runs two running schedulers would cause cannot happen)."""
    replicas = [await schedulers(f"replica-{i}") for i in range(4)]
    grants = [
        await grant_in(store, Status.ACTIVE, expires_at=time.time() + 1 + i * 0.05)
        for i in range(20)
    ]
    await store.revocation_jobs().put_many((g.id, g.expires_at or 0) for g in grants)

    await wait_for(
        lambda: all_status(store, grants, Status.EXPIRED), timeout_s=10, what="20 expiries"
    )
    for replica in replicas:  # nothing runs after this: in-flight revocations have finished
        await replica.stop()
    assert await replicas[0].jobs.count() == 0  # and no job is left to run later
    assert provider.revoked == {g.id: 1 for g in grants}
    expires = [
        e.data["grant_id"] async for e in store.audit.entries() if e.data["event"] == "EXPIRE"
    ]
    assert sorted(expires) == sorted(g.id for g in grants)


# -- restart recovery -----------------------------------------------------------------------


async def test_grants_that_expired_while_down_are_revoked_at_start(
    store: GrantStore, schedulers: Factory
) -> None:
    """500 grants whose expiry passed while no scheduler ran are all revoked within seconds
    of a start, and not one before its expiry."""
    now = time.time()
    grants = [
        await grant_in(store, Status.ACTIVE, expires_at=now - 30 + i * 0.01) for i in range(500)
    ]
    later = await grant_in(store, Status.ACTIVE, expires_at=now + 3600)
    await store.revocation_jobs().put_many((g.id, g.expires_at or 0) for g in [*grants, later])

    await schedulers()

    await wait_for(lambda: all_status(store, grants, Status.EXPIRED), timeout_s=10, what="recovery")
    stored = await store.get_many(g.id for g in grants)
    assert all((g.ended_at or 0) >= (g.expires_at or 0) for g in stored)
    assert (await store.get(later.id)).status is Status.ACTIVE
    await store.audit.verify()


# -- the reconciler -------------------------------------------------------------------------


async def test_reconciler_fixes_what_jobs_missed_and_reports_it(
    store: GrantStore, schedulers: Factory, provider: CountingNoop
) -> None:
    """One sweep: revokes a due grant that has no job, restores the job of a future grant
    and the retry of a failing one, drops a job whose grant has ended, revokes access live at
    a target that no live grant accounts for; and reports it (audit entry, counter, log)."""
    now = time.time()
    due_no_job = await grant_in(store, Status.ACTIVE, expires_at=now - 1)
    future_no_job = await grant_in(store, Status.ACTIVE, expires_at=now + 3600)
    failing_no_job = await grant_in(store, Status.REVOKE_FAILED, expires_at=now - 100)
    ended = await grant_in(store, Status.EXPIRED, expires_at=now - 100)
    jobs = store.revocation_jobs()
    await jobs.put(ended.id, now + 3600)  # a stale job (its grant has ended)
    # Access at the target for an ended grant and for a grant the store never heard of.
    inventory = CountingNoop()
    resolver = StaticResolver({"orders-db": inventory})
    for gid in (ended.id, "g-unknown22"):
        ctx = GrantContext(
            grant_id=gid, user="U", resource="orders-db", role="r", expires_at=now + 60
        )
        await inventory.issue(ctx, now=now)
    before = metrics.RECONCILER_FIXES.labels(kind="orphan_revoked")._value.get()

    # Taking the lease sweeps at once; a second sweep then finds nothing left to fix.
    scheduler = await schedulers(providers=resolver.inventory, reconcile_interval_s=3600)
    await wait_for(lambda: scheduler.last_report is not None, timeout_s=5, what="a sweep")
    first = scheduler.last_report
    assert first is not None and first.revoked_without_job == [due_no_job.id]
    assert (await scheduler.reconcile()).fixed == 0

    assert (await store.get(due_no_job.id)).status is Status.EXPIRED
    assert await jobs.run_time(future_no_job.id) == future_no_job.expires_at
    # The failing grant's retry was restored (due now) and, the target being back, it ran. It
    # failed before its expiry, so it was an early revoke and ends REVOKED.
    assert first.retries_restored == [failing_no_job.id]
    await wait_for(
        lambda: all_status(store, [failing_no_job], Status.REVOKED),
        timeout_s=5,
        what="the restored retry to run",
    )
    assert await jobs.run_time(ended.id) is None
    assert await inventory.live_grant_ids() == set()
    assert metrics.RECONCILER_FIXES.labels(kind="orphan_revoked")._value.get() >= before + 2
    entries = [e.data async for e in store.audit.entries() if e.data["event"] == RECONCILE_EVENT]
    details = {k: v for d in entries for k, v in d["details"].items()}
    assert details.get("orphan_revoked") == 2
    assert {"orders-db/g-unknown22", f"orders-db/{ended.id}"} <= set(details["orphans_revoked_ids"])
    assert details.get("job_restored") == 1 and details.get("stale_job_removed") == 1
    assert details.get("retry_restored") == 1


async def test_reconciler_revokes_an_overdue_grant_whose_job_did_not_run(
    store: GrantStore, schedulers: Factory
) -> None:
    """A grant overdue by more than the grace although it has a job (the job never ran) is
    revoked by the sweep, not left to wait."""
    grant = await grant_in(store, Status.ACTIVE, expires_at=time.time() - 120)
    # Its job sits in the future: something went wrong with it. It is there before the
    # scheduler starts, so the sweep made on taking the lease is the one that finds it.
    await store.revocation_jobs().put(grant.id, time.time() + 3600)
    scheduler = await schedulers(reconcile_interval_s=3600)

    await wait_for(
        lambda: scheduler.last_report is not None, timeout_s=5, what="the sweep at taking the lease"
    )

    report = scheduler.last_report
    assert report is not None and report.revoked_overdue == [grant.id]
    assert (await store.get(grant.id)).status is Status.EXPIRED


async def test_a_quiet_sweep_writes_nothing(store: GrantStore, schedulers: Factory) -> None:
    """When there is nothing to fix the sweep leaves no audit entry."""
    scheduler = await schedulers(reconcile_interval_s=3600)
    report = await scheduler.reconcile()
    assert report.fixed == 0
    assert [e async for e in store.audit.entries()] == []
