"""Work that runs after a listener has acked: owned, referenced until done, failures logged.

Slack wants an answer within 3 seconds; issuing a credential, posting DMs and updating
messages can take longer. Listeners ack, then hand the rest to :class:`BackgroundTasks`,
which keeps a strong reference to every task (the event loop holds only weak ones), logs any
exception it ends with, and lets shutdown wait for work in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, Final

from bot.aio import cancel_and_wait

log = logging.getLogger(__name__)

DEFAULT_DRAIN_TIMEOUT_S: Final = 10.0
#: Post-ack jobs allowed to run at once. They are I/O-bound: a job spends most of its life
#: waiting for Slack (~150 ms a call, several calls one after another) and Redis, so 50
#: people asking at once need 50 jobs running at once, or the last waits for all the others
#: (with 2 at a time, 50 credential DMs took 12 s). The cap is what the process can serve at
#: once: the Slack connection pool (bot.server.SLACK_CONNECTIONS) and a share of the Redis
#: pool. Acks keep their priority by other means: a job starts only once acks have been
#: answered (see :meth:`BackgroundTasks.answering`).
DEFAULT_MAX_RUNNING: Final = 100
#: While requests from Slack keep arriving, a post-ack job waits up to this long before it
#: starts, so a burst of requests gets its acks first; the jobs catch up once it eases.
MAX_DEFER_S: Final = 0.5
#: "Requests keep arriving": one was being answered less than this long ago.
QUIET_S: Final = 0.02
#: When requests keep arriving with no QUIET_S gap for longer than MAX_DEFER_S (more than the
#: process can answer and serve at once), the jobs that waited that long run this many at a
#: time, so the acks, which Slack times, keep up; the rest run in the first gap. A burst of
#: requests (50 at once) leaves a gap once acked: its jobs all run together.
MAX_RUNNING_UNDER_LOAD: Final = 2


class BackgroundTasks:
    """A set of running tasks. ``spawn`` starts one; ``drain`` waits for all (then cancels).

    Keyword options: ``max_running`` bounds jobs running at once; ``max_defer_s`` bounds how
    long a job is held back for acks; ``max_running_under_load`` bounds the jobs that start
    while requests keep arriving. A job waits for a free slot and, while requests from
    Slack are being answered, until they pause: acks come first. If they do not pause
    within ``max_defer_s``, it starts anyway once fewer than ``max_running_under_load`` such
    jobs run. ``urgent`` jobs (opening a modal before its 3-second trigger expires) are
    never held back. ``waiting`` and ``running`` count the jobs held back and started."""

    def __init__(
        self,
        *,
        max_running: int = DEFAULT_MAX_RUNNING,
        max_defer_s: float = MAX_DEFER_S,
        max_running_under_load: int = MAX_RUNNING_UNDER_LOAD,
    ) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(max_running)
        self._max_defer_s = max_defer_s
        self._max_under_load = max_running_under_load
        self._under_load = 0  # jobs that started while requests kept arriving, still running
        self.waiting = 0
        self.running = 0
        self.failures = 0
        #: Requests from Slack being handled now, and when one last was (loop time); kept
        #: by :meth:`answering`.
        self.answering_now = 0
        self._last_answer_at = 0.0
        #: Set while :meth:`busy` is False, so background work waits for it without polling.
        self._calm = asyncio.Event()
        self._calm.set()

    def __len__(self) -> int:
        return len(self._tasks)

    def busy(self) -> bool:
        """True while people are waiting on Slack work: requests being answered, or post-ack
        jobs held or running (background loops give way meanwhile: bot.pacing)."""
        return self.answering_now > 0 or self.running > 0 or self.waiting > 0

    async def calm(self, *, until: float) -> None:
        """Return once :meth:`busy` is False, or at loop time ``until``, whichever is first.
        One wake-up, however long the foreground stays busy (bot.pacing waits here: ten
        thousand expiry notices and resting revocation loops polling every few
        milliseconds had cost the loop a share of its time exactly while people waited)."""
        if self._calm.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(until):
                await self._calm.wait()

    def _note(self) -> None:
        """Keep the calm event in step with :meth:`busy` (after every count changes)."""
        if self.busy():
            self._calm.clear()
        else:
            self._calm.set()

    def spawn(
        self, work: Coroutine[Any, Any, Any], *, name: str, urgent: bool = False
    ) -> asyncio.Task[Any]:
        """Run ``work`` concurrently (at once if ``urgent``, else when a slot is free); its
        failure is logged with ``name``, never lost."""
        job = work if urgent else self._in_slot(work)
        task = asyncio.get_running_loop().create_task(job, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Mark one request from Slack as being answered (a Bolt middleware wraps each)."""
        self.answering_now += 1
        self._note()
        try:
            yield
        finally:
            self.answering_now -= 1
            self._last_answer_at = asyncio.get_running_loop().time()
            self._note()

    async def _in_slot(self, work: Coroutine[Any, Any, Any]) -> Any:
        started = False
        self.waiting += 1
        self._note()
        try:
            async with self._slots:
                under_load = await self._after_acks()
                self.waiting -= 1
                started = True
                self.running += 1
                self._under_load += under_load
                try:
                    return await work
                finally:
                    self.running -= 1
                    self._under_load -= under_load
                    self._note()
        finally:
            if not started:  # cancelled while held back (shutdown)
                self.waiting -= 1
                self._note()
                work.close()

    async def _after_acks(self) -> bool:
        """Return once no request from Slack was answered for QUIET_S (False), or, when they
        keep coming past max_defer_s, once fewer than max_running_under_load jobs that
        started that way are running (True: this one starts that way)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_defer_s
        while True:
            now = loop.time()
            busy = self.answering_now > 0
            quiet_at = now + QUIET_S if busy else self._last_answer_at + QUIET_S
            if quiet_at <= now:
                return False
            if now >= deadline:
                if self._under_load < self._max_under_load:
                    return True
                await asyncio.sleep(QUIET_S)
                continue
            await asyncio.sleep(min(quiet_at, deadline) - now)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.failures += 1
            log.error(
                "background work %s failed: %s",
                task.get_name(),
                type(error).__name__,
                exc_info=error,
            )

    async def idle(self) -> None:
        """Wait until nothing is running, including work spawned by running work."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self, *, timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S) -> None:
        """Let running work finish for up to ``timeout_s``, then cancel what is left."""
        try:
            await asyncio.wait_for(self.idle(), timeout=timeout_s)
        except TimeoutError:
            log.warning("cancelling %d background tasks still running at shutdown", len(self))
        for task in list(self._tasks):
            await cancel_and_wait(task)
