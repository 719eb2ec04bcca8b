"""Long CPU-bound loops that let the event loop serve others between slices, and give way to
work people are waiting on.

The bot runs in one event loop: acks, Slack calls and a burst of 10,000 expiries share it. A
loop over a batch of 500 grants (staging a bulk commit, revoking at a target that answers at
once, submitting fired jobs) is 50-150 ms of CPU with no ``await`` in it, and nothing else in
the process moves meanwhile. :meth:`Pacer.paced` hands the loop back every ``every`` items.

Handing back one loop turn is fair, not kind: the revocation path runs several such loops at
once (batches in flight) against fifty people's requests, and measured, the requests got
well under half of the loop. So while ``foreground_busy()`` says people are waiting (Slack
requests being answered, their post-ack work running), each hand-back rests the background
work: the background loops of the process together rest four times as long as they worked
(about a fifth of the loop goes to them, the rest to the foreground). Background work is
never stopped, only slowed while the foreground is busy, so a revocation is late by at most
about as long as the foreground was busy.

Low-priority I/O-bound work (telling 10,000 people their access expired) calls
:meth:`Pacer.give_way` before each piece: it waits, a bounded time, until nobody is waiting on
the foreground.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Final, Protocol, TypeVar

T = TypeVar("T")

#: Items between two hand-backs: 16 grants of the revocation path are 1-3 ms of CPU, a slice
#: short enough that an ack or a Slack answer never waits much longer.
PACE_EVERY: Final = 16
#: While the foreground is busy, the background loops rest this long per second they worked:
#: together they keep about a fifth of the loop, the foreground the rest. Measured with
#: bench/slack_e2e.py during 10,000 expiries: at 1.0 (half each) fifty credential DMs came
#: 3x later than idle; at 4.0, 1.5-1.9x.
REST_PER_WORK: Final = 4.0
#: A resting loop looks this often whether the foreground is done (then it goes on at once).
RECHECK_S: Final = 0.005
#: The longest one piece of low-priority work (an expiry notice) waits for a busy foreground.
#: Measured with bench/slack_e2e.py during 10,000 expiries on a loaded machine: fifty clicks'
#: work lasts about a second there, and with 1 s the end announcer's notices, waiting since
#: the first expiries, all went out at ~0.8 s into it (15-40 % of the loop, py-spy) while the
#: last credential DMs were still being sent.
GIVE_WAY_MAX_S: Final = 3.0


class Calm(Protocol):
    """Waits until the foreground is no longer busy, or until loop time ``until``."""

    def __call__(self, *, until: float) -> Awaitable[None]: ...


class Pacer:
    """Where the background loops of one process hand the event loop back.

    ``foreground_busy`` (None: never) says whether work people are waiting on is in progress;
    ``calm``, if given, waits for it to end (see :class:`Calm`), so resting loops and notices
    giving way wake once instead of looking every :data:`RECHECK_S`.
    Keyword options: ``every`` items per slice, ``rest_per_work`` seconds of rest per second
    of slice while the foreground is busy (shared by every loop paced by this Pacer, so
    several batches in flight rest together), ``give_way_max_s`` for :meth:`give_way`."""

    def __init__(
        self,
        foreground_busy: Callable[[], bool] | None = None,
        *,
        calm: Calm | None = None,
        every: int = PACE_EVERY,
        rest_per_work: float = REST_PER_WORK,
        give_way_max_s: float = GIVE_WAY_MAX_S,
    ) -> None:
        self._busy = foreground_busy
        self._calm = calm
        self.every = every
        self._rest_per_work = rest_per_work
        self._give_way_max_s = give_way_max_s
        self._free_at = 0.0  # loop time until which the background loops, together, rest

    def foreground_busy(self) -> bool:
        """True while work people are waiting on is in progress (never without a
        ``foreground_busy``). Safe to call from another thread: it only reads counters."""
        return self._busy is not None and self._busy()

    async def paced(self, items: Iterable[T]) -> AsyncIterator[T]:
        """``items``, one by one, handing the loop back before every ``every``-th (after the
        first)."""
        loop = asyncio.get_running_loop()
        every = self.every
        resumed = loop.time()
        for i, item in enumerate(items):
            if i and i % every == 0:
                await self.pause(worked_s=loop.time() - resumed)
                resumed = loop.time()
            yield item

    async def pause(self, *, worked_s: float = 0.0) -> None:
        """One loop turn; while the foreground is busy, first the rest ``worked_s`` of slice
        earns, after the rest any other paused loop has reserved."""
        if self._busy is None or not self._busy():
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        self._free_at = max(self._free_at, loop.time()) + worked_s * self._rest_per_work
        while True:  # the shared deadline moves as other loops pause: check it again
            wait = self._free_at - loop.time()
            if wait <= 0 or not self._busy():
                break
            if self._calm is not None:
                await self._calm(until=self._free_at)
            else:
                await asyncio.sleep(min(wait, RECHECK_S))
        await asyncio.sleep(0)

    async def give_way(self) -> None:
        """Before one piece of low-priority I/O-bound work (a notice that a grant expired):
        wait while the foreground is busy, at most ``give_way_max_s``."""
        if self._busy is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._give_way_max_s
        if self._calm is not None:
            if self._busy():
                await self._calm(until=deadline)
            return
        while True:
            left = deadline - loop.time()
            if left <= 0 or not self._busy():
                return
            await asyncio.sleep(min(left, RECHECK_S))


#: For code with no foreground to give way to (the CLI, workers, tests): one turn per slice.
UNPACED: Final = Pacer()


async def paced(items: Iterable[T], *, every: int = PACE_EVERY) -> AsyncIterator[T]:
    """``items`` with one loop turn before every ``every``-th (after the first)."""
    async for item in Pacer(every=every).paced(items):
        yield item
