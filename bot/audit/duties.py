"""What ``serve`` does for auditors while it runs: signed checkpoints and shipping the log.

Both are the job of the replica holding the scheduler lease (``leader()``): one writer of
checkpoints, one shipper, so neither forks nor interleaves. Settings are read and checked by
:func:`plan_duties` before anything starts (a bad key or destination is a ConfigError at
start); :func:`audit_duties` runs them and, at shutdown, has the leader write a last
checkpoint before the lease is given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from bot.audit.checkpointer import Checkpointer, run_checkpoints
from bot.audit.shipper import Shipper
from bot.audit.signing import SigningKey, load_signing_key
from bot.audit.sinks import Sink, sink_from_setting
from bot.config import Settings
from bot.errors import GrantbotError
from bot.store.grants import GrantStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DutyPlan:
    key: SigningKey | None
    interval_s: float
    sink: Sink | None
    batch: int


def plan_duties(settings: Settings) -> DutyPlan:
    """The checkpoint key and the sink the settings name (ConfigError if malformed)."""
    key = (
        load_signing_key(settings.audit_signing_key.get_secret_value())
        if settings.audit_signing_key is not None
        else None
    )
    token = settings.audit_ship_token.get_secret_value() if settings.audit_ship_token else None
    sink = None
    if settings.audit_ship_to:
        sink = sink_from_setting(settings.audit_ship_to, token=token)
    return DutyPlan(
        key=key,
        interval_s=settings.audit_checkpoint_interval_s,
        sink=sink,
        batch=settings.audit_ship_batch,
    )


def checkpointer_for(
    store: GrantStore, key: SigningKey, *, clock: Callable[[], float]
) -> Checkpointer:
    """A Checkpointer of ``store``'s audit log (its key prefix names the log)."""
    return Checkpointer(
        store.audit,
        store.checkpoints,
        key=key,
        log_name=store.keys.prefix,
        clock=clock,
    )


@contextlib.asynccontextmanager
async def audit_duties(
    plan: DutyPlan,
    store: GrantStore,
    *,
    leader: Callable[[], bool],
    clock: Callable[[], float],
) -> AsyncIterator[None]:
    """Run the planned duties while the context is open; a last checkpoint on the way out."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    checkpointer = None
    if plan.key is not None:
        checkpointer = checkpointer_for(store, plan.key, clock=clock)
        tasks.append(
            loop.create_task(
                run_checkpoints(checkpointer, leader=leader, interval_s=plan.interval_s),
                name="audit-checkpoints",
            )
        )
    else:
        log.warning(
            "audit checkpoints are off: GRANTBOT_AUDIT_SIGNING_KEY is not set, so a rewrite of "
            "the whole chain in Redis would go unnoticed (docs/operations.md, For auditors)"
        )
    if plan.sink is not None:
        positions = store.ship_positions(plan.sink.id)
        shipper = Shipper(store.audit, positions, plan.sink, leader=leader, batch=plan.batch)
        tasks.append(loop.create_task(shipper.run(), name="audit-shipper"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if checkpointer is not None and leader():
            try:
                await checkpointer.write()
            except GrantbotError as e:
                log.error("could not write the audit checkpoint at shutdown: %s", e)
        if plan.sink is not None:
            await plan.sink.aclose()
