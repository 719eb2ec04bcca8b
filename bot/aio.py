"""Stopping a background task for certain.

``task.cancel()`` once is not enough with redis-py 5.3 when hiredis is installed (arq, a bench
dependency, installs it): its ``can_read_destructive`` awaits a socket read inside
``asyncio.timeout(0)``, and on Python 3.11-3.13 ``asyncio.timeout(0)`` swallows a cancellation
that arrives at that moment (CPython issue #134471, open), so the command returns normally
and a ``while True`` loop around it runs on. A shutdown that awaited such a task hung forever.
:func:`cancel_and_wait` cancels again until the task is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

#: How long one cancellation is given to end the task before it is repeated.
CANCEL_RETRY_S: Final = 0.5


async def cancel_and_wait(
    task: asyncio.Task[Any] | None, *, retry_s: float = CANCEL_RETRY_S
) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling again every ``retry_s`` while a
    library swallows the cancellation. Its result or exception is discarded (a task that
    failed has already been reported by whoever owns it). A cancellation of the caller still
    propagates."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
