"""Revocations submitted in the same moment, gathered into batches (one future per grant).

A burst of expiries is handled a batch at a time (one read, revocations at the targets, one
bulk commit), not a grant at a time; this is what lets 10,000 expiries in one second finish
within the second after. While Redis is unreachable a batch is kept and retried: nothing is
lost, the grants are still live in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final

from bot.errors import StoreUnavailable
from bot.log_throttle import Outage
from bot.store.connection import unavailable_cause

log = logging.getLogger(__name__)

#: While Redis is unreachable a batch is retried with doubling waits between these bounds.
STORE_RETRY_MIN_S: Final = 0.25
STORE_RETRY_MAX_S: Final = 5.0


class Handled:
    """How a grant submitted for revocation was handled (the value of its future)."""

    ENDED: Final = "ended"
    FAILED: Final = "failed"  # REVOKE_FAILED, retry scheduled (or window passed)
    SKIPPED: Final = "skipped"  # not due, not live, or ended by someone else meanwhile


@dataclass(frozen=True, slots=True)
class Work:
    grant_id: str
    retry: bool  # a job fired: a REVOKE_FAILED grant is retried (else only ACTIVE, due)


class Batcher:
    """Gathers submissions made in the same moment into batches; one future per grant id.

    A grant already waiting or in flight is not submitted twice: the second caller shares the
    first one's future. Futures resolve as soon as their batch's state is stored.
    """

    def __init__(
        self,
        handle: Callable[[list[Work]], Awaitable[dict[str, str]]],
        *,
        batch_size: int,
        max_batches: int,
        redis_outage: Outage,
    ) -> None:
        self._handle = handle
        self._outage = redis_outage
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(max_batches)
        self._queue: list[Work] = []
        self._futures: dict[str, asyncio.Future[str]] = {}
        self._drainer: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()

    def submit(self, work: Work) -> asyncio.Future[str]:
        fut = self._futures.get(work.grant_id)
        if fut is not None:
            return fut
        fut = asyncio.get_running_loop().create_future()
        self._futures[work.grant_id] = fut
        self._queue.append(work)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="revocation-batcher")
        return fut

    @property
    def busy(self) -> bool:
        return bool(self._queue or self._batches)

    def pending(self, grant_id: str) -> bool:
        """True while ``grant_id`` is queued or in a batch in flight."""
        return grant_id in self._futures

    async def settled(self, grant_ids: Iterable[str]) -> None:
        """Return once none of ``grant_ids`` is queued or in flight."""
        futures = [f for gid in grant_ids if (f := self._futures.get(gid)) is not None]
        if futures:
            await asyncio.wait(futures)

    async def _drain(self) -> None:
        # One loop turn first: every job APScheduler submitted in this wakeup joins the batch.
        await asyncio.sleep(0)
        while self._queue:
            await self._slots.acquire()
            batch, self._queue = self._queue[: self._batch_size], self._queue[self._batch_size :]
            task = asyncio.create_task(self._run(batch), name="revocation-batch")
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _run(self, batch: list[Work]) -> None:
        try:
            delay_s = STORE_RETRY_MIN_S
            while True:
                try:
                    handled = await self._handle(batch)
                    self._outage.succeeded()
                    break
                except StoreUnavailable as e:
                    # Nothing was lost: the grants are still live in Redis. Keep the batch
                    # and try again when Redis is back (each step is idempotent). The
                    # outage says so once, not once per retry.
                    self._outage.failed(unavailable_cause(e))
                    await asyncio.sleep(delay_s)
                    delay_s = min(delay_s * 2, STORE_RETRY_MAX_S)
        except Exception as e:
            log.exception("a revocation batch of %d grant(s) failed", len(batch))
            for work in batch:
                self._settle(work.grant_id, error=e)
        else:
            for work in batch:
                self._settle(work.grant_id, result=handled.get(work.grant_id, Handled.SKIPPED))
        finally:
            self._slots.release()

    def _settle(
        self, grant_id: str, *, result: str | None = None, error: BaseException | None = None
    ) -> None:
        fut = self._futures.pop(grant_id, None)
        if fut is None or fut.done():
            return
        if error is not None:
            fut.set_exception(error)
            fut.exception()  # retrieved: nobody may be waiting on it
        else:
            fut.set_result(result or Handled.SKIPPED)

    async def drain(self, *, timeout_s: float) -> None:
        """Wait until nothing is queued or in flight (at most ``timeout_s``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.busy:
                    waiting = [*self._batches] + ([self._drainer] if self._drainer else [])
                    await asyncio.wait(waiting)
