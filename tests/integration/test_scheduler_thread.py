"""APScheduler runs in its own thread: the job store's blocking Redis calls never hold the
event loop, the jobs it fires run on the loop, and a graceful stop joins the thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.devtools.scheduler_worker import RecordingListener, StaticResolver
from bot.domain.model import Actor, Grant, Status
from bot.pacing import Pacer
from bot.providers.noop import NoopProvider
from bot.revocation.revoker import Revoker
from bot.scheduling.job_store import RevocationJobStore
from bot.scheduling.scheduler import RevocationScheduler
from bot.scheduling.thread import ThreadRest
from bot.store.grants import GrantStore
from tests.factories import POLICY_V, make_grant

#: How long a held job store call waits for the test to release it before giving up (a
#: guard, so a regression fails instead of hanging; the test releases it well before).
HOLD_GUARD_S = 10.0


class Spy:
    """Records the threads job store calls and revocations run in, and can hold the next
    get_due_jobs call that finds jobs until the test releases it."""

    def __init__(self) -> None:
        self.store_threads: set[threading.Thread] = set()
        self.claimed_on: list[threading.Thread] = []
        self.hold = False
        self.inside = threading.Event()
        self.release = threading.Event()
        self.left = threading.Event()


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Spy]:
    watcher = Spy()
    original = RevocationJobStore.get_due_jobs

    def get_due_jobs(self: RevocationJobStore, now: datetime) -> list[Any]:
        watcher.store_threads.add(threading.current_thread())
        jobs: list[Any] = original(self, now)
        if jobs and watcher.hold:
            watcher.inside.set()
            watcher.release.wait(HOLD_GUARD_S)
            watcher.left.set()
        return jobs

    monkeypatch.setattr(RevocationJobStore, "get_due_jobs", get_due_jobs)
    yield watcher
    watcher.release.set()


class ClaimSpyRevoker(Revoker):
    def __init__(self, *args: Any, spy: Spy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spy = spy

    def note_claimed(self, grant_ids: Any) -> None:
        self._spy.claimed_on.append(threading.current_thread())
        super().note_claimed(grant_ids)


@pytest.fixture
async def scheduler(
    store: GrantStore, redis_url: str, spy: Spy
) -> AsyncIterator[tuple[RevocationScheduler, RecordingListener]]:
    listener = RecordingListener()
    revoker = ClaimSpyRevoker(
        store,
        resolver=StaticResolver(default=NoopProvider()),
        listener=listener,
        policy_version=lambda: POLICY_V,
        spy=spy,
    )
    running = RevocationScheduler(
        store, revoker, redis=redis_url, replica_id="t1", lease_ttl_s=1.0, reconcile_interval_s=3600
    )
    await running.start()
    yield running, listener
    await running.stop()
    await revoker.aclose()


async def active_grant(store: GrantStore, *, expires_at: float) -> Grant:
    now = time.time() - 60
    grant = make_grant(
        status=Status.ACTIVE,
        created_at=now,
        updated_at=now,
        activated_at=now,
        expires_at=expires_at,
    )
    return await store.create(grant, actor=Actor.system(), policy_version=POLICY_V)


async def until(condition: Any, *, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


async def test_job_store_calls_run_off_the_loop_and_jobs_on_it(
    store: GrantStore, scheduler: tuple[RevocationScheduler, RecordingListener], spy: Spy
) -> None:
    """A due job is fetched by the job store in APScheduler's own thread, and its claim and
    its revocation are handled on the event loop's thread."""
    running, listener = scheduler
    grant = await active_grant(store, expires_at=time.time() + 0.3)
    await until(lambda: running.is_leader)
    await running.schedule(grant.id, grant.expires_at or 0)

    await until(lambda: grant.id in listener.ended)

    loop_thread = threading.current_thread()
    assert spy.store_threads and loop_thread not in spy.store_threads
    assert spy.claimed_on == [loop_thread]
    assert (await store.get(grant.id)).status is Status.EXPIRED


async def test_the_loop_keeps_answering_while_the_job_store_is_busy(
    store: GrantStore,
    redis_client: aioredis.Redis,
    scheduler: tuple[RevocationScheduler, RecordingListener],
    spy: Spy,
) -> None:
    """While a job store call is in progress (held here as a slow Redis would hold it), the
    event loop goes on serving: Redis commands, timers; the revocation follows the release."""
    running, listener = scheduler
    grant = await active_grant(store, expires_at=time.time() + 0.3)
    await until(lambda: running.is_leader)
    spy.hold = True
    await running.schedule(grant.id, grant.expires_at or 0)

    await asyncio.to_thread(spy.inside.wait, HOLD_GUARD_S)
    # The loop is free: it serves a Redis round trip and a timer while the call is held (in
    # the loop, the call would have held everything until its guard ran out: left set).
    assert await redis_client.ping()
    await asyncio.sleep(0.01)
    assert spy.inside.is_set() and not spy.left.is_set()
    spy.release.set()

    await until(lambda: grant.id in listener.ended)
    assert (await store.get(grant.id)).status is Status.EXPIRED


