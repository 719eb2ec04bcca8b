"""Stopping background tasks: a task whose library swallows a cancellation is still stopped."""

from __future__ import annotations

import asyncio

from bot.aio import cancel_and_wait


async def test_a_swallowed_cancellation_is_repeated_until_the_task_ends() -> None:
    """A loop that ignores the first cancellation (as redis-py with hiredis can) is cancelled
    again and ends; the caller is not cancelled."""
    ignored = 0

    async def stubborn() -> None:
        nonlocal ignored
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if ignored:
                    raise
                ignored += 1
                current = asyncio.current_task()
                assert current is not None
                current.uncancel()  # what asyncio.timeout(0) does by mistake

    task = asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)
    await cancel_and_wait(task, retry_s=0.01)
    assert task.cancelled() and ignored == 1


async def test_a_finished_or_failed_task_is_fine() -> None:
    """Nothing to stop, or a task that already failed: cancel_and_wait returns quietly."""

    async def boom() -> None:
        raise RuntimeError("reported elsewhere")

    task = asyncio.get_running_loop().create_task(boom())
    await asyncio.wait({task})
    await cancel_and_wait(task)
    await cancel_and_wait(None)
    assert isinstance(task.exception(), RuntimeError)
