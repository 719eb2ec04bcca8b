"""BackgroundTasks: post-ack work runs with the concurrency it needs, and acks go first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.slack.tasks import DEFAULT_MAX_RUNNING, BackgroundTasks

#: Loop turns a condition is given to come true (each turn lets every ready task step).
TURNS = 1000


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop turn until ``condition`` holds; AssertionError if it never does."""
    for _ in range(TURNS):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


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
