"""Replicas as real processes sharing one Redis: kill -9 the leader just before grants expire
and another replica still revokes them on time, at a real Redis ACL target."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.devtools.redis_server import RedisServer
from bot.devtools.scheduler_worker import ACL_ROLE_SETTINGS, StaticResolver
from bot.domain.model import Actor, Grant, Status
from bot.providers.naming import login_name
from bot.providers.redis_acl import RedisACLProvider, RedisACLSettings
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from tests.factories import POLICY_V, make_grant

REPLICAS = 3
LEASE_TTL_S = 1.5
GRANTS = 30
READY_TIMEOUT_S = 20.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def target() -> Iterator[RedisServer]:
    with RedisServer(appendonly=False) as server:
        yield server


@pytest.fixture
async def acl(target: RedisServer) -> AsyncIterator[RedisACLProvider]:
    provider = RedisACLProvider(RedisACLSettings.model_validate({"url": target.url}))
    yield provider
    await provider.aclose()


@pytest.fixture
def replicas(
    redis_url: str, keys: Keys, target: RedisServer
) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """REPLICAS worker processes on this test's key prefix, each announced READY."""
    procs: dict[str, subprocess.Popen[str]] = {}
    for i in range(REPLICAS):
        replica_id = f"replica-{i}"
        procs[replica_id] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.devtools.scheduler_worker",
                "--redis",
                redis_url,
                "--prefix",
                keys.prefix,
                "--replica-id",
                replica_id,
                "--lease-ttl-s",
                str(LEASE_TTL_S),
                "--provider",
                "redis_acl",
                "--target",
                target.url,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    for replica_id, proc in procs.items():
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the worker prints READY right after starting
        assert line.strip() == f"READY {replica_id}", line
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def leader_of(store: GrantStore) -> str | None:
    token = await store.scheduler_lease().holder()
    return None if token is None else str(token).rsplit(":", 1)[0]


async def issue_grants(
    store: GrantStore, acl: RedisACLProvider, *, first_expiry: float
) -> list[Grant]:
    """GRANTS ACTIVE grants with real ACL users, expiring 20 ms apart from first_expiry."""
    resolver = StaticResolver(default=acl, role_settings=ACL_ROLE_SETTINGS)
    now = time.time()
    grants = []
    for i in range(GRANTS):
        g = make_grant(
            status=Status.ACTIVE,
            created_at=now,
            updated_at=now,
            activated_at=now,
            expires_at=first_expiry + i * 0.02,
            resource="cache",
        )
        await acl.issue(resolver.context(g), now=now)
        grants.append(await store.create(g, actor=Actor.system(), policy_version=POLICY_V))
    await store.revocation_jobs().put_many((g.id, g.expires_at or 0) for g in grants)
    return grants


@pytest.mark.slow
async def test_killing_the_leader_does_not_delay_revocation(
    store: GrantStore,
    acl: RedisACLProvider,
    replicas: dict[str, subprocess.Popen[str]],
) -> None:
    """Three replicas; the lease holder is SIGKILLed 0.3 s before 30 grants expire. Another
    replica takes the lease and revokes every grant within the lease TTL plus a little of its
    expiry, each exactly once, none early; the ACL users are gone from the target."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while (first_leader := await leader_of(store)) is None:
        assert time.monotonic() < deadline, "no replica took the lease"
        await asyncio.sleep(0.05)
    grants = await issue_grants(store, acl, first_expiry=time.time() + 2.0)

    await asyncio.sleep(max(0.0, (grants[0].expires_at or 0) - 0.3 - time.time()))
    replicas[first_leader].send_signal(signal.SIGKILL)
    replicas[first_leader].wait(timeout=10)

    last_expiry = grants[-1].expires_at or 0
    while time.time() < last_expiry + LEASE_TTL_S + 10:
        stored = await store.get_many(g.id for g in grants)
        if all(g.status is Status.EXPIRED for g in stored):
            break
        await asyncio.sleep(0.05)

    stored = await store.get_many(g.id for g in grants)
    assert [g.status for g in stored] == [Status.EXPIRED] * GRANTS
    lags = [(g.ended_at or 0) - (g.expires_at or 0) for g in stored]
    assert min(lags) >= 0, "revoked before expiry"
    assert max(lags) <= LEASE_TTL_S + 1.5, f"late: max lag {max(lags):.2f}s"
    new_leader = await leader_of(store)
    assert new_leader is not None and new_leader != first_leader
    expires = [
        e.data["grant_id"] async for e in store.audit.entries() if e.data["event"] == "EXPIRE"
    ]
    assert sorted(expires) == sorted(g.id for g in grants)
    for g in grants:
        assert await acl.client.execute_command("ACL", "GETUSER", login_name(g.id)) is None
    await store.audit.verify()
