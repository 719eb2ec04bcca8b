"""Building the revoker and the scheduler that runs its jobs, with the options they run
under: for the service's core (bot/wiring.py) and the scheduler-only worker of the replica
tests and benches (bot/devtools/scheduler_worker.py), which loads neither the policy nor the
service. Nothing is started here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.log_throttle import Outage
from bot.revocation.revoker import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCHES, Revoker
from bot.revocation.targets import DEFAULT_REVOKE_TIMEOUT_S
from bot.scheduling.lease import DEFAULT_LEASE_TTL_S
from bot.scheduling.reconciler import DEFAULT_RECONCILE_INTERVAL_S, ProviderInventory
from bot.store.grants import GrantStore

if TYPE_CHECKING:
    from bot.ports import ProviderResolver, RevocationListener
    from bot.revocation.retry import RetryPolicy
    from bot.scheduling.scheduler import RevocationScheduler


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationOptions:
    """How the revoker and the scheduler run (serve uses the defaults; the worker of the
    replica tests and benches sets them from its command line)."""

    retry: RetryPolicy | None = None
    revoke_timeout_s: float = DEFAULT_REVOKE_TIMEOUT_S
    batch_size: int = DEFAULT_BATCH_SIZE
    max_batches: int = DEFAULT_MAX_BATCHES
    replica_id: str | None = None
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S
    reconcile_interval_s: float = DEFAULT_RECONCILE_INTERVAL_S


def build_revoker(
    store: GrantStore,
    *,
    resolver: ProviderResolver,
    listener: RevocationListener,
    policy_version: Callable[[], str],
    clock: Callable[[], float] = time.time,
    redis_outage: Outage | None = None,
    options: RevocationOptions = RevocationOptions(),
) -> Revoker:
    """The revoker: it takes access away through ``resolver`` and reports to ``listener``."""
    return Revoker(
        store,
        resolver=resolver,
        listener=listener,
        policy_version=policy_version,
        clock=clock,
        retry=options.retry,
        revoke_timeout_s=options.revoke_timeout_s,
        batch_size=options.batch_size,
        max_batches=options.max_batches,
        redis_outage=redis_outage,
    )


def build_scheduler(
    store: GrantStore,
    revoker: Revoker,
    *,
    schedule_on: str,
    inventory: ProviderInventory | None,
    clock: Callable[[], float] = time.time,
    redis_outage: Outage | None = None,
    options: RevocationOptions = RevocationOptions(),
) -> RevocationScheduler:
    """The scheduler that runs ``revoker``'s jobs, read by APScheduler from the Redis at
    ``schedule_on``; its reconciler looks for access no live grant accounts for at every
    provider ``inventory`` lists. Not started."""
    from bot.scheduling.scheduler import RevocationScheduler

    return RevocationScheduler(
        store,
        revoker,
        redis=schedule_on,
        replica_id=options.replica_id,
        lease_ttl_s=options.lease_ttl_s,
        reconcile_interval_s=options.reconcile_interval_s,
        providers=inventory,
        clock=clock,
        redis_outage=redis_outage,
    )
