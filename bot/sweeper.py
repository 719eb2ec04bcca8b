"""Serve's timekeeping: revocations on time (the scheduler) and the sweep every replica runs
every few seconds: pending requests past their deadline lapse, approved grants whose issuing
never finished are taken back, reached escalation tiers are asked and providers remove their
leftovers (each step claimed atomically in Redis or idempotent, so replicas never double up;
see bot/service/sweeps.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sized
from typing import TYPE_CHECKING, Final

from bot.aio import cancel_and_wait
from bot.log_throttle import Outage, Throttle
from bot.service import GrantService
from bot.store.connection import is_unavailable, unavailable_cause

if TYPE_CHECKING:
    from bot.revocation.revoker import Revoker
    from bot.scheduling.scheduler import RevocationScheduler

log = logging.getLogger(__name__)

#: How often pending requests past their request_timeout are lapsed, and those past an
#: escalation tier's ``after`` escalated.
TIMEOUT_SWEEP_INTERVAL_S: Final = 5.0

#: One line a minute per sweep step that keeps failing for a reason other than Redis.
_SWEEP_ERRORS: Final = Throttle(log, level=logging.ERROR)


@contextlib.asynccontextmanager
async def timekeeping(
    service: GrantService,
    scheduler: RevocationScheduler,
    revoker: Revoker,
    *,
    redis_outage: Outage,
) -> AsyncIterator[RevocationScheduler]:
    """Revocation on time (``scheduler``, started) and the sweep, for as long as the context
    is open; then both stop and ``revoker`` is drained."""
    await scheduler.start()
    sweep = asyncio.get_running_loop().create_task(
        sweep_forever(service, interval_s=TIMEOUT_SWEEP_INTERVAL_S, outage=redis_outage),
        name="timeout-sweep",
    )
    try:
        yield scheduler
    finally:
        await cancel_and_wait(sweep)
        await scheduler.stop()
        await revoker.aclose()


async def sweep_forever(service: GrantService, *, interval_s: float, outage: Outage) -> None:
    """:func:`sweep_once` every ``interval_s``, until cancelled."""
    while True:
        await sweep_once(service, outage=outage)
        await asyncio.sleep(interval_s)


async def sweep_once(service: GrantService, *, outage: Outage) -> None:
    """One pass of the time-out / stuck-approval / escalation sweep. Redis being down is
    told by ``outage`` (and ends the pass: every step needs it); any other failure of a step
    is logged, with its traceback at most once a minute, and the next step still runs."""
    steps: tuple[tuple[str, Callable[[], Awaitable[Sized | int]], str, int], ...] = (
        (
            "timing out pending requests",
            service.time_out_due,
            "lapsed %d pending request(s)",
            logging.INFO,
        ),
        (
            "closing stuck approved grants",
            service.fail_stuck_approved,
            "closed %d approved grant(s) whose issuing never finished",
            logging.WARNING,
        ),
        (
            "escalating pending requests",
            service.escalate_due,
            "escalated %d pending request(s)",
            logging.INFO,
        ),
        (
            "provider housekeeping",  # e.g. STS deny policies past their sessions' expiry
            service.housekeeping,
            "removed %d leftover(s) at provider targets",
            logging.INFO,
        ),
    )
    for what, step, done_msg, level in steps:
        try:
            done = await step()
        except Exception as e:
            if is_unavailable(e):
                outage.failed(unavailable_cause(e))
                return
            _SWEEP_ERRORS.log(what, "%s failed: %s; will retry", what, type(e).__name__, exc_info=e)
            continue
        outage.succeeded()
        count = done if isinstance(done, int) else len(done)
        if count:
            log.log(level, done_msg, count)
