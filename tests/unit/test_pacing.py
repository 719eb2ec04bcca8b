"""paced(): every item in order, with the event loop handed back between slices."""

from __future__ import annotations

import asyncio
import contextlib

from bot.pacing import Pacer, paced


async def test_paced_yields_every_item_in_order_and_lets_others_run_between_slices() -> None:
    """Over 100 items with ``every=10`` another task gets a turn exactly before items 10,
    20, ... 90, and never inside a slice."""
    turns = 0
    stop = asyncio.Event()

    async def other() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other())
    await asyncio.sleep(0)  # the ticker has taken its first turn
    seen: list[tuple[int, int]] = []
    async for item in paced(range(100), every=10):
        seen.append((item, turns))
    stop.set()
    await ticker

    assert [item for item, _ in seen] == list(range(100))
    moved_at = [item for (item, t), (_, before) in zip(seen[1:], seen, strict=False) if t != before]
    assert moved_at == [10, 20, 30, 40, 50, 60, 70, 80, 90]


async def test_paced_over_nothing_yields_nothing() -> None:
    """An empty iterable gives no item and no error."""
    assert [item async for item in paced([])] == []


#: asyncio may wake a timer up to one clock tick early.
TICK_S = 0.005


async def test_while_the_foreground_is_busy_background_loops_rest_as_long_as_they_worked() -> None:
    """With the foreground busy, a pause after 50 ms of work rests 50 ms; two loops pausing
    together rest one after the other (their rest is shared), not side by side."""
    pacer = Pacer(lambda: True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pacer.pause(worked_s=0.05)
    assert loop.time() - started >= 0.05 - TICK_S

    started = loop.time()
    ended: list[float] = []

    async def one() -> None:
        await pacer.pause(worked_s=0.03)
        ended.append(loop.time() - started)

    await asyncio.gather(one(), one())
    assert min(ended) >= 0.03 - TICK_S and max(ended) >= 0.06 - TICK_S


async def test_the_rest_ends_as_soon_as_the_foreground_is_done() -> None:
    """A background loop resting for an hour's worth of work goes on once nobody waits on
    the foreground any more."""
    busy = True
    pacer = Pacer(lambda: busy)
    resting = asyncio.create_task(pacer.pause(worked_s=3600))
    await asyncio.sleep(0)
    assert not resting.done()
    busy = False
    await asyncio.wait_for(resting, timeout=5)  # a guard: it would otherwise rest an hour


async def test_without_a_busy_foreground_a_pause_is_one_loop_turn() -> None:
    """No foreground (or an idle one): a pause, whatever the work before it, is one turn."""
    for pacer in (Pacer(), Pacer(lambda: False)):
        turns = 0

        async def other() -> None:
            nonlocal turns
            turns += 1

        ticker = asyncio.create_task(other())
        await asyncio.wait_for(pacer.pause(worked_s=3600), timeout=5)  # it does not rest
        assert turns == 1 and ticker.done()


async def test_low_priority_work_gives_way_until_the_foreground_is_done() -> None:
    """give_way() returns at once with no busy foreground, waits while it is busy and goes
    on as soon as it is done; its wait is bounded by give_way_max_s."""
    await asyncio.wait_for(Pacer().give_way(), timeout=5)
    busy = True
    order: list[str] = []
    pacer = Pacer(lambda: busy, give_way_max_s=3600)

    async def notice() -> None:
        await pacer.give_way()
        order.append("notice")

    waiting = asyncio.create_task(notice())
    await asyncio.sleep(0)
    order.append("foreground done")
    busy = False
    await asyncio.wait_for(waiting, timeout=5)  # a guard: it would otherwise wait an hour
    assert order == ["foreground done", "notice"]

    busy = True
    await asyncio.wait_for(Pacer(lambda: busy, give_way_max_s=0.01).give_way(), timeout=5)


async def test_with_a_calm_to_wait_on_rests_and_notices_wake_once_the_foreground_is_done() -> None:
    """Given ``calm``, a resting loop and a notice giving way wait on it instead of looking
    every few milliseconds: neither looks at busy() while they wait, and both go on as soon
    as the foreground is done."""
    done = asyncio.Event()
    looks = 0

    def busy() -> bool:
        nonlocal looks
        looks += 1
        return not done.is_set()

    async def calm(*, until: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(until):
                await done.wait()

    pacer = Pacer(busy, calm=calm, give_way_max_s=3600)
    resting = asyncio.create_task(pacer.pause(worked_s=3600))
    notice = asyncio.create_task(pacer.give_way())
    await asyncio.sleep(0.05)
    assert not resting.done() and not notice.done()
    looks_while_waiting = looks
    await asyncio.sleep(0.05)
    assert looks == looks_while_waiting  # no polling meanwhile
    done.set()
    await asyncio.wait_for(asyncio.gather(resting, notice), timeout=5)