async def test_a_graceful_stop_joins_the_scheduler_thread(
    store: GrantStore, redis_url: str, spy: Spy
) -> None:
    """stop() shuts APScheduler down and joins its thread, so nothing keeps calling Redis
    from it afterwards."""
    revoker = Revoker(
        store,
        resolver=StaticResolver(default=NoopProvider()),
        listener=RecordingListener(),
        policy_version=lambda: POLICY_V,
    )
    running = RevocationScheduler(store, revoker, redis=redis_url, replica_id="t2", lease_ttl_s=1.0)
    grant = await active_grant(store, expires_at=time.time() + 0.2)
    await running.start()
    await until(lambda: running.is_leader)
    await running.schedule(grant.id, grant.expires_at or 0)
    await until(lambda: bool(spy.store_threads))

    await running.stop()
    await revoker.aclose()

    assert all(not t.is_alive() for t in spy.store_threads)


async def test_a_shut_down_job_store_finds_nothing_due_and_opens_no_connection(
    store: GrantStore, redis_url: str
) -> None:
    """APScheduler closes its job stores before it joins its thread, whose last wakeup may
    still ask for due jobs: a shut-down store answers "none" without a new connection on its
    closed client (which would leak a socket)."""
    from bot.store.job_index import JobIndex

    grant = await active_grant(store, expires_at=time.time() - 1)
    await store.revocation_jobs().put(grant.id, grant.expires_at or 0)
    index = JobIndex.connect(redis_url, keys=store.keys)
    jobs = RevocationJobStore(
        index,
        runner=Revoker(
            store,
            resolver=StaticResolver(default=NoopProvider()),
            listener=RecordingListener(),
            policy_version=lambda: POLICY_V,
        ),
    )
    assert jobs.get_next_run_time() is not None  # the due job is seen while open

    jobs.shutdown()
    pool = index._r.connection_pool  # the blocking client's pool
    created = pool._created_connections

    assert jobs.get_due_jobs(datetime.now().astimezone()) == []
    assert jobs.get_next_run_time() is None
    assert pool._created_connections == created


async def test_the_thread_rests_while_people_wait_and_goes_on_when_they_are_served(
    redis_client: aioredis.Redis, store: GrantStore, redis_url: str
) -> None:
    """While the foreground is busy (the store's pacer says people wait on Slack work), the
    scheduler's thread asks whether it still is, from its own thread, before a wakeup's due
    jobs; the job due meanwhile is revoked all the same (a rest is bounded)."""
    asked_from: set[threading.Thread] = set()

    def foreground_busy() -> bool:
        asked_from.add(threading.current_thread())
        return True

    paced = GrantStore(redis_client, keys=store.keys, pacer=Pacer(foreground_busy))
    listener = RecordingListener()
    revoker = Revoker(
        paced,
        resolver=StaticResolver(default=NoopProvider()),
        listener=listener,
        policy_version=lambda: POLICY_V,
    )
    running = RevocationScheduler(
        paced, revoker, redis=redis_url, replica_id="t1", lease_ttl_s=1.0, reconcile_interval_s=3600
    )
    await running.start()
    try:
        grant = await active_grant(paced, expires_at=time.time() + 0.2)
        await until(lambda: running.is_leader)
        await running.schedule(grant.id, grant.expires_at or 0)
        loop_thread = threading.current_thread()
        await until(lambda: any(t is not loop_thread for t in asked_from))
        await until(lambda: grant.id in listener.ended)
    finally:
        await running.stop()
        await revoker.aclose()
    assert (await store.get(grant.id)).status is Status.EXPIRED


def test_thread_rest_returns_as_soon_as_the_foreground_is_calm() -> None:
    """ThreadRest sleeps while the foreground is busy and returns at the first look that
    finds it calm."""
    answers = iter([True, True, True, False])
    looks = 0

    def foreground_busy() -> bool:
        nonlocal looks
        looks += 1
        return next(answers)

    ThreadRest(foreground_busy, max_s=HOLD_GUARD_S, recheck_s=0.001)()
    assert looks == 4


def test_thread_rest_is_bounded_while_the_foreground_stays_busy() -> None:
    """A foreground that stays busy delays the thread by at most ``max_s``: the rest ends
    (revocations are only slowed, never stopped) after looking more than once."""
    looks = 0

    def always_busy() -> bool:
        nonlocal looks
        looks += 1
        return True

    rest = ThreadRest(always_busy, max_s=0.02, recheck_s=0.001)
    done = threading.Thread(target=rest)
    done.start()
    done.join(HOLD_GUARD_S)
    assert not done.is_alive()
    assert looks > 1
