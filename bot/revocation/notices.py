"""Telling the listener (the service's RevocationReports) what the revoker stored, and the
background work that owns: a listener that raises is logged and ignored, and revocation never
waits on it unless asked to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.domain.model import Grant
from bot.pacing import Pacer
from bot.ports import RevocationListener

log = logging.getLogger(__name__)


class Notices:
    """The revoker's notices to ``listener`` and its other background tasks (owned, so
    :meth:`wait` can let them finish)."""

    def __init__(self, listener: RevocationListener, *, pacer: Pacer) -> None:
        self.listener = listener
        self._pacer = pacer
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Awaitable[None], *, name: str) -> None:
        """Run ``work`` in the background, owned (:meth:`wait` waits for it)."""
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def later(self, ended: list[Grant], failed: list[Grant]) -> None:
        """Tell of a batch's ends and failures in the background, giving way to Slack work."""
        if not ended and not failed:
            return
        self.start(self.tell(ended, failed, give_way=True), name="revocation-notify")

    async def tell(
        self, ended: list[Grant], failed: list[Grant], *, give_way: bool = False
    ) -> None:
        """Tell the listener, one grant at a time. ``give_way``: a batch's notices are
        background work; each waits (a bounded time) while Slack work people wait on is in
        progress (see bot.pacing), so 10,000 expiry notices never slow a credential DM."""
        for grant in ended:
            if give_way:
                await self._pacer.give_way()
            await self.now(self.listener.on_ended, grant)
        for grant in failed:
            if give_way:
                await self._pacer.give_way()
            await self.now(self.listener.on_revoke_failed, grant)

    @staticmethod
    async def now(call: Callable[[Grant], Awaitable[None]], grant: Grant) -> None:
        """``call(grant)``; a failure is logged, never raised."""
        try:
            await call(grant)
        except Exception:
            log.exception("revocation listener failed for %s; revocation is unaffected", grant.id)

    async def wait(self, *, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) for the background tasks started so far."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
