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

log = logging.getLogger(__name__)

DEFAULT_DRAIN_TIMEOUT_S: Final = 10.0
#: Post-ack jobs allowed to run at once. They are I/O-bound (Redis, Slack), so a handful keeps
#: throughput up, while the cap keeps them from crowding the event loop: acks (which Slack
#: times) keep getting their turn however many requests arrive at once. Jobs beyond the cap
#: wait their turn without using the CPU.
DEFAULT_MAX_RUNNING: Final = 2
#: While requests from Slack keep arriving, a post-ack job waits up to this long before it
#: starts, so a burst of requests gets its acks first; the jobs catch up once it eases.
MAX_DEFER_S: Final = 0.5
#: "Requests keep arriving": one was being answered less than this long ago.
QUIET_S: Final = 0.02


class BackgroundTasks:
    """A set of running tasks. ``spawn`` starts one; ``drain`` waits for all (then cancels).

    Keyword options: ``max_running`` bounds jobs running at once. A job waits for a free slot
    and, while requests from Slack are being answered, up to :data:`MAX_DEFER_S` more before
    it starts: acks come first. ``urgent`` jobs (opening a modal before its 3-second trigger
    expires) are never held back."""

    def __init__(self, *, max_running: int = DEFAULT_MAX_RUNNING) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(max_running)
        self.failures = 0
        #: Requests from Slack being handled now, and when one last was (loop time); kept
        #: by :meth:`answering`.
        self.answering_now = 0
        self._last_answer_at = 0.0

    def __len__(self) -> int:
        return len(self._tasks)

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
        try:
            yield
        finally:
            self.answering_now -= 1
            self._last_answer_at = asyncio.get_running_loop().time()

    async def _in_slot(self, work: Coroutine[Any, Any, Any]) -> Any:
        async with self._slots:
            await self._after_acks()
            return await work

    async def _after_acks(self) -> None:
        """Return once no request from Slack was answered for QUIET_S, or after MAX_DEFER_S."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_DEFER_S
        while True:
            now = loop.time()
            busy = self.answering_now > 0
            quiet_at = now + QUIET_S if busy else self._last_answer_at + QUIET_S
            if quiet_at <= now or now >= deadline:
                return
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
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
