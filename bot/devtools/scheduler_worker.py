"""A process that runs only grantbot's revocation machinery: for multi-replica tests and benches.

``python -m bot.devtools.scheduler_worker --redis URL --prefix P --replica-id r1`` runs a
:class:`~bot.revocation.revoker.Revoker` and a
:class:`~bot.scheduling.scheduler.RevocationScheduler`, built as serve builds them
(:mod:`bot.revocation.build`), on the
given Redis and key prefix until SIGTERM (graceful: in-flight revocations finish, the lease is
released) or SIGKILL (what the replica tests do to the leader). Grants are revoked with the
``noop`` provider or, with ``--provider redis_acl --target URL``, at a real Redis as ACL users.
It prints ``READY <replica-id>`` once started; ``--report-rss`` also prints ``RSS <MB>`` lines.

Also home to the small resolver and listener that tests and benches share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bot.domain.model import Grant
from bot.providers.base import GrantContext, Provider
from bot.providers.noop import NoopProvider
from bot.providers.redis_acl import RedisACLProvider, RedisACLSettings
from bot.revocation.build import RevocationOptions, build_revoker, build_scheduler
from bot.revocation.retry import RetryPolicy
from bot.revocation.revoker import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCHES
from bot.store.grants import GrantStore
from bot.store.keys import Keys

log = logging.getLogger(__name__)

#: Role settings the ACL provider issues with in tests and benches (read-only, any key).
ACL_ROLE_SETTINGS: Final[Mapping[str, Any]] = {"commands": "+@read", "keys": "~*"}
POLICY_VERSION: Final = "0" * 64
RSS_REPORT_INTERVAL_S: Final = 0.5


class StaticResolver:
    """A ProviderResolver over a fixed set of providers by resource (one for every resource
    when given ``default``); contexts carry ``role_settings``."""

    def __init__(
        self,
        providers: Mapping[str, Provider] | None = None,
        *,
        default: Provider | None = None,
        role_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.providers = dict(providers or {})
        self.default = default
        self.role_settings = dict(role_settings or {})

    def provider_for(self, resource: str) -> Provider:
        provider = self.providers.get(resource, self.default)
        if provider is None:
            raise LookupError(f"no provider for resource {resource}")
        return provider

    def context(self, grant: Grant) -> GrantContext:
        return GrantContext(
            grant_id=grant.id,
            user=grant.requester,
            resource=grant.resource,
            role=grant.role,
            role_settings=self.role_settings,
            expires_at=grant.expires_at or 0.0,
        )

    def resolve(self, grant: Grant) -> tuple[Provider, GrantContext]:
        return self.provider_for(grant.resource), self.context(grant)

    def inventory(self) -> Mapping[str, Provider]:
        """For the reconciler's orphan sweep."""
        return dict(self.providers)


@dataclass
class RecordingListener:
    """A RevocationListener that remembers what it was told and when (``clock()``)."""

    clock: Any = time.time
    ended: dict[str, float] = field(default_factory=dict)
    ended_grants: list[Grant] = field(default_factory=list)
    failed: list[Grant] = field(default_factory=list)
    restored: list[Grant] = field(default_factory=list)  # on_access_removed: to issue again
    fail_with: BaseException | None = None  # raise this from every call (listener failures)

    async def on_ended(self, grant: Grant) -> None:
        self.ended[grant.id] = self.clock()
        self.ended_grants.append(grant)
        if self.fail_with is not None:
            raise self.fail_with

    async def on_revoke_failed(self, grant: Grant) -> None:
        self.failed.append(grant)
        if self.fail_with is not None:
            raise self.fail_with

    async def on_access_removed(self, grant: Grant) -> None:
        self.restored.append(grant)


def build_provider(kind: str, *, target: str | None) -> Provider:
    """``noop``, or ``redis_acl`` administering the Redis at ``target``."""
    if kind == "noop":
        return NoopProvider()
    if kind == "redis_acl":
        if not target:
            raise SystemExit("--provider redis_acl needs --target redis://...")
        return RedisACLProvider(RedisACLSettings.model_validate({"url": target}))
    raise SystemExit(f"unknown provider {kind!r}; use noop or redis_acl")


def rss_mb() -> float:
    """This process's resident set size in MB (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def serve(args: argparse.Namespace) -> None:
    store = GrantStore.open(args.redis, keys=Keys(prefix=args.prefix))
    provider = build_provider(args.provider, target=args.target)
    resolver = StaticResolver(default=provider, role_settings=ACL_ROLE_SETTINGS)
    options = RevocationOptions(
        retry=RetryPolicy(base_s=args.retry_base_s),
        revoke_timeout_s=args.revoke_timeout_s,
        batch_size=args.batch_size,
        max_batches=args.max_batches,
        replica_id=args.replica_id,
        lease_ttl_s=args.lease_ttl_s,
        reconcile_interval_s=args.reconcile_interval_s,
    )
    revoker = build_revoker(
        store,
        resolver=resolver,
        listener=RecordingListener(),
        policy_version=lambda: POLICY_VERSION,
        options=options,
    )
    scheduler = build_scheduler(
        store, revoker, schedule_on=args.redis, inventory=resolver.inventory, options=options
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await scheduler.start()
    # As `grantbot serve` does once assembled: long-lived objects out of the cyclic GC's way.
    gc.collect()
    gc.freeze()
    print(f"READY {args.replica_id}", flush=True)
    try:
        while not stop.is_set():
            if args.report_rss:
                print(f"RSS {rss_mb():.1f} LEADER {int(scheduler.is_leader)}", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=RSS_REPORT_INTERVAL_S)
    finally:
        await scheduler.stop()
        await revoker.aclose()
        await provider.aclose()
        await store.aclose()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bot.devtools.scheduler_worker")
    p.add_argument("--redis", required=True, help="state Redis URL")
    p.add_argument("--prefix", required=True, help="key prefix (GRANTBOT_REDIS_PREFIX)")
    p.add_argument("--replica-id", required=True)
    p.add_argument("--lease-ttl-s", type=float, default=5.0)
    p.add_argument("--reconcile-interval-s", type=float, default=30.0)
    p.add_argument("--provider", default="noop", choices=["noop", "redis_acl"])
    p.add_argument("--target", default=None, help="admin URL of the redis_acl target")
    p.add_argument("--retry-base-s", type=float, default=5.0)
    p.add_argument("--revoke-timeout-s", type=float, default=30.0)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    p.add_argument("--max-batches", type=int, default=DEFAULT_MAX_BATCHES)
    p.add_argument("--report-rss", action="store_true")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
