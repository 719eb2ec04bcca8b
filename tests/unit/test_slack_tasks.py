"""BackgroundTasks: post-ack work runs with the concurrency it needs, and acks go first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.slack.tasks import DEFAULT_MAX_RUNNING, BackgroundTasks

#: How long a condition is given to come true (a guard: they come true in milliseconds).
GUARD_S = 10.0


async def until(condition: Callable[[], bool]) -> None:
    """Poll until ``condition`` holds; AssertionError if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD_S
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.001)


async def test_fifty_jobs_run_at_once_by_default() -> None:
    """Fifty post-ack jobs (fifty people asking at once) all run at the same time: each waits
    until all fifty have started, which only happens if none waits for another to finish."""
    assert DEFAULT_MAX_RUNNING >= 50
    tasks = BackgroundTasks()
    started = 0
    all_in = asyncio.Event()

    async def job() -> None:
        nonlocal started
        started += 1
        if started == 50:
            all_in.set()
        await all_in.wait()

    for i in range(50):
        tasks.spawn(job(), name=f"job-{i}")
    await asyncio.wait_for(tasks.idle(), timeout=10)  # a guard against a deadlock, not a timing
    assert started == 50 and tasks.failures == 0
    assert tasks.running == 0 and tasks.waiting == 0


async def test_jobs_beyond_the_cap_wait_for_a_free_slot() -> None:
    """With ``max_running=3``, five jobs: three run, two wait for a slot, and each finished
    job lets one waiting job start."""
    tasks = BackgroundTasks(max_running=3)
    release = asyncio.Semaphore(0)
    started: list[int] = []

    async def job(n: int) -> None:
        started.append(n)
        await release.acquire()

    for n in range(5):
        tasks.spawn(job(n), name=f"job-{n}")
    await until(lambda: tasks.running == 3 and tasks.waiting == 2)
    assert sorted(started) == [0, 1, 2]
    release.release()
    await until(lambda: len(started) == 4)
    assert tasks.running == 3 and tasks.waiting == 1
    for _ in range(4):
        release.release()
    await asyncio.wait_for(tasks.idle(), timeout=10)
    assert sorted(started) == [0, 1, 2, 3, 4]


async def test_jobs_are_held_while_acks_are_answered_and_then_all_run() -> None:
    """Jobs spawned while requests are being answered start only after the last answer, even
    though they were spawned before an urgent job that runs at once; then they all run."""
    tasks = BackgroundTasks(max_defer_s=3600)  # only the acks can release them here
    order: list[str] = []

    async def job(n: int) -> None:
        order.append(f"job-{n}")

    async def urgent() -> None:
        order.append("urgent")

    with tasks.answering():
        for n in range(20):
            tasks.spawn(job(n), name=f"job-{n}")
        # Spawned after the jobs: without the hold they would have stepped first.
        await tasks.spawn(urgent(), name="urgent", urgent=True)
        assert tasks.waiting == 20 and tasks.running == 0
        order.append("acked")
    await asyncio.wait_for(tasks.idle(), timeout=10)
    assert order[:2] == ["urgent", "acked"]
    assert sorted(order[2:]) == sorted(f"job-{n}" for n in range(20))


async def test_a_job_cancelled_while_held_is_closed_and_uncounted() -> None:
    """Shutdown cancelling a job still held back closes its coroutine (nothing is left
    un-awaited) and leaves the counters at zero."""
    tasks = BackgroundTasks(max_defer_s=3600)
    ran = False

    async def job() -> None:
        nonlocal ran
        ran = True

    with tasks.answering():
        tasks.spawn(job(), name="held")
        await until(lambda: tasks.waiting == 1)
        await tasks.drain(timeout_s=0)
    assert not ran and tasks.waiting == 0 and tasks.running == 0 and len(tasks) == 0


async def test_busy_while_answering_holding_or_running_and_idle_after() -> None:
    """busy() (what background loops give way to) holds while a request is answered, while
    a job is held back or running, and is false once all is done."""
    tasks = BackgroundTasks(max_defer_s=3600)
    release = asyncio.Event()
    assert not tasks.busy()

    async def job() -> None:
        await release.wait()

    with tasks.answering():
        assert tasks.busy()
        tasks.spawn(job(), name="job")
        await until(lambda: tasks.waiting == 1)
    await until(lambda: tasks.running == 1)
    assert tasks.busy()
    release.set()
    await asyncio.wait_for(tasks.idle(), timeout=10)
    assert not tasks.busy()


async def test_while_requests_keep_arriving_past_the_deferral_only_a_few_jobs_run() -> None:
    """Requests answered without a pause past max_defer_s (an overload): held jobs start
    only max_running_under_load at a time, so acks keep up; once requests pause, all run."""
    tasks = BackgroundTasks(max_defer_s=0, max_running_under_load=2)
    release = asyncio.Event()
    started: list[int] = []

    async def job(n: int) -> None:
        started.append(n)
        await release.wait()

    with tasks.answering():
        for n in range(6):
            tasks.spawn(job(n), name=f"job-{n}")
        await until(lambda: tasks.running == 2)
        assert tasks.waiting == 4 and len(started) == 2
    await until(lambda: tasks.running == 6)
    release.set()
    await asyncio.wait_for(tasks.idle(), timeout=10)
    assert sorted(started) == list(range(6))


async def test_calm_returns_when_the_foreground_is_done_or_at_the_deadline() -> None:
    """calm() (what background work waits on instead of polling busy()) returns at once when
    nothing is going on, at its deadline while a job runs, and as soon as the job is done."""
    loop = asyncio.get_running_loop()
    tasks = BackgroundTasks(max_defer_s=0)
    await asyncio.wait_for(tasks.calm(until=loop.time() + 3600), timeout=GUARD_S)
    release = asyncio.Event()

    async def job() -> None:
        await release.wait()

    tasks.spawn(job(), name="job")
    await until(lambda: tasks.running == 1)
    started = loop.time()
    await tasks.calm(until=started + 0.02)
    assert tasks.busy() and loop.time() - started >= 0.015  # ended by its deadline
    waiting = asyncio.create_task(tasks.calm(until=loop.time() + 3600))
    await asyncio.sleep(0)
    assert not waiting.done()
    release.set()
    await asyncio.wait_for(waiting, timeout=GUARD_S)  # a guard: it would otherwise wait an hour
    assert not tasks.busy()
